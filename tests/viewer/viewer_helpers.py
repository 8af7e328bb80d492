"""Small runs for the viewer's tests, made once per session: a character LM (with samples and validation
records), a classifier, a tagger with a CRF, and an experiment folder holding one of them."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from classifier_helpers import tiny_files as classifier_files
from classifier_helpers import train_tiny_classifier
from language_model_helpers import train_tiny_run, write_tiny_corpus
from tagger_helpers import tiny_files as tagger_files
from tagger_helpers import train_tiny_tagger


def tiny_png(path: Path) -> None:
    """A 2x2 red PNG, written by hand (zlib and struct), for the experiment folder."""
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def make_runs(directory: Path) -> dict[str, Path]:
    """{"lm", "classifier", "tagger", "experiment"}: directories under directory/runs."""
    data = directory / "data"
    data.mkdir(parents=True)
    runs = directory / "runs"
    corpus = write_tiny_corpus(data, 6000)
    lm = train_tiny_run(
        runs / "char-lm",
        corpus,
        "train.max_steps=12",
        "train.log_every=2",
        "train.eval_every=4",
        "data.eval_tokens=200",
        "sample.every=6",
        "sample.length=40",
    )
    classifier = train_tiny_classifier(
        runs / "sentiment", *classifier_files(data), "train.max_steps=20", "train.eval_every=10"
    )
    tagger = train_tiny_tagger(runs / "pos", *tagger_files(data), "train.max_steps=10", "model.crf=true")
    experiment = runs / "gate-ablation-test"
    experiment.mkdir()
    (experiment / "report.md").write_text("# gate ablation\n\n| cell | accuracy |\n|---|---:|\n| lstm | 0.5 |\n")
    (experiment / "results.json").write_text(json.dumps({"experiment": "gate-ablation", "runs": []}))
    tiny_png(experiment / "accuracy.png")
    train_tiny_classifier(experiment / "lstm", *classifier_files(data), "train.max_steps=5")
    return {"lm": lm, "classifier": classifier, "tagger": tagger, "experiment": experiment, "root": runs}
