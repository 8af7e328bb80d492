"""The Kneser-Ney baseline: a distribution, nltk.lm's numbers with its single discount, and a
modified-KN model that beats lower orders on text with structure."""

import math
import random

import pytest

from rnnkit.ngram import START, KneserNey

SENTENCES = [
    s.split() + ["<eos>"]
    for s in (
        "the cat sat on the mat",
        "the dog sat on the rug",
        "a cat ran under the mat",
        "the cat ran",
        "a dog sat",
        "the mat sat on the cat",
        "a rug ran",
        "the dog ran under a rug",
    )
]


def test_probabilities_sum_to_one_in_every_context():
    for discount in ("modified", 0.4):
        model = KneserNey(3, discount).fit(SENTENCES)
        vocabulary = sorted(model.vocabulary)
        for context in [(START, START), ("the", "cat"), ("sat", "on"), ("zebra", "the"), ("on", "zebra")]:
            total = sum(model.probability(word, context) for word in vocabulary)
            assert math.isclose(total, 1.0, rel_tol=1e-9), (discount, context, total)


@pytest.mark.parametrize("order", [2, 3])
def test_single_discount_matches_nltk(order):
    from nltk.lm import KneserNeyInterpolated

    ours = KneserNey(order, 0.1).fit(SENTENCES)
    theirs = KneserNeyInterpolated(order, discount=0.1)
    ngrams = []  # nltk is given exactly the n-grams that end at a real token, and their suffixes
    for sentence in SENTENCES:
        padded = [START] * (order - 1) + sentence
        ngrams.append(
            [
                padded[end - length + 1 : end + 1]
                for end in range(order - 1, len(padded))
                for length in range(1, order + 1)
            ]
        )
    theirs.fit([[tuple(g) for g in sentence] for sentence in ngrams], vocabulary_text=[START, *ours.vocabulary])
    for sentence in SENTENCES[:4]:
        padded = [START] * (order - 1) + sentence
        for end in range(order - 1, len(padded)):
            context = tuple(padded[end - order + 1 : end])
            assert math.isclose(
                ours.probability(padded[end], context), theirs.score(padded[end], context), rel_tol=1e-12
            ), (padded[end], context)


def test_higher_orders_help_on_text_with_structure():
    rng = random.Random(0)

    def grammar():
        return [
            rng.choice(["the", "a"]),
            rng.choice(["cat", "dog"]),
            rng.choice(["sat", "ran"]),
            rng.choice(["on", "under"]),
            "the",
            rng.choice(["mat", "rug"]),
            "<eos>",
        ]

    train, valid = [grammar() for _ in range(400)], [grammar() for _ in range(50)]
    perplexities = [KneserNey(n).fit(train).perplexity(valid)[0] for n in (1, 2, 3)]
    assert perplexities[0] > perplexities[1] > perplexities[2] > 1.0
