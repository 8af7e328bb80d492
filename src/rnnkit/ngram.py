"""The n-gram baseline of word-level language modelling: interpolated Kneser-Ney (Chen & Goodman 1998).

A sentence (a line; its tokens end with <eos>, which is predicted) is read with n-1 start symbols
before it. For a context c of length k and a word w:

    p(w | c) = max(c*(c w) - D(c*(c w)), 0) / c*(c •)  +  γ(c) · p(w | c without its first word)
    γ(c)     = (D1 N1(c •) + D2 N2(c •) + D3+ N3+(c •)) / c*(c •)

where c* is the count of the n-gram for the highest order and its continuation count (the number of
distinct words seen before it) for the lower orders, and Nj(c •) is the number of words that follow c
with c* = j (3+: at least 3). A context never seen defers to the lower order (γ = 1). The unigram
distribution is the continuation counts', interpolated with the uniform distribution over the
vocabulary so that no word has probability 0.

`discount="modified"` takes D1, D2, D3+ per order from the counts of counts (Chen & Goodman's
estimates); a number uses that one discount everywhere and the continuation counts alone at the
unigram level, which is `nltk.lm.KneserNeyInterpolated`'s model (the tests compare the two).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

START = "<s>"


class KneserNey:
    def __init__(self, order: int, discount: float | str = "modified") -> None:
        if order < 1:
            raise ValueError(f"order: expected 1 or more, got {order}")
        self.order, self.discount = order, discount
        # counts[k][context] = Counter of the words after a context of length k: raw counts for the
        # highest order, continuation counts for the others.
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]
        self.vocabulary: set[str] = set()
        self.discounts: list[tuple[float, float, float]] = []

    def fit(self, sentences: Iterable[list[str]]) -> "KneserNey":
        highest = self.counts[self.order - 1]
        for sentence in sentences:
            self.vocabulary.update(sentence)
            padded = [START] * (self.order - 1) + list(sentence)
            for end in range(self.order - 1, len(padded)):
                highest[tuple(padded[end - self.order + 1 : end])][padded[end]] += 1
        for k in range(self.order - 2, -1, -1):  # continuation counts, from the order above
            for context, words in self.counts[k + 1].items():
                for word in words:
                    self.counts[k][context[1:]][word] += 1
        self.discounts = [self.estimate_discounts(k) for k in range(self.order)]
        self.gammas = [
            {context: self.gamma(k, words) for context, words in self.counts[k].items()} for k in range(self.order)
        ]
        return self

    def gamma(self, k: int, words: Counter) -> tuple[int, float]:
        """(c*(c •), γ(c)) of a context whose next words have the counts `words`."""
        total = sum(words.values())
        d1, d2, d3 = self.discounts[k]
        ones = sum(1 for count in words.values() if count == 1)
        twos = sum(1 for count in words.values() if count == 2)
        return total, (d1 * ones + d2 * twos + d3 * (len(words) - ones - twos)) / total

    def estimate_discounts(self, k: int) -> tuple[float, float, float]:
        if self.discount != "modified":
            d = float(self.discount)
            return d, d, d
        of = Counter(count for words in self.counts[k].values() for count in words.values() if count <= 4)
        n1, n2, n3, n4 = (max(of[j], 1) for j in (1, 2, 3, 4))
        y = n1 / (n1 + 2 * n2)
        return max(1 - 2 * y * n2 / n1, 0.0), max(2 - 3 * y * n3 / n2, 0.0), max(3 - 4 * y * n4 / n3, 0.0)

    def probability(self, word: str, context: tuple[str, ...]) -> float:
        """p(word | the last order-1 words of context), interpolated down to the uniform distribution."""
        context = tuple(context[-(self.order - 1) :]) if self.order > 1 else ()
        return self._probability(word, context)

    def _probability(self, word: str, context: tuple[str, ...]) -> float:
        k = len(context)
        lower = self._probability(word, context[1:]) if k else 1.0 / max(len(self.vocabulary), 1)
        words = self.counts[k].get(context)
        if not words:
            return lower  # no data for this context: defer to the lower order
        total, gamma = self.gammas[k][context]
        if k == 0 and self.discount != "modified":
            return words.get(word, 0) / total  # nltk's unigram: the continuation counts alone
        d1, d2, d3 = self.discounts[k]
        count = words.get(word, 0)
        discounted = max(count - (d1 if count == 1 else d2 if count == 2 else d3), 0.0) if count else 0.0
        return discounted / total + gamma * lower

    def sentence_log_probability(self, sentence: list[str]) -> float:
        """The natural log of the probability of a sentence's tokens (the start symbols are context only)."""
        padded = [START] * (self.order - 1) + list(sentence)
        return sum(
            math.log(self.probability(padded[end], tuple(padded[max(0, end - self.order + 1) : end])))
            for end in range(self.order - 1, len(padded))
        )

    def perplexity(self, sentences: Iterable[list[str]]) -> tuple[float, int]:
        """(perplexity per token, tokens) of some sentences."""
        total, tokens = 0.0, 0
        for sentence in sentences:
            total += self.sentence_log_probability(sentence)
            tokens += len(sentence)
        return math.exp(-total / tokens), tokens
