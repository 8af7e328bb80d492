"""The attention experiment in quick form writes its outputs, from two runs of the translation preset."""

import json

import pytest

from cli_helpers import assert_usage_error, run_main
from translation_helpers import reverse_pairs

pytest.importorskip("sacrebleu")
pytest.importorskip("matplotlib")


def test_quick_attention_experiment_writes_results_report_and_plots(tmp_path, capsys):
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    for path, count, seed in ((train, 200, 0), (dev, 40, 1)):
        path.write_text("".join(f"{s}\t{t}\n" for s, t in reverse_pairs(count, seed, (2, 9))), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["experiment", "attention", "--data", str(train), "--val", str(dev), "--quick", "--out", str(out)]
    assert run_main(argv) == 0
    assert "attention general: BLEU" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert [row["attention"] for row in results["rows"]] == ["none", "general"] and results["quick"] is True
    for row in results["rows"]:
        assert row["sentences"] == 30 and sum(b["sentences"] for b in row["by_length"].values()) == 30
        assert 0 <= row["tokenized_bleu"] <= 100 and row["steps"] == 6
    report = (out / "report.md").read_text()
    assert "QUICK SMOKE VERSION" in report and "by the source sentence's length" in report
    for name in ("bleu-by-length.png", "attention-1.png", "attention-3.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert_usage_error(
        capsys, ["experiment", "attention", "--data", str(train), "--val", str(dev), "--seconds", "-1"], "--seconds"
    )
