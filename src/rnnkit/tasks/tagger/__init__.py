"""The sequence-tagging task (many-to-many): a tag for every word, e.g. parts of speech. Its definition
(TASK) and its commands, `eval` and `predict`.

Each word is its embedding joined with a character-level encoding of its spelling (a small BiLSTM
over its characters, what makes an unseen word taggable); a stacked bidirectional recurrent layer
reads the sentence (optionally with residual connections between layers); a linear layer scores the
tags of each word (EQUATIONS.md, "Tagging"), decoded by argmax or, with `model.crf`, by a
linear-chain CRF's Viterbi path. Below this face: `config.py` ([model] and [data]), `data.py` (the
tagged files and the run's vocabulary.json, characters.json and tags.json) and `metrics.py`, with no
torch; the engines `torch.py` and `numpy.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from rnnkit.data.tagged import COLUMN_INDEX, TaggedSentence, read_tagged, tsv_sentences
from rnnkit.data.text import read_stdin, stdin_lines
from rnnkit.errors import UsageError
from rnnkit.tasks import EVAL_DATA_OPTION, EXPORT_OPTIONS, TEXTS_OPTION, Option, eval_command, export_command
from rnnkit.tasks.engines import ENGINE_OPTION, model_function
from rnnkit.tasks.tagger import data
from rnnkit.tasks.tagger.config import TaggerConfig
from rnnkit.tasks.tagger.data import TaggerData, encode, load_run_files
from rnnkit.tasks.tagger.metrics import tagging_metrics


def tagging_function(run, checkpoint: Path, prepared: TaggerData, engine: str):
    """The checkpoint's model as a function: EncodedSentences -> predicted tag ids per sentence."""
    return model_function(__name__, engine, run, checkpoint, prepared)


def evaluate_run(run, checkpoint: Path, data_path: str | None) -> dict:
    """`rnnkit eval`: the metrics on a tagged file (default: the run's validation data)."""
    config = run.config
    prepared = TaggerData(*load_run_files(run.path), None, None)
    if data_path:
        encoded = encode(
            read_tagged(data_path, config.data.format, config.data.column), prepared, config.data.lowercase
        )
    elif config.data.validation:
        encoded = encode(
            read_tagged(config.data.validation, config.data.format, config.data.column), prepared, config.data.lowercase
        )
    else:
        encoded = data.prepare(config, run.path)[1].validation
    predicted = tagging_function(run, checkpoint, prepared, "torch")(encoded)
    unseen = [words == 1 for words in encoded.words]  # <unk>: not in the vocabulary
    return tagging_metrics(
        encoded.tags,
        predicted,
        unseen,
        prepared.tags,
        [[tag or "_" for tag in sentence.tags] for sentence in encoded.sentences],
    )


def conllu_output(sentence: TaggedSentence, tags: list[str], column: str) -> list[str]:
    """The sentence's CoNLL-U lines with the tag column filled and every other byte kept; a sentence
    read from plain text gets a `# text` comment and minimal token lines."""
    if not sentence.lines:
        rows = [f"{i}\t{token}\t_\t_\t_\t_\t_\t_\t_\t_" for i, token in enumerate(sentence.tokens, 1)]
        sentence = TaggedSentence(sentence.tokens, sentence.tags, [f"# text = {' '.join(sentence.tokens)}", *rows])
    output, position = [], 0
    for line in sentence.lines:
        fields = line.split("\t")
        if not line.startswith("#") and fields[0].isdigit():
            if position >= len(tags) or len(fields) < 10:
                raise UsageError(
                    f"a CoNLL-U sentence at line {sentence.first_line}: its token lines do not match "
                    f"the {len(tags)} words the model read"
                )
            fields[COLUMN_INDEX[column]] = tags[position]
            position += 1
            line = "\t".join(fields)
        output.append(line)
    if position != len(tags):
        raise UsageError(
            f"a CoNLL-U sentence at line {sentence.first_line}: {position} token lines for {len(tags)} words"
        )
    return output


def predict_run(run, checkpoint: Path, texts: list[str] | None, options: dict, out: TextIO) -> None:
    """`rnnkit predict`: CoNLL-U (from --conllu FILE or plain-text lines) or tsv, with predicted tags."""
    config = run.config
    conllu_path, format = options.get("conllu"), options.get("format") or "text"
    if conllu_path:
        sentences = read_tagged(conllu_path, "conllu", config.data.column, require_tags=False)
    elif format == "tsv":
        sentences = tsv_sentences(
            Path("standard input"), read_stdin(options.get("stdin", sys.stdin)), require_tags=False
        )
        if not sentences:
            raise UsageError("standard input: nothing to tag (no tokens)")
    else:
        lines = texts or [line.rstrip("\n") for line in stdin_lines(options.get("stdin", sys.stdin))]
        sentences = []
        for number, line in enumerate(lines, 1):
            if not line.split():
                raise UsageError(f"{'input' if texts else 'standard input, line'} {number}: nothing to tag (no words)")
            sentences.append(TaggedSentence(line.split(), [None] * len(line.split())))
    prepared = TaggerData(*load_run_files(run.path), None, None)
    predicted = tagging_function(run, checkpoint, prepared, options.get("engine", "torch"))(
        encode(sentences, prepared, config.data.lowercase)
    )
    for sentence, ids in zip(sentences, predicted):
        tags = [prepared.tags[i] for i in ids]
        if format == "tsv" and not conllu_path:
            out.write("".join(f"{token}\t{tag}\n" for token, tag in zip(sentence.tokens, tags)) + "\n")
        else:
            out.write("\n".join(conllu_output(sentence, tags, config.data.column)) + "\n\n")
    out.flush()


# ---- the command line ------------------------------------------------------------------------------------
def predict_command(run, checkpoint: Path, options: dict, out: TextIO) -> None:
    predict_run(run, checkpoint, options.get("texts"), options, out)


PREDICT_OPTIONS = (
    TEXTS_OPTION,
    ENGINE_OPTION,
    Option(
        ("--conllu",),
        {"metavar": "FILE", "help": "taggers: tag a CoNLL-U file; the tag column is filled, every other byte kept"},
    ),
    Option(
        ("--format",),
        {
            "choices": ("text", "tsv"),
            "help": "taggers, input on stdin: text (a sentence a line, "
            "whitespace-tokenised; CoNLL-U out, the default) or tsv (token<TAB>tag lines, blank lines "
            "between sentences; tsv out)",
        },
    ),
)


class TaggerTask:
    """The tagger as the registry holds it (rnnkit.tasks.Task)."""

    name = "tagger"
    summary = "sequence tagger"
    config_class = TaggerConfig
    data_keys = {"train": "data.train", "validation": "data.validation"}
    resumable_keys = ()
    commands = {"eval": eval_command, "predict": predict_command, "export": export_command}
    options = {"eval": (EVAL_DATA_OPTION,), "predict": PREDICT_OPTIONS, "export": EXPORT_OPTIONS}
    prepare = staticmethod(data.prepare)
    evaluate = staticmethod(evaluate_run)
    save = staticmethod(data.save)

    @staticmethod
    def upgrade_record(record: dict) -> dict:
        return record

    @staticmethod
    def build_model(config: TaggerConfig, prepared: TaggerData):
        from rnnkit.tasks.tagger.torch import Tagger

        return Tagger(len(prepared.vocabulary), len(prepared.characters), len(prepared.tags), config.model)

    @staticmethod
    def build_training(config: TaggerConfig, prepared: TaggerData, device):
        from rnnkit.tasks.tagger.torch import TaggerTraining

        return TaggerTraining(config, prepared, device)

    @staticmethod
    def exported_model(run, checkpoint: Path):
        from rnnkit.tasks.tagger.torch import exported_model

        return exported_model(run, checkpoint, *load_run_files(run.path))


TASK = TaggerTask()
