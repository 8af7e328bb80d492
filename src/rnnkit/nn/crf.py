"""A linear-chain CRF for tagging (EQUATIONS.md, "Tagging"), batched over padded sequences.

Dimension letters: T time, B batch, K tags.

    score(x, y) = s[y_1] + Σ_t e_t[y_t] + Σ_{t>1} A[y_{t-1}, y_t] + e[y_T]
    log Z by the forward algorithm: α_1 = s + e_1, α_t[j] = logsumexp_i(α_{t-1}[i] + A[i, j]) + e_t[j]
    loss = log Z − score(x, y); decoding by Viterbi (the same recursion with max, then backtracking)

Emissions are time-major (T, B, K); `lengths` (B,) gives each sequence's own length, and the steps
past it change nothing (α is carried through them unchanged). Autograd differentiates log Z; the
NumPy twin (rnnkit.reference.crf) does it by hand.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CRF(nn.Module):
    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # A[i, j]: from tag i to tag j
        self.start = nn.Parameter(torch.empty(num_tags))  # s
        self.end = nn.Parameter(torch.empty(num_tags))  # e
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for parameter in (self.transitions, self.start, self.end):
            nn.init.uniform_(parameter, -0.1, 0.1)

    def _mask(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        steps = torch.arange(emissions.shape[0], device=emissions.device)
        return steps[:, None] < lengths.to(emissions.device)[None, :]  # (T, B)

    def log_partition(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """log Z of each sequence (B,)."""
        mask = self._mask(emissions, lengths)
        alpha = self.start + emissions[0]  # (B, K)
        for t in range(1, emissions.shape[0]):
            step = torch.logsumexp(alpha[:, :, None] + self.transitions, dim=1) + emissions[t]  # (B, K)
            alpha = torch.where(mask[t, :, None], step, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)  # (B,)

    def score(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """The score of each sequence's tag path (B,); tags (T, B), anything past a sequence's length."""
        mask = self._mask(emissions, lengths).to(emissions.dtype)  # (T, B)
        batch = torch.arange(emissions.shape[1], device=emissions.device)
        emitted = emissions.gather(2, tags[..., None]).squeeze(2)  # (T, B)
        total = self.start[tags[0]] + (emitted * mask).sum(dim=0)  # (B,)
        total = total + (self.transitions[tags[:-1], tags[1:]] * mask[1:]).sum(dim=0)
        last = tags[lengths.to(emissions.device) - 1, batch]  # (B,)
        return total + self.end[last]

    def neg_log_likelihood(self, emissions: Tensor, tags: Tensor, lengths: Tensor) -> Tensor:
        """log Z − score(x, y) of each sequence (B,)."""
        return self.log_partition(emissions, lengths) - self.score(emissions, tags, lengths)

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """The best tag path of each sequence (T, B); steps past a sequence's length hold its last tag."""
        mask = self._mask(emissions, lengths)
        best = self.start + emissions[0]  # (B, K)
        pointers = []
        for t in range(1, emissions.shape[0]):
            candidates = best[:, :, None] + self.transitions  # (B, K, K): from i to j
            values, pointer = candidates.max(dim=1)  # (B, K)
            keep = mask[t, :, None]
            pointers.append(torch.where(keep, pointer, torch.arange(self.num_tags, device=emissions.device)))
            best = torch.where(keep, values + emissions[t], best)
        path = [(best + self.end).argmax(dim=1)]  # (B,)
        for pointer in reversed(pointers):
            path.append(pointer.gather(1, path[-1][:, None]).squeeze(1))
        return torch.stack(path[::-1])  # (T, B)
