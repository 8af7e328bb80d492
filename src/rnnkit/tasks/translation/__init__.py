"""The translation task (sequence to sequence): an RNN encoder reads the source sentence and an RNN
language model conditioned on it, the decoder, writes the target, with attention over the source
(EQUATIONS.md, "Translation"). Its definition (TASK) and its commands, `translate`, `eval` and `score`.

Below this face: `config.py` ([model], [data], [train]), `data.py` (parallel text, the vocabularies) and
`metrics.py` (sacreBLEU), with no torch; the engine `torch.py`. Decoding, greedy and beam search over a
batch of sentences, is rnnkit.decode.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from rnnkit.data.text import stdin_lines
from rnnkit.decode import search_all
from rnnkit.errors import UsageError
from rnnkit.tasks import EVAL_DATA_OPTION, SCORE_FILE_OPTION, Option, write_metrics
from rnnkit.tasks.engines import ENGINE_OPTION, model_function
from rnnkit.tasks.translation import data
from rnnkit.tasks.translation.config import TranslationConfig
from rnnkit.tasks.translation.data import (
    END_ID,
    MAX_LENGTH_RATIO,
    START_ID,
    Pair,
    detokenize,
    encode,
    encode_side,
    load_run_files,
    max_target_lengths,
    read_pairs,
    stdin_pairs,
    token_texts,
    tokens_of,
)
from rnnkit.tasks.translation.metrics import sacrebleu_library, translation_scores

BEAM, LENGTH_PENALTY = 5, 0.5  # translate's and eval's defaults
SEARCH_ROWS = 160  # hypotheses searched together: 32 sentences with beam 5, 160 greedy, 1 with beam 100
MAX_BEAM = 100


def load(run, checkpoint: Path):
    """(the checkpoint's model on its device, the source and target vocabularies)."""
    from rnnkit.tasks.translation.torch import load_checkpoint_model

    source, target = load_run_files(run.path)
    model, device = load_checkpoint_model(run, checkpoint, len(source), len(target))
    return model, device, source, target


def translation_function(run, checkpoint: Path, engine: str):
    """(the source and target vocabularies, a function: source id arrays, beam width -> a decoder for
    rnnkit.decode), of the chosen engine."""
    source, target = load_run_files(run.path)
    return source, target, model_function(__name__, engine, run, checkpoint, len(source), len(target))


def translate_encoded(
    decoder_for, encoded: list, settings: dict, max_length: int, track: bool = False, rows: int = SEARCH_ROWS
) -> list:
    """The best Hypothesis (rnnkit.decode) of each source (an array of ids), searched in batches of about
    `rows` hypotheses (sentences times the beam), so that memory does not grow with the beam."""
    limits = max_target_lengths([len(ids) for ids in encoded], settings["max_length_ratio"], max_length)
    batch = max(1, rows // settings["beam"])
    return search_all(
        decoder_for, encoded, settings["beam"], limits, START_ID, END_ID, settings["length_penalty"], track, batch
    )


def check_settings(options: dict) -> dict:
    """The search's settings from the options given (None: the default), checked."""
    defaults = {"beam": BEAM, "length_penalty": LENGTH_PENALTY, "max_length_ratio": MAX_LENGTH_RATIO}
    settings = {key: default if options.get(key) is None else options[key] for key, default in defaults.items()}
    if not 1 <= settings["beam"] <= MAX_BEAM:
        raise UsageError(f"--beam must be 1 to {MAX_BEAM}, got {settings['beam']}")
    if not -10 <= settings["length_penalty"] <= 10:
        raise UsageError(f"--length-penalty must be a number in [-10, 10], got {settings['length_penalty']:g}")
    if not 0.1 <= settings["max_length_ratio"] <= 10:
        raise UsageError(f"--max-length-ratio must be a number in [0.1, 10], got {settings['max_length_ratio']:g}")
    return settings


def source_lines(source: str | None, stream) -> list[str]:
    if source in (None, "-"):
        lines = [line.rstrip("\r\n") for line in stdin_lines(stream)]
        where = "standard input"
    else:
        from rnnkit.data.text import iter_lines

        lines, where = [line.rstrip("\r\n") for line in iter_lines(source)], source
    for number, line in enumerate(lines, 1):
        if not line.strip():
            raise UsageError(f"{where}, line {number}: nothing to translate (an empty line)")
    if not lines:
        raise UsageError(f"{where}: nothing to translate (no lines)")
    return lines


def translate_run(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    """`rnnkit translate`: one translation per input line, or one JSON line with --json."""
    settings = check_settings(options)
    lines = source_lines(options.get("file"), options.get("stdin", sys.stdin))
    plots = options.get("plot_attention")
    if plots:
        from rnnkit.plots import pyplot

        if run.config.model.attention == "none":
            raise UsageError("--plot-attention: this model has no attention (model.attention = 'none')")
        pyplot()  # a missing matplotlib is said before any work
    source, target, decoder_for = translation_function(run, checkpoint, options.get("engine", "torch"))
    config = run.config
    texts = [line.strip().lower() if config.data.lowercase else line.strip() for line in lines]
    encoded, truncated = encode_side(source, texts, config.data.max_length)
    if truncated:
        print(
            f"rnnkit translate: {truncated} line(s) longer than data.max_length = {config.data.max_length} tokens "
            "were truncated",
            file=sys.stderr,
        )
    unknown = sorted({token for text in texts for token in tokens_of(source, text) if token not in source})
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        print(f"rnnkit translate: source words not in the vocabulary, read as <unk>: {shown}", file=sys.stderr)
    track = bool(options.get("json") or plots) and config.model.attention != "none"
    hypotheses = translate_encoded(decoder_for, encoded, settings, config.data.max_length, track)
    for number, (text, ids, hypothesis) in enumerate(zip(texts, encoded, hypotheses), 1):
        translation = detokenize(target, hypothesis.ids)
        if options.get("json"):
            record = {
                "source": text,
                "translation": translation,
                "logprob": round(hypothesis.logp, 6),
                "score": round(hypothesis.score, 6),
                "tokens": len(hypothesis.ids),
                "source_tokens": token_texts(source, ids),
                "target_tokens": token_texts(target, hypothesis.ids),
                "attention": None if hypothesis.attention is None else np.round(hypothesis.attention, 5).tolist(),
            }
            unknown = [token for token in tokens_of(source, text) if token not in source]
            if unknown:
                record["unknown"] = unknown
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write(translation + "\n")
        if plots:
            plot_attention(
                Path(plots) / f"attention-{number}.png",
                token_texts(source, ids),
                token_texts(target, hypothesis.ids),
                hypothesis.attention,
            )
    out.flush()


def plot_attention(path: Path, source_tokens: list[str], target_tokens: list[str], weights) -> None:
    """A heatmap of the attention weights (target tokens × source tokens)."""
    from rnnkit.plots import pyplot

    plt = pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = lambda tokens: [token.replace(" ", "·") for token in tokens]  # noqa: E731 (a word's leading space)
    figure, axes = plt.subplots(figsize=(1 + 0.35 * len(source_tokens), 1 + 0.3 * len(target_tokens)))
    axes.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(len(source_tokens)), shown(source_tokens), rotation=90, fontsize=8)
    axes.set_yticks(range(len(target_tokens)), shown(target_tokens), fontsize=8)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def pairs_to_evaluate(run, data_path: str | None) -> list[Pair]:
    config = run.config
    if data_path:
        return read_pairs(data_path, config.data)
    if config.data.validation:
        return read_pairs(config.data.validation, config.data)
    return data.prepare(config, run.path)[1].validation.pairs


def evaluate_run(run, checkpoint: Path, data_path: str | None, options: dict | None = None) -> dict:
    """`rnnkit eval`: BLEU (cased, detokenized; and lowercased, tokenized), chrF of beam-search
    translations (the search's options as `translate` takes them), the references' perplexity and the
    number of sentences."""
    from rnnkit.tasks.translation.torch import SearchDecoder, pair_losses

    sacrebleu_library()
    pairs = pairs_to_evaluate(run, data_path)
    model, device, source, target = load(run, checkpoint)
    encoded, _ = encode(pairs, source, target, run.config.data.max_length)
    settings = check_settings(options or {})
    totals, counts = pair_losses(model, encoded, device, run.config.train.eval_batch_size)
    nll = float(totals.sum() / counts.sum())
    decoder_for = lambda sources, width: SearchDecoder.of(model, device, sources, width)  # noqa: E731
    hypotheses = translate_encoded(decoder_for, encoded.source, settings, run.config.data.max_length)
    scores = translation_scores([detokenize(target, h.ids) for h in hypotheses], [pair.target for pair in pairs])
    return {**scores, "perplexity": math.exp(min(nll, 700.0)), "nll": nll, **settings}


def score_run(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    """`rnnkit score`: each pair's log p(target | source) (natural log, the end token included), its
    target token count and perplexity, as JSON lines."""
    from rnnkit.tasks.translation.torch import pair_losses

    path = options.get("file")
    if path in (None, "-"):
        pairs = stdin_pairs(options.get("stdin", sys.stdin), run.config.data)
    else:
        pairs = read_pairs(path, run.config.data)
    model, device, source, target = load(run, checkpoint)
    encoded, _ = encode(pairs, source, target, run.config.data.max_length)
    totals, counts = pair_losses(model, encoded, device, run.config.train.eval_batch_size)
    for pair, total, count in zip(pairs, totals, counts):
        record = {
            "source": pair.source,
            "target": pair.target,
            "logprob": round(-float(total), 6),
            "tokens": int(count),
        }
        record["perplexity"] = math.exp(min(float(total) / count, 700.0))
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


# ---- the command line ------------------------------------------------------------------------------------
def eval_translation_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    write_metrics(evaluate_run(run, checkpoint, options.get("data"), options), out)


def translate_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    translate_run(run, checkpoint, options, out)


def score_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    score_run(run, checkpoint, options, out)


SEARCH_OPTIONS = (  # translate's and eval's
    Option(("--beam",), {"type": int, "metavar": "N", "help": f"beam width; 1 is greedy (default {BEAM})"}),
    Option(
        ("--length-penalty",),
        {
            "type": float,
            "metavar": "A",
            "help": f"rank hypotheses by logp / length^A (length-normalised; default {LENGTH_PENALTY})",
        },
    ),
    Option(
        ("--max-length-ratio",),
        {
            "type": float,
            "metavar": "R",
            "help": f"a translation has at most R × the source's tokens + 5 tokens (default {MAX_LENGTH_RATIO})",
        },
    ),
)
TRANSLATE_OPTIONS = (
    Option(
        ("file",),
        {"nargs": "?", "metavar": "FILE", "help": "sentences to translate, one a line; - or nothing: standard input"},
    ),
    *SEARCH_OPTIONS,
    ENGINE_OPTION,
    Option(("--json",), {"action": "store_true", "help": "one JSON line a sentence, with its score and attention"}),
    Option(
        ("--plot-attention",), {"metavar": "DIR", "help": "write each sentence's attention heatmap as a PNG in DIR"}
    ),
)


class TranslationTask:
    """Translation as the registry holds it (rnnkit.tasks.Task)."""

    name = "translation"
    summary = "translation"
    config_class = TranslationConfig
    data_keys = {"train": "data.train", "validation": "data.validation"}
    resumable_keys = ()
    commands = {"eval": eval_translation_command, "translate": translate_command, "score": score_command}
    options = {
        "eval": (EVAL_DATA_OPTION, *SEARCH_OPTIONS),
        "translate": TRANSLATE_OPTIONS,
        "score": (SCORE_FILE_OPTION,),
    }
    prepare = staticmethod(data.prepare)
    evaluate = staticmethod(evaluate_run)
    save = staticmethod(data.save)

    @staticmethod
    def upgrade_record(record: dict) -> dict:
        return record

    @staticmethod
    def build_model(config: TranslationConfig, prepared):
        from rnnkit.tasks.translation.torch import Translator

        return Translator(len(prepared.source), len(prepared.target), config.model)

    @staticmethod
    def build_training(config: TranslationConfig, prepared, device):
        from rnnkit.tasks.translation.torch import TranslationTraining

        sacrebleu_library()  # validation's BLEU needs it: said before training starts
        return TranslationTraining(config, prepared, device)


TASK = TranslationTask()
