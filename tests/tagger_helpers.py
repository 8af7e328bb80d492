"""Tiny tagging data and runs for the tests: a toy grammar whose tags the words (and their endings) decide."""

from __future__ import annotations

import io
import random
from pathlib import Path

from rnnkit.config import apply_assignments
from rnnkit.tasks.tagger.config import TaggerConfig

LEXICON = {
    "DET": ["the", "a", "this"],
    "NOUN": ["dog", "cat", "idea", "house", "runner"],
    "VERB": ["runs", "sees", "walked", "likes"],
    "ADJ": ["big", "quick", "red"],
    "PUNCT": ["."],
}
TINY_SETTINGS = [
    "model.embedding_size=8",
    "model.hidden_size=8",
    "model.char_embedding_size=4",
    "model.char_hidden_size=4",
    "train.batch_size=8",
    "train.log_every=5",
    "train.eval_every=0",
    "train.checkpoint_every=3600",
    "train.eval_batch_size=16",
    "train.threads=1",
    "optim.lr=0.01",
]


def tagged_sentence(rng: random.Random) -> list[tuple[str, str]]:
    words = [("DET", rng.choice(LEXICON["DET"]))]
    if rng.random() < 0.5:
        words.append(("ADJ", rng.choice(LEXICON["ADJ"])))
    words += [
        ("NOUN", rng.choice(LEXICON["NOUN"])),
        ("VERB", rng.choice(LEXICON["VERB"])),
        ("DET", rng.choice(LEXICON["DET"])),
        ("NOUN", rng.choice(LEXICON["NOUN"])),
        ("PUNCT", "."),
    ]
    return [(word, tag) for tag, word in words]


def conllu_text(sentences: list[list[tuple[str, str]]], with_extras: bool = False) -> str:
    blocks = []
    for number, sentence in enumerate(sentences, 1):
        lines = [f"# sent_id = s{number}", f"# text = {' '.join(word for word, _ in sentence)}"]
        for index, (word, tag) in enumerate(sentence, 1):
            if with_extras and index == 2:
                lines.append(f"{index}-{index + 1}\t{word}{sentence[index][0]}\t_\t_\t_\t_\t_\t_\t_\t_")
            lines.append(f"{index}\t{word}\t{word}\t{tag}\tX{tag}\tA=B|C=D\t0\tdep\t_\tSpaceAfter=No")
            if with_extras and index == 3:
                lines.append(f"{index}.1\tghost\tghost\tNOUN\t_\t_\t_\t_\t{index}:dep\t_")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


def write_conllu(directory: Path, name: str, count: int, seed: int, with_extras: bool = False) -> Path:
    rng = random.Random(seed)
    path = Path(directory) / name
    path.write_text(conllu_text([tagged_sentence(rng) for _ in range(count)], with_extras), encoding="utf-8")
    return path


def tiny_files(directory: Path) -> tuple[Path, Path]:
    return write_conllu(directory, "train.conllu", 150, 0, True), write_conllu(directory, "dev.conllu", 40, 1)


def tiny_config(train: Path, validation: Path, *assignments: str) -> TaggerConfig:
    return apply_assignments(
        TaggerConfig(), [f"data.train={train}", f"data.validation={validation}", *TINY_SETTINGS, *assignments]
    )


def train_tiny_tagger(run: Path, train: Path, validation: Path, *assignments: str) -> Path:
    from rnnkit.runs import start_run

    start_run(tiny_config(train, validation, *assignments), str(run), progress_stream=io.StringIO()).run()
    return run
