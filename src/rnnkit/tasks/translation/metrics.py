"""Translation metrics through sacreBLEU (the `translation` extra). No torch.

- `bleu`: corpus BLEU of detokenized, cased text, sacreBLEU's default (its 13a tokenizer inside, BLEU-4,
  no smoothing), the number to compare with other systems' sacreBLEU.
- `tokenized_bleu`: the same text lowercased and split by sacreBLEU's 13a tokenizer (the mteval-v13a
  rules: punctuation split off words, apostrophes kept inside them), then BLEU-4 over those tokens
  without smoothing: how the published Multi30k tutorials report BLEU (lowercased, tokenized).
- `chrf`: sacreBLEU's chrF (character 6-grams, β = 2).
"""

from __future__ import annotations

from rnnkit.errors import UsageError

BEST_METRIC, HIGHER_IS_BETTER = "tokenized_bleu", True  # the validation metric that picks the best checkpoint


def sacrebleu_library():
    try:
        import sacrebleu
    except ImportError:
        raise UsageError("translation needs the sacrebleu package: pip install 'rnnkit[translation]'") from None
    return sacrebleu


def tokenized(text: str) -> str:
    """Lowercased and split as `tokenized_bleu` reads text: sacreBLEU's 13a tokenizer."""
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()(text.lower())


def translation_scores(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus BLEU (cased, detokenized), tokenized lowercased BLEU and chrF of translations against one
    reference each."""
    sacrebleu = sacrebleu_library()
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} translations for {len(references)} references")
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    tokenized_bleu = sacrebleu.corpus_bleu(
        [tokenized(text) for text in hypotheses],
        [[tokenized(text) for text in references]],
        tokenize="none",
        force=True,
    )
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    return {
        "bleu": round(float(bleu.score), 4),
        "tokenized_bleu": round(float(tokenized_bleu.score), 4),
        "chrf": round(float(chrf.score), 4),
        "sentences": len(hypotheses),
    }
