"""Corpora, vocabularies and batching. Depends on numpy only (never torch), so the NumPy engine
can use it."""
