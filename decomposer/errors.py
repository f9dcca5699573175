"""The decomposer's one error type: says which backbone, file, field or value is at fault."""

from __future__ import annotations


class DecomposerError(ValueError):
    """Bad input to the decomposer: an unknown backbone, a missing or misfit weights file,
    embeddings or parameters that cannot be decomposed. Raised where the input enters."""
