import io

import numpy as np
import pytest

from language_model_helpers import train_tiny_run, write_tiny_corpus
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError
from rnnkit.generate import FEED_WINDOW, choose_token, feed, generate_tokens, next_token_probabilities, prime_ids
from rnnkit.rundir import VOCABULARY
from rnnkit.runs import open_run
from rnnkit.tasks.language_model import sample_run, step_function
from rnnkit.tasks.language_model.config import SampleConfig

LOGITS = np.log(np.array([0.05, 0.4, 0.1, 0.3, 0.15]))


def test_temperature_one_is_the_softmax():
    np.testing.assert_allclose(next_token_probabilities(LOGITS, 1.0, 0, 1.0), np.exp(LOGITS), rtol=1e-12)


def test_top_k_keeps_the_k_most_likely():
    probabilities = next_token_probabilities(LOGITS, 1.0, 2, 1.0)
    np.testing.assert_allclose(probabilities, [0, 0.4 / 0.7, 0, 0.3 / 0.7, 0], rtol=1e-12)


def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    probabilities = next_token_probabilities(LOGITS, 1.0, 0, 0.7)  # 0.4 + 0.3 reaches 0.7
    np.testing.assert_allclose(probabilities, [0, 0.4 / 0.7, 0, 0.3 / 0.7, 0], rtol=1e-12)
    assert np.count_nonzero(next_token_probabilities(LOGITS, 1.0, 0, 0.01)) == 1


def test_low_temperature_sharpens():
    assert next_token_probabilities(LOGITS, 0.1, 0, 1.0)[1] > 0.9


def test_temperature_zero_is_greedy():
    assert choose_token(LOGITS, SampleConfig(temperature=0.0), np.random.default_rng(0)) == 1


def counting_step(ids, state):
    """A stand-in model whose next-token logits depend on the last token; its state counts the ids fed."""
    return np.roll(LOGITS, ids[-1]), (state or 0) + len(ids)


def test_subnormal_and_tiny_temperatures_are_greedy():
    for temperature in (5e-324, 1e-300, 1e-30):
        probabilities = next_token_probabilities(LOGITS, temperature, 0, 1.0)
        np.testing.assert_array_equal(probabilities, [0, 1, 0, 0, 0])


def test_a_long_context_is_fed_in_bounded_windows_with_the_state_carried():
    calls = []

    def step(ids, state):
        calls.append(len(ids))
        return counting_step(ids, state)

    logits, state = feed(step, list(range(5)) * 1000)
    assert state == 5000 and max(calls) == FEED_WINDOW and sum(calls) == 5000
    np.testing.assert_array_equal(logits, np.roll(LOGITS, 4))


def test_same_seed_same_text_and_other_seed_other_text():
    vocabulary = Vocabulary(list("abcde"))
    settings = SampleConfig(length=40)

    def text(seed):
        return "".join(generate_tokens(counting_step, vocabulary, [0], settings, np.random.default_rng(seed)))

    assert text(7) == text(7)
    assert text(7) != text(8)
    assert len(text(7)) == 40


def test_prime_with_unknown_characters():
    vocabulary = Vocabulary(list("abc"))
    with pytest.raises(UsageError, match=r"not in the vocabulary: 'x' \(U\+0078\), 'é'.*--skip-unknown"):
        prime_ids(vocabulary, "axbé", skip_unknown=False)
    assert prime_ids(vocabulary, "axbé", skip_unknown=True) == [0, 1]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("generate")
    corpus = write_tiny_corpus(directory)
    return train_tiny_run(directory / "run", corpus, "model.hidden_size=32", "optim.lr=0.01", "train.max_steps=150")


def engines(trained_run):
    run = open_run(trained_run)
    vocabulary = Vocabulary.load(run.path / VOCABULARY)
    checkpoint = run.directory.checkpoint()
    return (
        run,
        vocabulary,
        {engine: step_function(run, checkpoint, vocabulary, engine) for engine in ("torch", "numpy")},
    )


def test_greedy_numpy_engine_equals_torch_engine(trained_run):
    run, vocabulary, steps = engines(trained_run)
    settings = SampleConfig(length=200, temperature=0.0)
    context = prime_ids(vocabulary, "ROMEO:\n", skip_unknown=False)
    texts = {
        engine: "".join(generate_tokens(step, vocabulary, context, settings, np.random.default_rng(0)))
        for engine, step in steps.items()
    }
    assert texts["torch"] == texts["numpy"]
    assert len(set(texts["torch"])) > 3  # a trained model, not a constant string


def test_engines_agree_on_the_logits(trained_run):
    run, vocabulary, steps = engines(trained_run)
    context = prime_ids(vocabulary, "First Citizen:\nBefore we", skip_unknown=False)
    torch_logits, _ = steps["torch"](context, None)
    numpy_logits, _ = steps["numpy"](context, None)
    np.testing.assert_allclose(numpy_logits, torch_logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_a_prime_fed_in_windows_gives_the_logits_of_one_call(trained_run, engine):
    run, vocabulary, steps = engines(trained_run)
    context = prime_ids(vocabulary, "First Citizen:\nBefore we proceed any further, hear me speak.", skip_unknown=False)
    whole, _ = steps[engine](context, None)
    windowed, _ = feed(steps[engine], context, window=7)
    np.testing.assert_allclose(windowed, whole, rtol=1e-5, atol=1e-6)


def test_sample_run_prints_prime_then_continuation(trained_run):
    run = open_run(trained_run)
    options = {"prime": "First", "length": 30, "seed": 3, "num_samples": 2}
    out = io.StringIO()
    sample_run(run, run.directory.checkpoint(), options, out)
    lines = out.getvalue()
    assert lines.count("--- sample") == 2 and lines.count("First") >= 2
    again = io.StringIO()
    sample_run(run, run.directory.checkpoint(), options, again)
    assert again.getvalue() == lines


def markov_step(table):
    """A model whose next-token scores depend on the last token only (table: (V, V) log-probabilities)."""
    return lambda ids, state: (table[ids[-1]], None)


def exhaustive(table, context, length, end=None):
    """Every continuation of exactly `length` tokens (or ending at `end`) with its log-probability."""
    results = []

    def extend(ids, logp):
        if ids and (len(ids) == length or ids[-1] == end):
            results.append((ids, logp))
            return
        previous = ids[-1] if ids else context[-1]
        for token in range(table.shape[0]):
            extend(ids + [token], logp + table[previous, token])

    extend([], 0.0)
    return sorted(results, key=lambda r: -r[1])


@pytest.mark.parametrize("end", [None, 2])
def test_beam_search_with_a_wide_beam_is_exhaustive_search(end):
    from rnnkit.generate import beam_search, log_softmax

    rng = np.random.default_rng(0)
    table = np.stack([log_softmax(row) for row in rng.normal(size=(4, 4)) * 2])
    found = beam_search(markov_step(table), [1], width=64, length=3, end=end)
    expected = exhaustive(table, [1], 3, end)[:64]
    assert [ids for ids, _, _ in found] == [ids for ids, _ in expected]
    np.testing.assert_allclose([logp for _, logp, _ in found], [logp for _, logp in expected], rtol=1e-12)
    narrow = beam_search(markov_step(table), [1], width=1, length=3, end=end)  # width 1: greedy
    greedy, previous = [], 1
    for _ in range(3):
        previous = int(np.argmax(table[previous]))
        greedy.append(previous)
        if previous == end:
            break
    assert narrow[0][0] == greedy


def test_beam_length_penalty_ranks_by_logp_over_length():
    from rnnkit.generate import beam_search, log_softmax

    table = np.stack([log_softmax(np.array(row)) for row in ([0.0, 3.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0])])
    results = beam_search(markov_step(table), [0], width=9, length=4, end=2, length_penalty=1.0)
    assert all(score == pytest.approx(logp / len(ids)) for ids, logp, score in results)
    assert [score for _, _, score in results] == sorted((score for _, _, score in results), reverse=True)
