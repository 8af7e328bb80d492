// The fused recurrence of one direction of one layer, for every cell and variant (EQUATIONS.md):
// a forward over the whole sequence and its hand-written backward (BPTT), on the CPU.
//
// Dimension letters: N packed rows (sum of the batch sizes), T steps, B batch (the first step's),
// H hidden size, G row blocks of the cell, GH = G * H.
//
// The layout is torch's packed one, which also covers a padded batch (every step's batch size B):
// step t owns rows offset[t] .. offset[t] + batch_sizes[t] of every (N, .) tensor, and its active
// sequences are rows 0 .. batch_sizes[t] of the (B, H) state, sorted by length, so the batch shrinks
// over time. A reverse direction walks the steps from last to first with a growing batch; a row that
// joins starts from its h0, which its state still holds. Padding is never computed.
//
// Per step the work is one matrix product for the recurrent term (BLAS, with the weight packed once
// per sequence), the input projection having been done for all steps before the loop, then one
// element-wise pass over (n, H) that computes every gate and state and saves what backward needs.
// Backward walks the steps in reverse: one element-wise pass, then the product that carries dh to
// the previous step. The weight gradient is one product over all steps at the end. On several threads
// each takes a slice of the batch's rows through all the steps (`over_batch`), or for a large weight
// each step's product and pass are split between them.
//
// The design carries over to CUDA as it is: the same layout, saved tensors and order of products
// (cuBLAS), with the element-wise passes as CUDA kernels over (n, H). What is CPU-specific is only
// how those passes and products are called: raw pointers, SIMD vectors, BLAS symbols.
#include <ATen/ATen.h>
#include <torch/python.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <cmath>
#include <type_traits>
#include <vector>

namespace {

// The variant, as the Python side describes it: row-block offsets (in units of H, -1 when the
// block is absent) and peephole-block offsets of weight_ch.
struct Layout {
  int64_t kind;  // 0 rnn, 1 lstm, 2 gru
  bool relu;     // rnn
  int64_t i, f, g, o;  // lstm row blocks
  int64_t pi, pf, po;  // lstm peephole blocks of weight_ch
  bool coupled;        // lstm: i = 1 - f
  int64_t r, z, n;     // gru row blocks
  bool reset_before;   // gru: n reads W_hn (r * h_prev) + b_hn
};

Layout parse_layout(const std::vector<int64_t>& v) {
  TORCH_CHECK(v.size() == 14, "rnnkit fused kernel: bad layout");
  return Layout{v[0], v[1] != 0, v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9] != 0, v[10], v[11], v[12], v[13] != 0};
}

// ---- the per-step matrix products --------------------------------------------------------------
// The BLAS torch links (MKL in its x86 wheels) called on raw pointers, so a step costs no tensor
// bookkeeping; declared weak, so a torch without them falls back to ATen's mm on the same memory.
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*) __attribute__((weak));
void sgemv_(const char*, const int*, const int*, const float*, const float*, const int*, const float*, const int*,
            const float*, float*, const int*) __attribute__((weak));
void dgemv_(const char*, const int*, const int*, const double*, const double*, const int*, const double*,
            const int*, const double*, double*, const int*) __attribute__((weak));
}

inline auto blas(float) { return sgemm_; }
inline auto blas(double) { return dgemm_; }
inline auto blas_vector(float) { return sgemv_; }
inline auto blas_vector(double) { return dgemv_; }

// Row-major C (rows, cols; leading dimension ldc) = beta C + A (rows, inner; lda) op(B), where op(B)
// is B^T for a B of (cols, inner) when `b_transposed`, else B of (inner, cols); ldb is B's leading
// dimension. In BLAS's column-major terms this is C^T = op(B)^T A^T.
template <typename S>
void gemm(bool b_transposed, int64_t rows, int64_t cols, int64_t inner, const S* a, int64_t lda, const S* b,
          int64_t ldb, S beta, S* c, int64_t ldc) {
  if (rows == 0 || cols == 0) return;
  const S one = 1;
  auto vector_routine = blas_vector(S());
  if (rows == 1 && vector_routine != nullptr && inner > 0) {  // one row (batch-1 sampling): a matrix-vector product
    const int m = b_transposed ? inner : cols, n = b_transposed ? cols : inner, lw = ldb, step = 1;
    vector_routine(b_transposed ? "T" : "N", &m, &n, &one, b, &lw, a, &step, &beta, c, &step);
    return;
  }
  auto routine = blas(S());
  if (routine != nullptr && inner > 0) {
    const int m = cols, n = rows, k = inner, la = ldb, lb = lda, lc = ldc;
    routine(b_transposed ? "T" : "N", "N", &m, &n, &k, &one, b, &la, a, &lb, &beta, c, &lc);
    return;
  }
  auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<S>::value);
  auto A = at::from_blob(const_cast<S*>(a), {rows, inner}, {lda, 1}, options);
  auto B = b_transposed ? at::from_blob(const_cast<S*>(b), {cols, inner}, {ldb, 1}, options).t()
                        : at::from_blob(const_cast<S*>(b), {inner, cols}, {ldb, 1}, options);
  auto C = at::from_blob(c, {rows, cols}, {ldc, 1}, options);
  if (beta == S(0)) C.copy_(at::mm(A, B));
  else C.add_(at::mm(A, B));
}

// The element-wise passes run on ATen's SIMD vectors (AVX-512 or AVX2 when the build enables them);
// `k` lanes of a vector are in use at the end of a row.
template <typename S> using Vec = at::vec::Vectorized<S>;

// exp and tanh. float32: ATen's fast polynomial exp (exp_u20, within 20 ulp) and tanh from it, within
// float32's usual tolerance of the exact values and several times cheaper than SLEEF's 1-ulp ones;
// float64: SLEEF's 1-ulp functions (AVX-512 or AVX2, called directly: its dispatching entry points
// cost more per call), so the float64 kernel agrees with the equations to 1e-10; ATen's portable
// ones in a build without either.
// exp_u20 clamps its argument, which would turn a NaN into a number: NaN is passed through, so that a
// diverged model still shows as one.
inline Vec<float> vexp(const Vec<float>& x) { return Vec<float>::blendv(x.exp_u20(), x, x.isnan()); }
inline Vec<float> vtanh(const Vec<float>& x) {  // 1 - 2 / (e^{2x} + 1): ±1 where e^{2x} under- or overflows
  const Vec<float> one(1.0f), two(2.0f);
  return one - two / (vexp(x * two) + one);
}
#if defined(CPU_CAPABILITY_AVX512)
inline Vec<double> vexp(const Vec<double>& x) { return Sleef_expd8_u10avx512f(x); }
inline Vec<double> vtanh(const Vec<double>& x) { return Sleef_tanhd8_u10avx512f(x); }
#elif defined(CPU_CAPABILITY_AVX2)
inline Vec<double> vexp(const Vec<double>& x) { return Sleef_expd4_u10avx2(x); }
inline Vec<double> vtanh(const Vec<double>& x) { return Sleef_tanhd4_u10avx2(x); }
#else
inline Vec<double> vexp(const Vec<double>& x) { return x.exp(); }
inline Vec<double> vtanh(const Vec<double>& x) { return x.tanh(); }
#endif

template <typename S> inline Vec<S> sigmoid(const Vec<S>& x) {
  return Vec<S>(S(1)) / (Vec<S>(S(1)) + vexp(x.neg()));
}

template <typename S, typename F> inline void for_lanes(int64_t H, const F& body) {
  for (int64_t j = 0; j < H; j += Vec<S>::size()) body(j, std::min<int64_t>(Vec<S>::size(), H - j));
}

// Parallel over rows when the pass is large enough to pay for it (torch's thread pool and setting).
template <typename F> inline void for_rows(int64_t rows, int64_t width, const F& body) {
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, width));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) body(b);
  });
}

// The batch's rows are independent sequences, so with several threads each can take a slice of the
// rows through every step on its own: one product and one pass per step on its rows, and no waiting
// for the other threads between steps. That is done while the recurrent weight is small enough
// (`weight_bytes`) for every thread to read all of it at each step from its cache; a larger weight
// is shared out instead: each step's product over threads, then its pass over rows (`for_rows`).
// Inside a slice both run on the slice's thread (BLAS and ATen run nested calls on the caller).
constexpr int64_t kSliceMinRows = 8;
constexpr int64_t kSliceMaxWeightBytes = int64_t(1) << 20;

template <typename F> inline void over_batch(int64_t B, int64_t weight_bytes, const F& run_rows) {
  const bool slice = at::get_num_threads() > 1 && !at::in_parallel_region() && B >= 2 * kSliceMinRows &&
                     weight_bytes <= kSliceMaxWeightBytes;
  if (!slice) {
    run_rows(0, B);
    return;
  }
  at::parallel_for(0, B, kSliceMinRows, [&](int64_t lo, int64_t hi) { run_rows(lo, hi); });
}

struct Steps {
  std::vector<int64_t> order, offset, size;  // processing order of the steps; their rows
};

Steps make_steps(const at::Tensor& batch_sizes, bool reverse) {
  auto bs = batch_sizes.contiguous();
  const int64_t T = bs.size(0);
  const int64_t* p = bs.data_ptr<int64_t>();
  Steps s;
  s.offset.resize(T);
  s.size.assign(p, p + T);
  int64_t at = 0;
  for (int64_t t = 0; t < T; ++t) {
    s.offset[t] = at;
    at += p[t];
  }
  for (int64_t k = 0; k < T; ++k) s.order.push_back(reverse ? T - 1 - k : k);
  return s;
}

// A product by one weight matrix at every step: C (rows, cols) = beta C + A (rows, inner) op(W). MKL
// re-packs the weight on every call of a plain gemm, which for the few rows of a step costs as much as
// the arithmetic; its packed API packs it once per sequence (float32; weak symbols, so other BLAS
// builds and float64 take the plain gemm).
extern "C" {
size_t SGEMM_PACK_GET_SIZE(const char*, const int*, const int*, const int*) __attribute__((weak));
void SGEMM_PACK(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
                float*) __attribute__((weak));
void SGEMM_COMPUTE(const char*, const char*, const int*, const int*, const int*, const float*, const int*,
                   const float*, const int*, const float*, float*, const int*) __attribute__((weak));
}

template <typename S> class StepProduct {
 public:
  // Packing costs about one product's worth of copying: it is done for sequences of several steps.
  static constexpr int64_t kPackFromSteps = 4;

  StepProduct(bool w_transposed, int64_t cols, int64_t inner, int64_t max_rows, int64_t steps, const S* w,
              int64_t ldw)
      : w_transposed_(w_transposed), cols_(cols), inner_(inner), w_(w), ldw_(ldw) {
    if constexpr (std::is_same_v<S, float>) {
      if (SGEMM_PACK_GET_SIZE && SGEMM_PACK && SGEMM_COMPUTE && cols > 0 && inner > 0 && max_rows > 0 &&
          steps >= kPackFromSteps) {
        const int m = cols, n = max_rows, k = inner, ld = ldw;
        const float one = 1;
        packed_ = at::empty({static_cast<int64_t>(SGEMM_PACK_GET_SIZE("A", &m, &n, &k))}, at::kByte);
        SGEMM_PACK("A", w_transposed ? "T" : "N", &m, &n, &k, &one, w, &ld,
                   reinterpret_cast<float*>(packed_.data_ptr()));
      }
    }
  }

  void operator()(int64_t rows, const S* a, int64_t lda, S beta, S* c, int64_t ldc) const {
    if constexpr (std::is_same_v<S, float>) {
      if (packed_.defined() && rows > 0) {
        const int m = cols_, n = rows, k = inner_, lb = lda, lc = ldc;
        SGEMM_COMPUTE("P", "N", &m, &n, &k, reinterpret_cast<const float*>(packed_.data_ptr()), &m, a, &lb, &beta,
                      c, &lc);
        return;
      }
    }
    gemm<S>(w_transposed_, rows, cols_, inner_, a, lda, w_, ldw_, beta, c, ldc);
  }

 private:
  bool w_transposed_;
  int64_t cols_, inner_;
  const S* w_;
  int64_t ldw_;
  at::Tensor packed_;
};

// ---- forward ------------------------------------------------------------------------------------
// Returns {output (N, H), h_n (B, H), c_n (B, H) or empty, saved...}. Saved tensors (only when
// `save`): acts (N, GH) the gate values, h_prev (N, H), and per kind: lstm c (N, H), c_prev (N, H),
// tanh(c) (N, H); gru (reset after) hn (N, H) = the recurrent term of n; gru (reset before) rh (N, H).
template <typename S>
std::vector<at::Tensor> forward_impl(const Layout& L, const at::Tensor& xw_in, const at::Tensor& h0,
                                     const at::Tensor& c0, const at::Tensor& w_hh, const at::Tensor& b_hh,
                                     const at::Tensor& w_ch, const Steps& steps, bool save) {
  using V = Vec<S>;
  const int64_t N = xw_in.size(0), GH = xw_in.size(1), H = h0.size(1);
  const bool lstm = L.kind == 1, gru = L.kind == 2;
  const bool has_bias = b_hh.defined();
  auto opts = xw_in.options();
  auto output = at::empty({N, H}, opts);
  auto h = h0.clone();
  auto c = lstm ? c0.clone() : at::Tensor();
  at::Tensor acts, h_prev, c_all, c_prev, tanh_c, extra;
  if (save) {
    acts = at::empty({N, GH}, opts);
    h_prev = at::empty({N, H}, opts);
    if (lstm) {
      c_all = at::empty({N, H}, opts);
      c_prev = at::empty({N, H}, opts);
      tanh_c = at::empty({N, H}, opts);
    }
    if (gru) extra = at::empty({N, H}, opts);
  }
  const int64_t rz = gru && L.r >= 0 ? 2 * H : H;  // gru reset before: rows of the r and z blocks
  auto pre = at::empty({h0.size(0), GH}, opts);  // rnn/lstm: pre-activation; gru: W_hh h_prev + b_hh
  auto rh = gru && L.reset_before ? at::empty({h0.size(0), H}, opts) : at::Tensor();

  S* out_p = output.data_ptr<S>();
  S* const h_state = h.data_ptr<S>();
  S* const c_state = lstm ? c.data_ptr<S>() : nullptr;
  const S* wc = w_ch.defined() ? w_ch.data_ptr<S>() : nullptr;
  S* acts_p = save ? acts.data_ptr<S>() : nullptr;
  S* hprev_p = save ? h_prev.data_ptr<S>() : nullptr;
  S* call_p = save && lstm ? c_all.data_ptr<S>() : nullptr;
  S* cprev_p = save && lstm ? c_prev.data_ptr<S>() : nullptr;
  S* tanhc_p = save && lstm ? tanh_c.data_ptr<S>() : nullptr;
  S* extra_p = save && gru ? extra.data_ptr<S>() : nullptr;
  S* const pre_state = pre.data_ptr<S>();
  S* const rh_state = rh.defined() ? rh.data_ptr<S>() : nullptr;
  const S* xw_p = xw_in.data_ptr<S>();
  const S* w_p = w_hh.data_ptr<S>();
  // b_hh is added in the element-wise pass: to the pre-activation, or for a gru to the recurrent term
  // W_hh h_prev + b_hh that r scales (zeros without a bias). The layers hand an rnn's or lstm's b_hh over
  // inside xw's bias instead, which saves the pass a load per gate.
  const at::Tensor bias = has_bias ? b_hh : at::zeros({GH}, opts);
  const S* bh = bias.data_ptr<S>();
  const V one(S(1)), zero(S(0));
  const int64_t B = h0.size(0);
  // h_prev W^T for every row block, or with reset before for the r and z rows; then (r ⊙ h_prev) W_hn^T
  const int64_t T = static_cast<int64_t>(steps.order.size());
  const StepProduct<S> recurrent(true, L.reset_before ? rz : GH, H, B, T, w_p, H);
  const StepProduct<S> reset_recurrent(true, L.reset_before ? H : 0, H, B, T, w_p + std::max<int64_t>(L.n, 0) * H * H,
                                       H);

  // The GRU's last part, the same for both resets: h = (1 - z) n + z h_prev, and what backward needs
  // (`extra`: the recurrent term of n that r scales, or with reset before r ⊙ h_prev).
  auto gru_output = [&](S* hb, S* a, int64_t row, int64_t j, int64_t k, const V& r, const V& z, const V& nv,
                        const V& hp, const V& extra) {
    const V hv = (one - z) * nv + z * hp;
    if (save) {
      if (L.r >= 0) r.store(a + L.r * H + j, k);
      z.store(a + L.z * H + j, k);
      nv.store(a + L.n * H + j, k);
      hp.store(hprev_p + row + j, k);
      extra.store(extra_p + row + j, k);
    }
    hv.store(hb + j, k);
    hv.store(out_p + row + j, k);
  };

  // Rows lo .. hi of the batch through every step. The pointers into the (B, .) state start at row lo,
  // and a step's n and off count only the slice's rows.
  auto run_rows = [&](int64_t lo, int64_t hi) {
    S* const h_p = h_state + lo * H;
    S* const c_p = lstm ? c_state + lo * H : nullptr;
    S* const pre_p = pre_state + lo * GH;
    S* const rh_p = rh_state ? rh_state + lo * H : nullptr;
    for (int64_t t : steps.order) {
      const int64_t n = std::min(steps.size[t], hi) - lo, off = steps.offset[t] + lo;
      if (n <= 0) continue;
      // h_prev W_hh^T (n, GH); with reset before only the r and z rows: n's product waits for r
      recurrent(n, h_p, H, S(0), pre_p, GH);
      const S* x_t = xw_p + off * GH;
      if (L.kind == 0) {
        for_rows(n, H, [&](int64_t b) {
          const S* p = pre_p + b * GH;
          const S* x = x_t + b * GH;
          S* hb = h_p + b * H;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            V u = V::loadu(x + j, k) + V::loadu(p + j, k);  // x W_ih^T + b_ih (+ b_hh) + h_prev W_hh^T
            if (has_bias) u = u + V::loadu(bh + j, k);
            const V v = L.relu ? at::vec::maximum(u, zero) : vtanh(u);
            if (save) {
              v.store(acts_p + row + j, k);  // φ' is read from the output
              V::loadu(hb + j, k).store(hprev_p + row + j, k);
            }
            v.store(hb + j, k);
            v.store(out_p + row + j, k);
          });
        });
      } else if (lstm) {
        for_rows(n, GH, [&](int64_t b) {
          const S* p = pre_p + b * GH;
          const S* x = x_t + b * GH;
          S* hb = h_p + b * H;
          S* cb = c_p + b * H;
          S* a = save ? acts_p + (off + b) * GH : nullptr;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            auto pre = [&](int64_t block) {
              const V u = ld(x + block * H) + ld(p + block * H);
              return has_bias ? u + ld(bh + block * H) : u;
            };
            const V cp = ld(cb);
            V f = one, i = one;
            if (L.f >= 0) f = sigmoid<S>(L.pf >= 0 ? pre(L.f) + ld(wc + L.pf * H) * cp : pre(L.f));
            if (L.coupled) i = one - f;
            else if (L.i >= 0) i = sigmoid<S>(L.pi >= 0 ? pre(L.i) + ld(wc + L.pi * H) * cp : pre(L.i));
            const V g = vtanh(pre(L.g));
            const V cn = f * cp + i * g;
            V o = one;
            if (L.o >= 0) o = sigmoid<S>(L.po >= 0 ? pre(L.o) + ld(wc + L.po * H) * cn : pre(L.o));
            const V tc = vtanh(cn);
            const V hn = o * tc;
            if (save) {
              if (L.i >= 0) i.store(a + L.i * H + j, k);
              if (L.f >= 0) f.store(a + L.f * H + j, k);
              g.store(a + L.g * H + j, k);
              if (L.o >= 0) o.store(a + L.o * H + j, k);
              ld(hb).store(hprev_p + row + j, k);
              cp.store(cprev_p + row + j, k);
              cn.store(call_p + row + j, k);
              tc.store(tanhc_p + row + j, k);
            }
            cn.store(cb + j, k);
            hn.store(hb + j, k);
            hn.store(out_p + row + j, k);
          });
        });
      } else if (!L.reset_before) {
        for_rows(n, GH, [&](int64_t b) {
          const S* p = pre_p + b * GH;  // W_hh h_prev + b_hh
          const S* x = x_t + b * GH;
          S* hb = h_p + b * H;
          S* a = save ? acts_p + (off + b) * GH : nullptr;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            const V hp = ld(hb);
            auto hw = [&](int64_t block) { return ld(p + block * H) + ld(bh + block * H); };  // W_hh h_prev + b_hh
            const V r = L.r >= 0 ? sigmoid<S>(ld(x + L.r * H) + hw(L.r)) : one;
            const V z = sigmoid<S>(ld(x + L.z * H) + hw(L.z));
            const V hn_term = hw(L.n);
            gru_output(hb, a, row, j, k, r, z, vtanh(ld(x + L.n * H) + r * hn_term), hp, hn_term);
          });
        });
      } else {
        for_rows(n, GH, [&](int64_t b) {  // r, z, and r * h_prev for n's product
          S* p = pre_p + b * GH;
          const S* x = x_t + b * GH;
          const S* hb = h_p + b * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            const V r = sigmoid<S>(ld(x + L.r * H) + ld(p + L.r * H) + ld(bh + L.r * H));
            const V z = sigmoid<S>(ld(x + L.z * H) + ld(p + L.z * H) + ld(bh + L.z * H));
            r.store(p + L.r * H + j, k);
            z.store(p + L.z * H + j, k);
            (r * ld(hb)).store(rh_p + b * H + j, k);
          });
        });
        reset_recurrent(n, rh_p, H, S(0), pre_p + L.n * H, GH);  // (r ⊙ h_prev) W_hn^T
        for_rows(n, GH, [&](int64_t b) {
          const S* p = pre_p + b * GH;
          const S* x = x_t + b * GH;
          S* hb = h_p + b * H;
          S* a = save ? acts_p + (off + b) * GH : nullptr;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            const V hp = ld(hb);
            const V nv = vtanh(ld(x + L.n * H) + ld(p + L.n * H) + ld(bh + L.n * H));
            gru_output(hb, a, row, j, k, ld(p + L.r * H), ld(p + L.z * H), nv, hp, ld(rh_p + b * H));
          });
        });
      }
    }
  };
  over_batch(B, GH * H * static_cast<int64_t>(sizeof(S)), run_rows);
  std::vector<at::Tensor> result{output, h, lstm ? c : at::Tensor()};
  if (save) {
    for (auto& saved : {acts, h_prev, c_all, c_prev, tanh_c, extra}) result.push_back(saved);
  }
  return result;
}

// ---- backward -----------------------------------------------------------------------------------
// Returns {dxw (N, GH), dh0 (B, H), dc0 (B, H) or empty, dw_hh (GH, H), db_hh (GH) or empty,
// dw_ch or empty}.
template <typename S>
std::vector<at::Tensor> backward_impl(const Layout& L, const at::Tensor& d_output, const at::Tensor& dh_n,
                                      const at::Tensor& dc_n, const at::Tensor& w_hh, bool has_bias,
                                      const at::Tensor& w_ch, const Steps& steps,
                                      const std::vector<at::Tensor>& saved) {
  using V = Vec<S>;
  const at::Tensor &acts = saved[0], &h_prev = saved[1], &c_all = saved[2], &c_prev = saved[3],
                   &tanh_c = saved[4], &extra = saved[5];
  const int64_t N = acts.size(0), GH = acts.size(1), H = h_prev.size(1), B = dh_n.size(0);
  const bool lstm = L.kind == 1, gru = L.kind == 2;
  auto opts = acts.options();
  auto dxw = at::empty({N, GH}, opts);
  // gru with reset after: the recurrent product's gradient differs from dxw in the n rows (r * dn)
  auto dhw = gru && L.r >= 0 && !L.reset_before ? at::empty({N, GH}, opts) : dxw;
  auto dh = dh_n.clone();
  auto dc = lstm ? dc_n.clone() : at::Tensor();
  const int64_t rz = gru && L.r >= 0 ? 2 * H : H;
  auto drh = gru && L.reset_before ? at::empty({B, H}, opts) : at::Tensor();

  const S* dout_p = d_output.data_ptr<S>();
  const S* a_p = acts.data_ptr<S>();
  const S* hprev_p = h_prev.data_ptr<S>();
  const S* call_p = lstm ? c_all.data_ptr<S>() : nullptr;
  const S* cprev_p = lstm ? c_prev.data_ptr<S>() : nullptr;
  const S* tanhc_p = lstm ? tanh_c.data_ptr<S>() : nullptr;
  const S* extra_p = gru ? extra.data_ptr<S>() : nullptr;
  const S* wc = w_ch.defined() ? w_ch.data_ptr<S>() : nullptr;
  S* dxw_p = dxw.data_ptr<S>();
  S* dhw_p = dhw.data_ptr<S>();
  S* const dh_state = dh.data_ptr<S>();
  S* const dc_state = lstm ? dc.data_ptr<S>() : nullptr;
  S* const drh_state = drh.defined() ? drh.data_ptr<S>() : nullptr;
  const S* w_p = w_hh.data_ptr<S>();
  // peepholes: each row's sum over its steps of dpre * c, summed over the rows at the end
  const int64_t P = w_ch.defined() ? w_ch.size(0) : 0;
  auto dwc_rows = at::zeros({B, P}, opts);
  S* const dwc_state = dwc_rows.data_ptr<S>();
  const V one(S(1)), zero(S(0));
  // dpre W (reset before: the r and z rows of W, and d(r ⊙ h_prev) = dpre_n W_hn)
  const int64_t T = static_cast<int64_t>(steps.order.size());
  const StepProduct<S> back(false, H, L.reset_before ? rz : GH, B, T, w_p, H);
  const StepProduct<S> reset_back(false, L.reset_before ? H : 0, H, B, T, w_p + std::max<int64_t>(L.n, 0) * H * H, H);

  auto run_rows = [&](int64_t lo, int64_t hi) {  // rows lo .. hi, as in forward
    S* const dh_p = dh_state + lo * H;
    S* const dc_p = lstm ? dc_state + lo * H : nullptr;
    S* const drh_p = drh_state ? drh_state + lo * H : nullptr;
    S* const dwc_p = dwc_state + lo * P;
    for (auto step = steps.order.rbegin(); step != steps.order.rend(); ++step) {
      const int64_t t = *step, n = std::min(steps.size[t], hi) - lo, off = steps.offset[t] + lo;
      if (n <= 0) continue;
      if (L.kind == 0) {
        for_rows(n, H, [&](int64_t b) {
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            const V d_h = V::loadu(dh_p + b * H + j, k) + V::loadu(dout_p + row + j, k);
            const V y = V::loadu(a_p + row + j, k);  // the step's output φ(pre)
            const V slope = L.relu ? V::blendv(zero, one, y > zero) : one - y * y;
            (d_h * slope).store(dxw_p + row + j, k);
          });
        });
        back(n, dxw_p + off * GH, GH, S(0), dh_p, H);  // dh_prev = dpre W_hh
      } else if (lstm) {
        for_rows(n, GH, [&](int64_t b) {
          const S* a = a_p + (off + b) * GH;
          S* dp = dxw_p + (off + b) * GH;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            const V d_h = ld(dh_p + b * H) + ld(dout_p + row);
            const V tc = ld(tanhc_p + row), cp = ld(cprev_p + row);
            const V o = L.o >= 0 ? ld(a + L.o * H) : one;
            const V f = L.f >= 0 ? ld(a + L.f * H) : one;
            const V i = L.coupled ? one - f : (L.i >= 0 ? ld(a + L.i * H) : one);
            const V g = ld(a + L.g * H);
            V dc_t = ld(dc_p + b * H) + d_h * o * (one - tc * tc);
            auto peep = [&](int64_t block, const V& dpre, const V& state) {  // dw_ch's share of this step
              S* acc = dwc_p + b * P + block * H;
              (ld(acc) + dpre * state).store(acc + j, k);
            };
            if (L.o >= 0) {
              const V dpo = d_h * tc * o * (one - o);
              dpo.store(dp + L.o * H + j, k);
              if (L.po >= 0) {
                dc_t = dc_t + dpo * ld(wc + L.po * H);
                peep(L.po, dpo, ld(call_p + row));
              }
            }
            (dc_t * i * (one - g * g)).store(dp + L.g * H + j, k);
            V dc_prev = dc_t * f;
            if (L.f >= 0) {
              const V df = L.coupled ? dc_t * (cp - g) : dc_t * cp;
              const V dpf = df * f * (one - f);
              dpf.store(dp + L.f * H + j, k);
              if (L.pf >= 0) {
                dc_prev = dc_prev + dpf * ld(wc + L.pf * H);
                peep(L.pf, dpf, cp);
              }
            }
            if (L.i >= 0) {
              const V dpi = dc_t * g * i * (one - i);
              dpi.store(dp + L.i * H + j, k);
              if (L.pi >= 0) {
                dc_prev = dc_prev + dpi * ld(wc + L.pi * H);
                peep(L.pi, dpi, cp);
              }
            }
            dc_prev.store(dc_p + b * H + j, k);
          });
        });
        back(n, dxw_p + off * GH, GH, S(0), dh_p, H);  // dh_prev = dpre W_hh
      } else if (!L.reset_before) {
        for_rows(n, GH, [&](int64_t b) {
          const S* a = a_p + (off + b) * GH;
          S* dx = dxw_p + (off + b) * GH;
          S* dw = dhw_p + (off + b) * GH;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            const V d_h = ld(dh_p + b * H) + ld(dout_p + row);
            const V z = ld(a + L.z * H), nv = ld(a + L.n * H), hp = ld(hprev_p + row);
            const V r = L.r >= 0 ? ld(a + L.r * H) : one;
            const V dpn = d_h * (one - z) * (one - nv * nv);
            const V dpz = d_h * (hp - nv) * z * (one - z);
            dpn.store(dx + L.n * H + j, k);
            (dpn * r).store(dw + L.n * H + j, k);  // (dw is dx without a reset gate, r = 1)
            dpz.store(dx + L.z * H + j, k);
            if (dw != dx) dpz.store(dw + L.z * H + j, k);
            if (L.r >= 0) {
              const V dpr = dpn * ld(extra_p + row) * r * (one - r);
              dpr.store(dx + L.r * H + j, k);
              dpr.store(dw + L.r * H + j, k);
            }
            (d_h * z).store(dh_p + b * H + j, k);  // the direct path; the product below adds the rest
          });
        });
        back(n, dhw_p + off * GH, GH, S(1), dh_p, H);
      } else {
        for_rows(n, GH, [&](int64_t b) {  // n's and z's pre-activation gradients
          const S* a = a_p + (off + b) * GH;
          S* dx = dxw_p + (off + b) * GH;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            const V d_h = ld(dh_p + b * H) + ld(dout_p + row);
            const V z = ld(a + L.z * H), nv = ld(a + L.n * H), hp = ld(hprev_p + row);
            (d_h * (one - z) * (one - nv * nv)).store(dx + L.n * H + j, k);
            (d_h * (hp - nv) * z * (one - z)).store(dx + L.z * H + j, k);
            (d_h * z).store(dh_p + b * H + j, k);
          });
        });
        reset_back(n, dxw_p + off * GH + L.n * H, GH, S(0), drh_p, H);  // d(r ⊙ h_prev) = dpre_n W_hn
        for_rows(n, GH, [&](int64_t b) {  // through r * h_prev: to r, and to h_prev directly
          const S* a = a_p + (off + b) * GH;
          S* dx = dxw_p + (off + b) * GH;
          const int64_t row = (off + b) * H;
          for_lanes<S>(H, [&](int64_t j, int64_t k) {
            auto ld = [&](const S* q) { return V::loadu(q + j, k); };
            const V r = ld(a + L.r * H), d = ld(drh_p + b * H);
            (d * ld(hprev_p + row) * r * (one - r)).store(dx + L.r * H + j, k);
            (ld(dh_p + b * H) + d * r).store(dh_p + b * H + j, k);
          });
        });
        back(n, dxw_p + off * GH, GH, S(1), dh_p, H);  // (reset before: the r and z rows only)
      }
    }
  };
  over_batch(B, GH * H * static_cast<int64_t>(sizeof(S)), run_rows);

  // The weight gradients: one product over all steps.
  at::Tensor dw_hh;
  if (gru && L.reset_before) {
    dw_hh = at::empty_like(w_hh);
    dw_hh.narrow(0, 0, rz).copy_(at::mm(dhw.narrow(1, 0, rz).t(), h_prev));
    dw_hh.narrow(0, L.n * H, H).copy_(at::mm(dhw.narrow(1, L.n * H, H).t(), extra));  // extra = r * h_prev
  } else {
    dw_hh = at::mm(dhw.t(), h_prev);
  }
  auto db_hh = has_bias ? dhw.sum(0) : at::Tensor();
  at::Tensor dw_ch = w_ch.defined() ? dwc_rows.sum(0) : at::Tensor();
  return {dxw, dh, lstm ? dc : at::Tensor(), dw_hh, db_hh, dw_ch};
}

void check_inputs(const at::Tensor& xw, const at::Tensor& h0, const at::Tensor& w_hh) {
  TORCH_CHECK(xw.device().is_cpu(), "rnnkit fused kernel: this build runs on the CPU only");
  TORCH_CHECK(xw.scalar_type() == at::kFloat || xw.scalar_type() == at::kDouble,
              "rnnkit fused kernel: supports float32 and float64, got ", xw.scalar_type());
  TORCH_CHECK(xw.dim() == 2 && h0.dim() == 2 && w_hh.dim() == 2, "rnnkit fused kernel: bad ranks");
}

at::Tensor opt(const c10::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

std::vector<at::Tensor> forward(std::vector<int64_t> layout, at::Tensor xw, at::Tensor h0,
                                c10::optional<at::Tensor> c0, at::Tensor w_hh, c10::optional<at::Tensor> b_hh,
                                c10::optional<at::Tensor> w_ch, at::Tensor batch_sizes, bool reverse, bool save) {
  check_inputs(xw, h0, w_hh);
  const Layout L = parse_layout(layout);
  const Steps steps = make_steps(batch_sizes, reverse);
  xw = xw.contiguous();
  h0 = h0.contiguous();
  w_hh = w_hh.contiguous();
  std::vector<at::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "rnnkit_recurrence_forward", [&] {
    result = forward_impl<scalar_t>(L, xw, h0, opt(c0), w_hh, opt(b_hh), opt(w_ch), steps, save);
  });
  return result;
}

std::vector<at::Tensor> backward(std::vector<int64_t> layout, at::Tensor d_output, at::Tensor dh_n,
                                 c10::optional<at::Tensor> dc_n, at::Tensor w_hh, bool has_bias,
                                 c10::optional<at::Tensor> w_ch, at::Tensor batch_sizes, bool reverse,
                                 std::vector<c10::optional<at::Tensor>> saved_in) {
  const Layout L = parse_layout(layout);
  const Steps steps = make_steps(batch_sizes, reverse);
  d_output = d_output.contiguous();
  dh_n = dh_n.contiguous();
  w_hh = w_hh.contiguous();
  std::vector<at::Tensor> saved;
  for (const auto& s : saved_in) saved.push_back(opt(s));
  std::vector<at::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES(d_output.scalar_type(), "rnnkit_recurrence_backward", [&] {
    result = backward_impl<scalar_t>(L, d_output, dh_n, opt(dc_n), w_hh, has_bias, opt(w_ch), steps, saved);
  });
  return result;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused recurrence of one direction: forward");
  m.def("backward", &backward, "fused recurrence of one direction: backward");
}
