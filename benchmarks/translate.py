"""Decoding speed of a trained translation run: the validation sentences translated by beam search with
the batched search of rnnkit.decode, against the same search one sentence at a time, in the same run.

    python benchmarks/translate.py RUN --data multi30k/val.de [--beam 5] [--single 200]

Prints, for the batched search (32 sentences at a time with beam 5, as `rnnkit translate` searches): the
seconds for every sentence of the file and sentences/s; then the same for the first --single
sentences searched alone, and the ratio of the two speeds. Both use the torch engine on the run's
device, with torch's default threads, and give the same translations (checked).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rnnkit.runs import open_run
from rnnkit.tasks import translation
from rnnkit.tasks.translation.data import encode_side


def timed(decoder_for, encoded, settings, max_length, rows):
    start = time.perf_counter()
    found = translation.translate_encoded(decoder_for, encoded, settings, max_length, rows=rows)
    return time.perf_counter() - start, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a translation run directory")
    parser.add_argument("--data", required=True, help="source sentences, one a line")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--single", type=int, default=200, help="sentences searched one at a time (default 200)")
    args = parser.parse_args()
    run = open_run(args.run)
    source, _, decoder_for = translation.translation_function(run, run.directory.checkpoint(None), "torch")
    lines = [line.strip() for line in Path(args.data).read_text(encoding="utf-8").splitlines()]
    encoded, _ = encode_side(source, lines, run.config.data.max_length)
    settings = translation.check_settings({"beam": args.beam})
    max_length = run.config.data.max_length
    seconds, batched = timed(decoder_for, encoded, settings, max_length, translation.SEARCH_ROWS)
    batch = max(1, translation.SEARCH_ROWS // args.beam)
    print(
        f"beam {args.beam}, batches of {batch}: {len(encoded)} sentences in {seconds:.1f} s, "
        f"{len(encoded) / seconds:.1f} sentences/s"
    )
    few = encoded[: args.single]
    alone_seconds, alone = timed(decoder_for, few, settings, max_length, args.beam)
    same = sum(a.ids == b.ids for a, b in zip(alone, batched))
    print(
        f"beam {args.beam}, one sentence at a time: {len(few)} sentences in {alone_seconds:.1f} s, "
        f"{len(few) / alone_seconds:.1f} sentences/s; {same} of {len(few)} translations identical to the batched ones"
    )
    print(f"batched / one at a time: {(len(encoded) / seconds) / (len(few) / alone_seconds):.2f}x")


if __name__ == "__main__":
    main()
