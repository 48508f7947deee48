"""The translation backends. A backend is one class registered under its command-line name."""

from __future__ import annotations

from l2l.translate.translators import hf, llm, offline  # noqa: F401,E402  (registration side effect)
from l2l.translate.translators.base import REGISTRY, Translator, TranslatorOptions, register  # noqa: F401


def get(name: str) -> type[Translator]:
    return REGISTRY[name]
