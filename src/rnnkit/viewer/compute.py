"""What the viewer computes with a run's model, each through the task's own code: the language model's
inside over a text (rnnkit.analysis.cells.traced_values over rnnkit.nn.trace) with its next tokens, a
pattern search over it (rnnkit.analysis.patterns), samples (the task's `sample` command), the
classifier's label with each word's contribution, the tagger's tags, and `eval`'s metrics.

Loaded models are kept (the few used last), one lock each: two requests on one model take turns,
since tracing marks the model's layers while it runs. Requests on different models go on together.
Every text is at most MAX_TEXT characters; the server caps the time.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from rnnkit.errors import UsageError
from rnnkit.runs import open_run
from rnnkit.viewer.catalog import Entry

MAX_TEXT = 1000  # characters of a text read per request
MAX_SAMPLE_LENGTH = 2000  # tokens of a live sample
TOP = 5  # next tokens shown at each position
KEPT_MODELS = 4
KEPT_TEXTS = 4  # traced texts kept per model (switching the signal shown does not trace again)
EXCERPT = 1000  # characters of validation text offered to pick from


def check_text(text: object, what: str = "text") -> str:
    if not isinstance(text, str):
        raise UsageError(f"{what}: expected a string")
    if len(text) > MAX_TEXT:
        raise UsageError(f"{what}: {len(text):,} characters; the viewer reads at most {MAX_TEXT:,} at a time")
    if not text.strip():
        raise UsageError(f"{what}: empty; type some text")
    return text


class Loaded:
    """One checkpoint of one run, on one engine, and what has been computed from it."""

    def __init__(self, run, checkpoint: Path, engine: str) -> None:
        self.run, self.checkpoint, self.engine = run, checkpoint, engine
        self.lock = threading.Lock()
        self.parts: dict[str, object] = {}  # loaded lazily: vocabulary, model, functions
        self.traced: OrderedDict[str, dict] = OrderedDict()

    def part(self, name: str, make):
        if name not in self.parts:
            self.parts[name] = make()
        return self.parts[name]


class Workbench:
    """The viewer's computations, on the chosen engine (torch or numpy)."""

    def __init__(self, engine: str = "torch") -> None:
        self.engine = engine
        self.models: OrderedDict[tuple, Loaded] = OrderedDict()
        self.lock = threading.Lock()

    def loaded(self, entry: Entry, which: str | None, task: str | None = None) -> Loaded:
        run = open_run(entry.path)
        if task is not None and run.task.name != task:
            raise UsageError(f"{entry.shown} is a {run.task.summary} run; this view is for another task")
        checkpoint = run.directory.checkpoint(which or None)
        key = (str(entry.path), checkpoint.name, self.engine)
        with self.lock:
            if key not in self.models:
                self.models[key] = Loaded(run, checkpoint, self.engine)
                while len(self.models) > KEPT_MODELS:
                    self.models.popitem(last=False)
            self.models.move_to_end(key)
            return self.models[key]

    # ---- language models ----------------------------------------------------------------------------
    def inside(self, entry: Entry, which: str | None, text: str, key: str | None = None, name: str | None = None):
        """The tokens of the text, every traced layer's signals, each position's TOP next tokens, and the
        values (T, H) of one signal (default: the last layer's c, else its h)."""
        traced, key, name, values = self.signal(entry, which, text, key, name)
        return {
            "pieces": traced["pieces"],
            "layers": {layer: sorted(signals) for layer, signals in traced["values"].items()},
            "layer": key,
            "signal": name,
            "hidden_size": int(values.shape[1]),
            "values": np.round(values.astype(np.float64), 4).tolist(),
            "next": traced["next"],
        }

    def signal(self, entry: Entry, which: str | None, text: str, key: str | None, name: str | None):
        """(the traced text, the layer, the signal, its values (T, H)), the layer and signal checked."""
        loaded = self.loaded(entry, which, "language_model")
        if loaded.engine != "torch":
            raise UsageError(
                "the inside view traces the torch engine (rnnkit.nn.trace); start the viewer without "
                "--engine numpy to see it"
            )
        text = check_text(text)
        with loaded.lock:
            traced = self.traced(loaded, text)
        layers = traced["values"]
        key = key or list(layers)[-1]
        if key not in layers:
            raise UsageError(f"no layer {key!r}; the model has {', '.join(layers)}")
        name = name or ("c" if "c" in layers[key] else "h")
        if name not in layers[key]:
            raise UsageError(f"layer {key} has no {name!r}; it has {', '.join(sorted(layers[key]))}")
        return traced, key, name, layers[key][name]

    def traced(self, loaded: Loaded, text: str) -> dict:
        if text in loaded.traced:
            loaded.traced.move_to_end(text)
            return loaded.traced[text]
        from rnnkit.analysis.cells import traced_values
        from rnnkit.data.tokenizers import stream_text
        from rnnkit.data.vocabulary import describe_tokens
        from rnnkit.generate import prime_ids
        from rnnkit.tasks.language_model.data import load_vocabulary
        from rnnkit.tasks.language_model.torch import load_checkpoint_model

        vocabulary = loaded.part("vocabulary", lambda: load_vocabulary(loaded.run.path))
        model, _ = loaded.part("model", lambda: load_checkpoint_model(loaded.run, loaded.checkpoint, vocabulary))
        unknown = vocabulary.unknown(vocabulary.tokenizer.split(text)) if vocabulary.unknown_token is None else []
        if unknown:
            raise UsageError(
                f"the text has {vocabulary.tokenizer.unit} not in the model's vocabulary: {describe_tokens(unknown)}"
            )
        ids = np.array(prime_ids(vocabulary, text, skip_unknown=False), dtype=np.int64)
        if not len(ids):
            raise UsageError("the text has no tokens")
        values, top_ids, top_probabilities = traced_values(model, ids, TOP)
        tokens = vocabulary.decode(ids)
        result = {
            "values": values,
            "pieces": list(stream_text(vocabulary.tokenizer, tokens)),
            "next": [
                [[vocabulary.tokens[int(i)], round(float(p), 4)] for i, p in zip(row_ids, row_p)]
                for row_ids, row_p in zip(top_ids, top_probabilities)
            ],
        }
        loaded.traced[text] = result
        while len(loaded.traced) > KEPT_TEXTS:
            loaded.traced.popitem(last=False)
        return result

    def pattern(self, entry: Entry, which: str | None, request: dict) -> dict:
        """The units on inside a selected span of the text and off around it, and the other places in the
        text where those units are on together (rnnkit.analysis.patterns)."""
        from rnnkit.analysis.patterns import places_where_on, units_for_span

        traced, key, name, values = self.signal(
            entry, which, request.get("text"), request.get("layer"), request.get("signal")
        )
        start, end = number(request, "start", int), number(request, "end", int)
        threshold = number(request, "threshold", float)
        around = number(request, "around", int, 1)
        if not 0 <= around <= 50:
            raise UsageError(f"around: expected 0 to 50 tokens, got {around}")
        try:
            ranked = units_for_span(values, start, end, threshold, around)
        except ValueError as error:
            raise UsageError(str(error)) from None
        chosen = [unit for unit, _ in ranked[: number(request, "units", int, 10)]]
        pieces = traced["pieces"]
        places = [
            {"start": s, "end": e, "text": "".join(pieces[s:e]), "selected": (s, e) == (start, end)}
            for s, e in places_where_on(values, chosen, threshold)
        ]
        return {
            "layer": key,
            "signal": name,
            "units": [{"unit": unit, "margin": round(margin, 4)} for unit, margin in ranked],
            "searched": chosen,
            "places": places,
        }

    def sample(self, entry: Entry, which: str | None, request: dict) -> dict:
        """A sample through the task's own `sample` command (its checks included)."""
        from rnnkit.tasks.language_model import sample_command

        loaded = self.loaded(entry, which, "language_model")
        options = {"engine": loaded.engine, "prime": request.get("prime") or ""}
        if not isinstance(options["prime"], str) or len(options["prime"]) > MAX_TEXT:
            raise UsageError(f"prime: expected a string of at most {MAX_TEXT:,} characters")
        for name, kind in (("length", int), ("temperature", float), ("top_k", int), ("top_p", float), ("seed", int)):
            if request.get(name) is not None:
                options[name] = number(request, name, kind)
        if options.get("length", 0) > MAX_SAMPLE_LENGTH:
            raise UsageError(f"length: at most {MAX_SAMPLE_LENGTH} tokens in the viewer")
        out = io.StringIO()
        with loaded.lock:
            sample_command(loaded.run, loaded.checkpoint, options, out)
        return {"text": out.getvalue().rstrip("\n"), "engine": loaded.engine}

    def validation_excerpt(self, entry: Entry) -> dict:
        """The start of a language model's validation text, to pick a text from."""
        from rnnkit.data.tokenizers import stream_text
        from rnnkit.tasks.language_model.data import load_vocabulary, validation_ids

        run = open_run(entry.path)
        if run.task.name != "language_model":
            raise UsageError(f"{entry.shown} is a {run.task.summary} run: it has no validation text to show")
        vocabulary = load_vocabulary(run.path)
        ids = validation_ids(run.config, vocabulary)[0][: EXCERPT * 4]
        text = "".join(stream_text(vocabulary.tokenizer, vocabulary.decode(ids)))
        return {"text": text[:EXCERPT]}

    # ---- classifier and tagger ----------------------------------------------------------------------
    def classify(self, entry: Entry, which: str | None, text: str) -> dict:
        """The label and its probabilities, and each word's contribution by occlusion: how much the
        predicted label's probability falls when that word alone is read as <unk>."""
        from rnnkit.tasks.classifier import probability_function
        from rnnkit.tasks.classifier.data import load_run_files

        loaded = self.loaded(entry, which, "classifier")
        text = check_text(text)
        vocabulary, labels = loaded.part("files", lambda: load_run_files(loaded.run.path))
        tokens = text.lower().split() if loaded.run.config.data.lowercase else text.split()
        ids = vocabulary.encode(tokens)
        occluded = []
        for position in range(len(ids)):
            copy = np.array(ids)
            copy[position] = vocabulary.ids[vocabulary.unknown_token]
            occluded.append(copy)
        with loaded.lock:
            function = loaded.part(
                "function",
                lambda: probability_function(loaded.run, loaded.checkpoint, vocabulary, labels, loaded.engine),
            )
            probabilities = function([np.array(ids), *occluded])
        label = int(np.argmax(probabilities[0]))
        return {
            "label": labels[label],
            "probabilities": {name: float(p) for name, p in zip(labels, probabilities[0])},
            "words": tokens,
            "unknown": [token not in vocabulary for token in tokens],
            "contributions": [float(probabilities[0, label] - row[label]) for row in probabilities[1:]],
            "method": f"occlusion: the fall in p({labels[label]}) when the word alone is read as "
            f"{vocabulary.unknown_token}",
            "engine": loaded.engine,
        }

    def tag(self, entry: Entry, which: str | None, text: str) -> dict:
        """Each word's tag and its probability of every tag (the CRF's marginals if it has one)."""
        from rnnkit.data.tagged import TaggedSentence
        from rnnkit.tasks.engines import model_function
        from rnnkit.tasks.tagger.data import TaggerData, encode, load_run_files

        loaded = self.loaded(entry, which, "tagger")
        words = check_text(text).split()
        prepared = loaded.part("files", lambda: TaggerData(*load_run_files(loaded.run.path), None, None))
        encoded = encode([TaggedSentence(words, [None] * len(words))], prepared, loaded.run.config.data.lowercase)
        with loaded.lock:
            function = loaded.part(
                "function",
                lambda: model_function(
                    "rnnkit.tasks.tagger", loaded.engine, loaded.run, loaded.checkpoint, prepared, True
                ),
            )
            (ids, probabilities) = function(encoded)[0]
        return {
            "words": words,
            "tags": [prepared.tags[int(i)] for i in ids],
            "tag_set": prepared.tags,
            "probabilities": np.round(probabilities, 4).tolist(),
            "unknown": [int(i) == 1 for i in encoded.words[0]],
            "crf": bool(loaded.run.config.model.crf),
            "engine": loaded.engine,
        }

    def evaluate(self, entry: Entry, which: str | None) -> dict:
        """`rnnkit eval`'s metrics of the checkpoint on the run's validation data (kept once computed)."""
        loaded = self.loaded(entry, which)
        with loaded.lock:
            return loaded.part("eval", lambda: loaded.run.task.evaluate(loaded.run, loaded.checkpoint, None))


def number(request: dict, name: str, kind: type, default=None):
    """A request's number, checked: finite, and an integer where one is expected."""
    value = request.get(name, default)
    if value is None:
        raise UsageError(f"{name}: missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{name}: expected a number, got {value!r}")
    if kind is int and (not float(value).is_integer() or abs(value) > 2**31):
        raise UsageError(f"{name}: expected an integer, got {value!r}")
    if not np.isfinite(value):
        raise UsageError(f"{name}: expected a finite number")
    return kind(value)
