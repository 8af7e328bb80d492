"""The language model's metrics (EQUATIONS.md, "Language models and their evaluation"), from a summed
negative log-likelihood. No torch."""

from __future__ import annotations

import math

BEST_METRIC, HIGHER_IS_BETTER = "nll", False  # the validation metric that picks the best checkpoint

MAX_EXPONENT = 700  # exp() of more overflows a float: the perplexity is then reported as infinite


def language_model_metrics(total_nll: float, count: int, characters: bool) -> dict:
    """nll: the mean negative log-likelihood in nats per predicted token; perplexity = exp(nll); for a
    character model also bpc = nll / ln 2 (bits per character); tokens: how many were predicted."""
    nll = total_nll / count
    metrics = {"nll": nll, "perplexity": math.exp(nll) if nll < MAX_EXPONENT else math.inf, "tokens": count}
    return {"nll": nll, "bpc": nll / math.log(2), **metrics} if characters else metrics


def perplexity(logprob: float, tokens: int) -> float | None:
    """The perplexity of a text whose tokens have the summed natural-log probability; None if it overflows."""
    return math.exp(-logprob / tokens) if -logprob / tokens < MAX_EXPONENT else None
