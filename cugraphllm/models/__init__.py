"""The model that ships with the package: stories260K (see stories260K/README.md), used when --model is absent.

The CLI's `generate`, `chat`, `bench --backend numpy` and `serve` call `default_model(args.model)`; it returns the
packaged checkpoint (and says so in one status line) only when no model was given.
"""
from __future__ import annotations

from pathlib import Path

DEFAULT_NAME = "stories260K"
DEFAULT_DIR = Path(__file__).resolve().parent / DEFAULT_NAME
DEFAULT_MODEL = DEFAULT_DIR / "stories260K.bin"
DEFAULT_TOKENIZER = DEFAULT_DIR / "tok512.model"


def default_model(model, status=None):
    """`model` when given; else the packaged stories260K .bin, reported through `status(text)` once."""
    if model is not None:
        return model
    if status is not None:
        status(f"no --model given: using the packaged {DEFAULT_NAME} (a 260K-parameter TinyStories model, "
               f"{DEFAULT_MODEL})")
    return DEFAULT_MODEL
