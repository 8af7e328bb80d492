"""The language-model task: its definition (TASK) and its commands, `eval`, `sample` and `score`.

A language model reads a text as tokens (characters, words or BPE pieces) and predicts each next token.
Below this face: `config.py` (the sections it owns: [model], [data] with the truncated-BPTT window,
and [sample]), `data.py` and `metrics.py` (no torch), and the two engines, `torch.py` (the network, its
loss, evaluation and training) and `numpy.py` (sampling without torch).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from rnnkit.config import check_seed_option
from rnnkit.data.tokenizers import stream_text
from rnnkit.data.vocabulary import Vocabulary, describe_tokens
from rnnkit.errors import UsageError
from rnnkit.tasks import EVAL_DATA_OPTION, EXPORT_OPTIONS, SCORE_FILE_OPTION, Option, eval_command, export_command
from rnnkit.tasks.engines import ENGINE_OPTION, model_function
from rnnkit.tasks.language_model import data
from rnnkit.tasks.language_model.config import LanguageModelConfig, upgrade_record
from rnnkit.tasks.language_model.metrics import perplexity

SAMPLE_KEYS = ("length", "temperature", "top_k", "top_p", "prime")  # options that override the [sample] settings


def step_function(run, checkpoint: Path, vocabulary: Vocabulary, engine: str):
    """The checkpoint's model as a step function for sampling, on the chosen engine."""
    return model_function(__name__, engine, run, checkpoint, vocabulary)


def sample_run(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    """Write samples (the prime, then its continuation) to `out` as they are generated. `options`:
    overrides of the [sample] settings (length, temperature, top_k, top_p, prime), and seed,
    num_samples, skip_unknown, engine, and beam (with length_penalty): the `beam` most likely
    continuations as JSON lines. Everything is checked before the first character is written."""
    import numpy as np

    from rnnkit.generate import generate_tokens, prime_ids, start_ids

    settings = replace(run.config.sample, **{key: options[key] for key in SAMPLE_KEYS if key in options})
    vocabulary = data.load_vocabulary(run.path)
    context = prime_ids(vocabulary, settings.prime, options.get("skip_unknown", False))
    unknown = vocabulary.unknown(vocabulary.tokenizer.split(settings.prime)) if vocabulary.unknown_token else []
    step = step_function(run, checkpoint, vocabulary, options.get("engine", "torch"))
    if unknown:
        print(
            f"rnnkit sample: the prime's {vocabulary.tokenizer.unit} {describe_tokens(unknown)} are not in the "
            f"vocabulary and read as {vocabulary.unknown_token}",
            file=sys.stderr,
        )
    if options.get("beam"):
        return beam_run(step, vocabulary, context or start_ids(vocabulary), settings, options, out)
    rng = np.random.default_rng(options.get("seed"))
    samples = options.get("num_samples", 1)
    for number in range(1, samples + 1):
        if samples > 1:
            out.write(f"--- sample {number} of {samples} ---\n")
        out.write(settings.prime)
        for piece in stream_text(
            vocabulary.tokenizer, generate_tokens(step, vocabulary, context, settings, rng), settings.prime
        ):
            out.write(piece)
            out.flush()  # stream: the reader sees each token as it is chosen
        out.write("\n")
    out.flush()


def beam_run(step, vocabulary: Vocabulary, context: list[int], settings, options: dict, out: TextIO) -> None:
    """The beam's continuations of the prime, best first, as JSON lines with their log-probabilities;
    a continuation ends at a line end or at the length limit."""
    from rnnkit.generate import beam_search, start_ids

    end = start_ids(vocabulary)[-1]  # a line break's (last) token
    width = min(options["beam"], len(vocabulary))  # the command's beam is never wider than the vocabulary
    results = beam_search(step, context, width, settings.length, end, options.get("length_penalty", 0.0))
    for ids, logp, score in results:
        text = "".join(stream_text(vocabulary.tokenizer, vocabulary.decode(ids), settings.prime))
        record = {"text": settings.prime + text, "logprob": logp, "score": score, "tokens": len(ids)}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


def score_run(run, checkpoint: Path, source: str | None, options: dict, out: TextIO) -> None:
    """`rnnkit score`: per line of the file (or standard input), the summed natural-log probability, the
    token count (a line's end included) and the perplexity, as JSON lines; each line from a fresh
    state, or with `carry` the state carried across lines. Words outside the vocabulary are <unk>,
    and listed."""
    from rnnkit.data.text import read_stdin, read_text
    from rnnkit.generate import start_ids
    from rnnkit.tasks.language_model.torch import line_log_probabilities, load_checkpoint_model

    vocabulary = data.load_vocabulary(run.path)
    text = (
        read_text(source, minimum_characters=0)
        if source not in (None, "-")
        else read_stdin(options.get("stdin", sys.stdin))
    )
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise UsageError(f"{source if source not in (None, '-') else 'standard input'}: nothing to score (no lines)")
    tokens = [vocabulary.tokenizer.split(line + "\n") for line in lines]
    if vocabulary.unknown_token is None:
        missing = vocabulary.unknown([token for line in tokens for token in line])
        if missing:
            raise UsageError(f"{vocabulary.tokenizer.unit} not in the vocabulary: {describe_tokens(missing)}")
    ids = [[int(i) for i in vocabulary.encode(line)] for line in tokens]
    model, device = load_checkpoint_model(run, checkpoint, vocabulary)
    scores = line_log_probabilities(model, device, ids, start_ids(vocabulary), options.get("carry", False))
    for number, (line, line_tokens, logprob) in enumerate(zip(lines, tokens, scores), 1):
        record = {
            "line": number,
            "logprob": logprob,
            "tokens": len(line_tokens),
            "perplexity": perplexity(logprob, len(line_tokens)),
            "unknown": vocabulary.unknown(line_tokens) if vocabulary.unknown_token else [],
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """{"nll", "perplexity", "tokens"} on a text (default: the run's validation text), batch 1; "bpc"
    for characters; "out_of_vocabulary" (tokens read as <unk>) where the vocabulary has <unk>."""
    from rnnkit.data.corpus import load_evaluation_ids
    from rnnkit.tasks.language_model.torch import evaluate_language_model, load_checkpoint_model

    vocabulary = data.load_vocabulary(run.path)
    if data_path:
        ids, unknown = load_evaluation_ids(data_path, vocabulary)
    else:
        ids, unknown = data.validation_ids(run.config, vocabulary)
    model, device = load_checkpoint_model(run, checkpoint, vocabulary)
    metrics = evaluate_language_model(model, ids, device, 1, vocabulary.tokenizer.name == "char")
    return metrics | ({"out_of_vocabulary": unknown} if vocabulary.unknown_token is not None else {})


# ---- the command line ------------------------------------------------------------------------------------
SAMPLE_CHECKS = (
    ("length", "--length", lambda n: n >= 0, "0 or more"),
    ("temperature", "--temperature", lambda t: math.isfinite(t) and t >= 0, "a finite number, 0 (greedy) or more"),
    ("top_k", "--top-k", lambda k: k >= 1, "1 or more"),
    ("top_p", "--top-p", lambda p: 0 < p <= 1, "in (0, 1]"),
    ("num_samples", "--num-samples", lambda n: n >= 1, "1 or more"),
    ("beam", "--beam", lambda n: n >= 1, "1 or more"),
    ("length_penalty", "--length-penalty", lambda a: -10 <= a <= 10, "a number in [-10, 10]"),
)


def sample_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    """`rnnkit sample`: the options checked under their flag names, the prime file read, then sample_run."""
    from rnnkit.data.text import read_text

    for key, flag, valid, expected in SAMPLE_CHECKS:
        if options.get(key) is not None and not valid(options[key]):
            raise UsageError(f"{flag} must be {expected}, got {options[key]:g}")
    check_seed_option("--seed", options.get("seed"))
    if options.get("prime_file"):
        options = {**options, "prime": read_text(options["prime_file"], minimum_characters=0)}
    sample_run(run, checkpoint, {key: value for key, value in options.items() if value is not None}, out)


def score_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    score_run(run, checkpoint, options["file"], options, out)


SAMPLE_OPTIONS = (
    Option(("--prime",), {"metavar": "TEXT", "help": "text to start from (printed, then continued)"}, group="prime"),
    Option(("--prime-file",), {"metavar": "FILE", "help": "read the prime from a UTF-8 file"}, group="prime"),
    Option(("--length",), {"type": int, "metavar": "N", "help": "tokens to generate after the prime"}),
    Option(("--temperature",), {"type": float, "metavar": "T", "help": "divide the logits by T; 0 is greedy (argmax)"}),
    Option(("--top-k",), {"type": int, "metavar": "K", "help": "sample only among the K most likely tokens (K >= 1)"}),
    Option(
        ("--top-p",),
        {
            "type": float,
            "metavar": "P",
            "help": "sample only among the most likely tokens whose probabilities sum to P, in (0, 1]",
        },
    ),
    Option(
        ("--seed",),
        {
            "type": int,
            "metavar": "S",
            "help": "random seed: the same seed gives the same text (default: a fresh seed each time)",
        },
    ),
    Option(("--num-samples",), {"type": int, "default": 1, "metavar": "N", "help": "how many samples (default 1)"}),
    Option(
        ("--skip-unknown",),
        {"action": "store_true", "help": "drop prime tokens that are not in the vocabulary instead of failing"},
    ),
    ENGINE_OPTION,
    Option(
        ("--beam",),
        {
            "type": int,
            "metavar": "N",
            "help": "instead of sampling, the N most likely continuations "
            "(beam search, up to --length tokens or a line end), as JSON lines with their log-probabilities",
        },
    ),
    Option(
        ("--length-penalty",),
        {
            "type": float,
            "default": 0.0,
            "metavar": "A",
            "help": "beam search ranks by logp / length^A, A in [-10, 10] (default 0: the raw sum)",
        },
    ),
)


SCORE_OPTIONS = (
    SCORE_FILE_OPTION,
    Option(("--carry",), {"action": "store_true", "help": "carry the state from each line into the next"}),
)


class LanguageModelTask:
    """The language model as the registry holds it (rnnkit.tasks.Task)."""

    name = "language_model"
    summary = "language model"
    config_class = LanguageModelConfig
    data_keys = {"train": "data.corpus", "validation": "data.validation"}  # what --data and --val set
    resumable_keys = (
        "data.eval_tokens",
        "sample.length",
        "sample.temperature",
        "sample.top_k",
        "sample.top_p",
        "sample.prime",
        "sample.every",
    )
    commands = {"eval": eval_command, "sample": sample_command, "score": score_command, "export": export_command}
    options = {
        "eval": (EVAL_DATA_OPTION,),
        "sample": SAMPLE_OPTIONS,
        "score": SCORE_OPTIONS,
        "export": EXPORT_OPTIONS,
    }
    upgrade_record = staticmethod(upgrade_record)
    prepare = staticmethod(data.prepare)
    evaluate = staticmethod(evaluate_run)
    save = staticmethod(data.save)

    @staticmethod
    def build_model(config: LanguageModelConfig, corpus):
        from rnnkit.tasks.language_model.torch import LanguageModel

        return LanguageModel(len(corpus.vocabulary), config.model)

    @staticmethod
    def build_training(config: LanguageModelConfig, corpus, device):
        from rnnkit.tasks.language_model.torch import LanguageModelTraining

        return LanguageModelTraining(config, corpus, device)

    @staticmethod
    def exported_model(run, checkpoint: Path):
        from rnnkit.tasks.language_model.torch import exported_model

        return exported_model(run, checkpoint, data.load_vocabulary(run.path))


TASK = LanguageModelTask()
