"""The translation task: parallel data, the encoder–decoder with attention, decoding, BLEU, the commands."""

import io
import json
import math
import sys

import numpy as np
import pytest
import torch

from cli_helpers import assert_usage_error, run_main
from language_model_helpers import assert_identical_tensors, latest_tensors
from rnnkit.config import apply_assignments
from rnnkit.decode import beam_search, greedy_search
from rnnkit.runs import open_run, resume_run, start_run
from rnnkit.tasks.translation import load, translate_encoded, translation_function
from rnnkit.tasks.translation.config import TranslationConfig
from rnnkit.tasks.translation.data import encode, prepare, read_pairs
from rnnkit.tasks.translation.torch import SearchDecoder, Translator, to_batch
from translation_helpers import (
    TINY_SETTINGS,
    reverse_pairs,
    tiny_config,
    tiny_files,
    train_tiny_translator,
    write_prefix,
)

sacrebleu = pytest.importorskip("sacrebleu")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tiny_files(tmp_path_factory.mktemp("reverse"))


def exact_matches(run, prefix, beam: int = 1) -> tuple[int, int]:
    opened = open_run(run)
    source, target, decoder_for = translation_function(opened, opened.directory.checkpoint(None), "torch")
    pairs = read_pairs(str(prefix), opened.config.data)
    encoded, _ = encode(pairs, source, target, 100)
    settings = {"beam": beam, "length_penalty": 1.0, "max_length_ratio": 2.0}
    hypotheses = translate_encoded(decoder_for, encoded.source, settings, 100)
    got = [" ".join(target.decode(i for i in h.ids if i > 3)) for h in hypotheses]
    return sum(g == pair.target for g, pair in zip(got, pairs)), len(pairs)


@pytest.mark.parametrize(("attention", "steps"), [("general", 800), ("bahdanau", 800), ("none", 2000)])
def test_the_reverse_task_is_learnt_to_every_sentence(files, tmp_path, attention, steps, capsys, monkeypatch):
    settings = (f"model.attention={attention}", f"train.max_steps={steps}", "optim.schedule=cosine")
    run = train_tiny_translator(tmp_path / "run", *files, *settings)
    assert exact_matches(run, files[1]) == (50, 50)
    monkeypatch.setattr(sys, "stdin", io.StringIO("ant bee cat\n"))
    assert run_main(["translate", str(run), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["translation"] == "cat bee ant" and (record["attention"] is None) == (attention == "none")
    if attention == "none":
        monkeypatch.setattr(sys, "stdin", io.StringIO("ant bee cat\n"))
        assert_usage_error(capsys, ["translate", str(run), "--plot-attention", str(tmp_path)], "has no attention")


def built(files, *settings, seed: int = 0):
    config = tiny_config(*files, *settings)
    _, data = prepare(config, None)
    torch.manual_seed(seed)
    return Translator(len(data.source), len(data.target), config.model).eval(), data


@pytest.mark.parametrize("attention", ["general", "dot", "bahdanau"])
def test_padding_never_receives_attention_and_a_sentence_translates_as_alone(files, attention):
    model, data = built(files, f"model.attention={attention}")
    indices = np.array([0, 1, 2, 3])
    source, lengths, _, _ = to_batch(data.validation, indices, torch.device("cpu"))
    assert len(set(lengths.tolist())) > 1
    decoder = SearchDecoder(model, source, lengths, 1)
    state = decoder.start()
    tokens = np.full(4, 1)
    for _ in range(3):
        log_probabilities, weights, state = decoder.step(tokens, state)
        for row, length in enumerate(lengths.tolist()):
            assert np.all(weights[row, length:] == 0) and abs(weights[row, :length].sum() - 1) < 1e-6
        tokens = log_probabilities.argmax(axis=1)
    together = greedy_search(SearchDecoder(model, source, lengths, 1), 4, np.full(4, 8), 1, 2)
    for row, index in enumerate(indices):
        alone_source, alone_lengths, _, _ = to_batch(data.validation, np.array([index]), torch.device("cpu"))
        (alone,) = greedy_search(SearchDecoder(model, alone_source, alone_lengths, 1), 1, np.full(1, 8), 1, 2)
        assert alone.ids == together[row].ids and abs(alone.logp - together[row].logp) < 1e-5


@pytest.mark.parametrize("settings", [["model.attention=none"], ["model.attention=dot", "model.input_feeding=false"]])
def test_the_decoder_reads_the_whole_target_at_once_as_it_steps(files, settings):
    """Without feedback, training runs the decoder's layer over the whole target; stepping gives the same."""
    model, data = built(files, *settings, "model.cell=lstm", "model.num_layers=2")
    source, lengths, target_in, _ = to_batch(data.train, np.arange(6), torch.device("cpu"))
    with torch.no_grad():
        at_once = model(source, lengths, target_in)
        memory, keys, mask, hidden = model.encode(source, lengths)
        decoder, feed, stepped = model.decoder, None, []
        for t in range(target_in.shape[1]):
            o, hidden, feed, _ = decoder.step(target_in[:, t], hidden, feed, memory, keys, mask)
            stepped.append(decoder.output(o))
    assert torch.allclose(at_once, torch.stack(stepped), atol=1e-5)


@pytest.fixture(scope="module")
def translator(files, tmp_path_factory):
    return train_tiny_translator(
        tmp_path_factory.mktemp("run") / "run", *files, "train.max_steps=600", "optim.schedule=cosine"
    )


def test_a_beam_of_one_is_greedy_and_wider_beams_score_at_least_as_high(translator, files):
    opened = open_run(translator)
    model, device, source, target = load(opened, opened.directory.checkpoint(None))
    pairs = read_pairs(str(files[1]), opened.config.data)
    encoded, _ = encode(pairs, source, target, 100)
    batch = to_batch(encoded, np.arange(len(pairs)), device)
    limits = np.full(len(pairs), 10)
    greedy = greedy_search(SearchDecoder(model, batch[0], batch[1], 1), len(pairs), limits, 1, 2, track=True)
    narrow = beam_search(SearchDecoder(model, batch[0], batch[1], 1), len(pairs), 1, limits, 1, 2, 1.0, track=True)
    for g, (b,) in zip(greedy, narrow):
        assert g.ids == b.ids and abs(g.logp - b.logp) < 1e-9 and np.allclose(g.attention, b.attention)
    for width in (2, 5):
        for penalty in (0.0, 1.0):
            wide = beam_search(
                SearchDecoder(model, batch[0], batch[1], width), len(pairs), width, limits, 1, 2, penalty
            )
            for g, hypotheses in zip(greedy, wide):
                best = hypotheses[0]
                assert best.score >= g.logp / len(g.ids) ** penalty - 1e-9
                assert [h.score for h in hypotheses] == sorted((h.score for h in hypotheses), reverse=True)


def test_translate_json_score_and_eval_agree(translator, files, capsys, tmp_path, monkeypatch):
    source_file = tmp_path / "in.txt"
    source_file.write_text("ant bee cat\ndog eel\n", encoding="utf-8")
    assert run_main(["translate", str(translator), str(source_file), "--json", "--beam", "3"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["translation"] for record in records] == ["cat bee ant", "eel dog"]
    first = records[0]
    assert first["tokens"] == 4 and first["target_tokens"][-1] == "</s>"
    assert np.array(first["attention"]).shape == (4, 3) and np.allclose(np.array(first["attention"]).sum(axis=1), 1)
    # rnnkit score gives the pair's log-probability that the search found
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("ant bee cat\tcat bee ant\ndog eel\teel dog\n", encoding="utf-8")
    assert run_main(["score", str(translator), str(pairs)]) == 0
    scored = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for record, translated in zip(scored, records):
        assert abs(record["logprob"] - translated["logprob"]) < 1e-4 and record["tokens"] == translated["tokens"]
        assert abs(record["perplexity"] - math.exp(-record["logprob"] / record["tokens"])) < 1e-6
    monkeypatch.setattr(sys, "stdin", io.StringIO(pairs.read_text(encoding="utf-8")))
    assert run_main(["score", str(translator), "-"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == scored
    monkeypatch.setattr(sys, "stdin", io.StringIO("ant bee cat\n"))
    assert_usage_error(capsys, ["score", str(translator)], "standard input, line 1: expected source<TAB>target")
    assert run_main(["eval", str(translator), "--data", str(files[1])]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["sentences"] == 50 and metrics["beam"] == 5 and metrics["length_penalty"] == 0.5
    assert run_main(["eval", str(translator), "--data", str(files[1]), "--beam", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["beam"] == 1
    assert_usage_error(capsys, ["eval", str(translator), "--beam", "0"], "--beam must be 1 to 100")
    assert (
        metrics["tokenized_bleu"] > 90 and metrics["bleu"] > 90 and metrics["chrf"] > 90 and metrics["perplexity"] < 2
    )


@pytest.mark.parametrize("beam", [1, 4])
def test_the_numpy_engine_translates_as_torch_does(translator, files, beam):
    """Greedy translations are identical, beam translations agree; the scores and attention match."""
    opened = open_run(translator)
    checkpoint = opened.directory.checkpoint(None)
    pairs = read_pairs(str(files[1]), opened.config.data)
    found = {}
    for engine in ("torch", "numpy"):
        source, target, decoder_for = translation_function(opened, checkpoint, engine)
        encoded, _ = encode(pairs, source, target, 100)
        settings = {"beam": beam, "length_penalty": 1.0, "max_length_ratio": 2.0}
        found[engine] = translate_encoded(decoder_for, encoded.source, settings, 100, track=True)
    for ours, theirs in zip(found["numpy"], found["torch"]):
        assert ours.ids == theirs.ids and abs(ours.logp - theirs.logp) < 1e-4
        assert np.abs(ours.attention - theirs.attention).max() < 1e-5


def test_translate_with_the_numpy_engine_needs_no_torch(translator, tmp_path):
    from cli_helpers import rnnkit_without_torch

    (tmp_path / "in.txt").write_text("ant bee cat\n", encoding="utf-8")
    result = rnnkit_without_torch("translate", str(translator), str(tmp_path / "in.txt"), "--engine", "numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "cat bee ant\n"


def test_unknown_source_words_are_reported(translator, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("ant zebra bee\n"))
    assert run_main(["translate", str(translator), "--json"]) == 0
    captured = capsys.readouterr()
    assert "read as <unk>: zebra" in captured.err and json.loads(captured.out)["unknown"] == ["zebra"]


def test_plot_attention_writes_a_png_per_sentence(translator, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(sys, "stdin", io.StringIO("ant bee cat\ndog eel\n"))
    assert run_main(["translate", str(translator), "--plot-attention", str(tmp_path / "plots")]) == 0
    assert capsys.readouterr().out.splitlines() == ["cat bee ant", "eel dog"]
    for number in (1, 2):
        assert (tmp_path / "plots" / f"attention-{number}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bleu_is_sacrebleu_s_and_the_tokenized_one_is_by_hand():
    from rnnkit.tasks.translation.metrics import translation_scores

    hypotheses = ["The cat sat on the mat.", "A dog runs in the park!"]
    references = ["The cat sat on a mat.", "a dog is running in the park!"]
    scores = translation_scores(hypotheses, references)
    assert scores["bleu"] == round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 4)
    assert scores["chrf"] == round(sacrebleu.corpus_chrf(hypotheses, [references]).score, 4)
    # lowercased and split by 13a: "the cat sat on the mat ." / "a dog runs in the park !" against the references
    matches, totals = [6 + 6, 4 + 4, 2 + 2, 1 + 1], [7 + 7, 6 + 6, 5 + 5, 4 + 4]
    hypothesis_length, reference_length = 7 + 7, 7 + 8
    brevity = math.exp(1 - reference_length / hypothesis_length)
    expected = 100 * brevity * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals)) / 4)
    assert abs(scores["tokenized_bleu"] - expected) < 1e-3
    shouted = translation_scores(["THE CAT SAT ON THE MAT."], ["the cat sat on the mat."])
    assert shouted["tokenized_bleu"] == 100.0 and shouted["bleu"] < 100.0


def test_an_interrupted_translation_run_resumes_bit_identical(files, tmp_path):
    settings = ("model.attention=bahdanau", "train.teacher_forcing=0.7", "model.dropout=0.2")
    start_run(
        tiny_config(*files, *settings, "train.max_steps=16"), str(tmp_path / "straight"), progress_stream=io.StringIO()
    ).run()
    first = start_run(
        tiny_config(*files, *settings, "train.max_steps=8"), str(tmp_path / "resumed"), progress_stream=io.StringIO()
    )
    assert first.run() == "max_steps"
    resumed = resume_run(tmp_path / "resumed", {"train.max_steps": 16}, progress_stream=io.StringIO())
    assert resumed.run(resumed=True) == "max_steps"
    assert_identical_tensors(latest_tensors(tmp_path / "straight"), latest_tensors(tmp_path / "resumed"))


def test_a_tsv_file_and_a_prefix_read_the_same_pairs_and_vocabularies_are_joint_or_not(files, tmp_path):
    pairs = reverse_pairs(30, 5)
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    prefix = write_prefix(tmp_path, "pairs", pairs)
    config = tiny_config(*files)
    assert read_pairs(str(tsv), config.data) == read_pairs(str(prefix), config.data)
    for joint in (True, False):
        run = tmp_path / f"joint-{joint}"
        start_run(
            tiny_config(*files, f"data.joint_vocabulary={str(joint).lower()}", "train.max_steps=1"),
            str(run),
            progress_stream=io.StringIO(),
        ).run()
        names = {path.name for path in run.iterdir()}
        assert ("vocabulary.json" in names) == joint and ("source-vocabulary.json" in names) == (not joint)
        source, target = load(open_run(run), open_run(run).directory.checkpoint(None))[2:]
        assert (source is target) == joint


def test_bpe_vocabularies_detokenize_exactly(files, tmp_path):
    from rnnkit.tasks.translation.data import detokenize

    pairs = [("Zwei Männer am Strand, 3 Hunde.", "Two men on the beach, 3 dogs.")] * 40 + reverse_pairs(200, 3)
    prefix = write_prefix(tmp_path, "bpe", pairs)
    config = apply_assignments(
        TranslationConfig(), [f"data.train={prefix}", *TINY_SETTINGS, "data.tokenizer=bpe", "data.vocabulary_size=300"]
    )
    _, data = prepare(config, None)
    for pair, ids in zip(data.train.pairs, data.train.target):
        assert detokenize(data.target, ids) == pair.target


def test_sentences_over_data_max_length_are_truncated_and_counted(files, tmp_path, capsys):
    run = tmp_path / "run"
    start_run(
        tiny_config(*files, "data.max_length=3", "train.max_steps=1"), str(run), progress_stream=io.StringIO()
    ).run()
    assert "longer than data.max_length = 3 tokens; they were truncated" in capsys.readouterr().err
    start = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    long = sum(len(s.split()) > 3 for pair in reverse_pairs(3000, 0) + reverse_pairs(50, 1) for s in pair)
    assert start["long_examples"] == {"count": long, "max_length": 3, "action": "truncated"}


BAD_DATA = {
    "misaligned": (["a b\n", "c d\n"], ["b a\n"], "not line-aligned"),
    "empty source": (["a b\n", "  \n"], ["b a\n", "x\n"], "line 2: the source side is empty"),
    "binary": (["a\x00b\n"], ["b a\n"], "binary"),
}


@pytest.mark.parametrize("name", BAD_DATA)
def test_bad_parallel_data_is_one_line(tmp_path, capsys, name):
    sources, targets, message = BAD_DATA[name]
    (tmp_path / "bad.src").write_text("".join(sources), encoding="utf-8")
    (tmp_path / "bad.tgt").write_text("".join(targets), encoding="utf-8")
    flags = ["--set", "task=translation", "--set", "data.source=src", "--set", "data.target=tgt"]
    assert_usage_error(
        capsys, ["train", "--data", str(tmp_path / "bad"), *flags, "--out", str(tmp_path / "r")], message
    )


def test_bad_translation_inputs_are_one_line(translator, files, tmp_path, capsys, monkeypatch):
    flags = ["--set", "task=translation", "--set", "data.source=src", "--set", "data.target=xx"]
    assert_usage_error(capsys, ["train", "--data", str(files[0]), *flags, "--out", str(tmp_path / "r")], "train.xx")
    assert_usage_error(
        capsys,
        ["train", "--data", str(files[0]), "--set", "task=translation", "--out", str(tmp_path / "r")],
        "data.source and data.target",
    )
    tsv = tmp_path / "no-tab.tsv"
    tsv.write_text("ant bee\n", encoding="utf-8")
    assert_usage_error(
        capsys, ["train", "--data", str(tsv), "--set", "task=translation", "--out", str(tmp_path / "r")], "no tab"
    )
    for option, value, message in (
        ("--beam", "0", "--beam must be 1 to 100"),
        ("--length-penalty", "nan", "--length-penalty"),
        ("--max-length-ratio", "0", "--max-length-ratio"),
    ):
        monkeypatch.setattr(sys, "stdin", io.StringIO("ant bee\n"))
        assert_usage_error(capsys, ["translate", str(translator), option, value], message)
    monkeypatch.setattr(sys, "stdin", io.StringIO("ant bee\n\n"))
    assert_usage_error(capsys, ["translate", str(translator)], "line 2: nothing to translate")
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    assert_usage_error(capsys, ["eval", str(translator)], "sacrebleu package")


def test_translate_of_a_language_model_run_says_whose_command_it_is(tmp_path, capsys):
    from language_model_helpers import train_tiny_run, write_tiny_corpus

    run = train_tiny_run(tmp_path / "lm", write_tiny_corpus(tmp_path), "train.max_steps=1")
    assert_usage_error(capsys, ["translate", str(run)], "language model run", "does not apply")
