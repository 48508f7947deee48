"""The translator interface and registry.

A translator maps a user's language codes onto its own, says how many tokens a text costs and how many
it may take, and translates a batch of texts from one source language into the target language.
Everything else (segmentation, deduplication, sorting, batching, checkpoints) is the job's, not the
translator's, so a new backend is one small class.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import ClassVar

REGISTRY: dict[str, type["Translator"]] = {}


class PairUnavailable(Exception):
    """No model for this language pair: the job skips those records, says so, and leaves them to a re-run."""


def register(cls: type["Translator"]) -> type["Translator"]:
    REGISTRY[cls.name] = cls
    return cls


@dataclass
class TranslatorOptions:
    model_name: str | None = None
    model_size: str | None = None
    device: str = "cpu"
    quant4: bool = False
    quant8: bool = False
    max_length: int | None = None        # generated tokens per piece
    num_beams: int = 1
    trust_remote_code: bool = False
    extra: dict = field(default_factory=dict)  # backend-specific flags


class Translator:
    name: ClassVar[str]
    help: ClassVar[str]
    sentence_level: ClassVar[bool] = True   # MT models are trained on sentences; LLMs see paragraphs
    supports_ct2: ClassVar[bool] = False    # runs under --engine ctranslate2

    def __init__(self, options: TranslatorOptions):
        from ..cli import UsageError

        self.options = options
        if options.extra.get("engine", "transformers") == "ctranslate2" and not self.supports_ct2:
            raise UsageError(f"--engine ctranslate2 does not support {self.name} (it serves opus, m2m, nllb, mbart "
                             "and madlad)")

    # --- command line -------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Backend-specific flags (model size, prompt...)."""

    # --- languages ----------------------------------------------------------------------------------
    def target_code(self, code: str) -> str:
        """The backend's own code for a target language; UnsupportedLanguage when it has none."""
        raise NotImplementedError

    def source_code(self, code: str) -> str:
        return self.target_code(code)

    def check_pair(self, source: str, target: str) -> None:
        """Raise PairUnavailable when this source cannot be translated into this target."""

    # --- model --------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        raise NotImplementedError

    def load(self) -> None:
        """Load the weights (the tokenizer may already be loaded for language and length checks)."""

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t) // 3 + 1 for t in texts]

    @property
    def max_input_tokens(self) -> int:
        return 256

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate texts (all in `source`, the backend's code) into `target` (the backend's code)."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"translator": self.name, "model": self.model_id}
