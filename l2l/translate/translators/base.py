"""The translator interface and registry.

A translator maps a user's language codes onto its own, says how many tokens a text costs and how many
it may take, and translates a batch of texts from one source language into the target language.
Everything else (segmentation, deduplication, sorting, batching, checkpoints) is the job's, not the
translator's, so a new backend is one small class.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import ClassVar

from l2l.cli import CPU_HELP, TRUST_REMOTE_CODE_HELP, positive_int
from l2l.config import option

REGISTRY: dict[str, type[Translator]] = {}


class PairUnavailable(Exception):
    """No model for this language pair: the job skips those records, says so, and leaves them to a re-run."""


def register(cls: type[Translator]) -> type[Translator]:
    REGISTRY[cls.name] = cls
    return cls


ENGINES = ["transformers", "ctranslate2"]
COMPUTE_TYPES = ["int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32"]
BACKEND_FLAGS = ("model_name", "model_size", "prompt", "system_prompt")  # the backends say which they take


@dataclass
class TranslatorOptions:
    """How a backend loads and runs its model. The flags here are common to every backend, except those in
    BACKEND_FLAGS: each backend takes the ones it uses, with its own default and choices (`backend_flags`)."""

    quant8: bool = option(False, "Load the model in 8 bits (bitsandbytes).", exclusive="quant")
    quant4: bool = option(False, "Load the model in 4 bits NF4 (bitsandbytes).", exclusive="quant")
    cpu: bool = option(False, CPU_HELP)
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    max_length: int | None = option(None, "Most tokens generated per piece of text. Default: twice the input piece, "
                                          "plus 16. Long texts are always split to fit the model, never truncated.",
                                    type=positive_int)
    num_beams: int = option(1, "Beam search width. Default 1 (greedy).", type=positive_int)
    engine: str = option("transformers", "Run seq2seq models (opus, m2m, nllb, madlad, mbart) with transformers or "
                                         "CTranslate2 (converted once and cached; several times faster).",
                         choices=ENGINES)
    ct2_compute_type: str | None = option(
        None,
        "CTranslate2 compute type: int8 (CPU default), int8_float16 (GPU "
        "default), float16, bfloat16, float32, ... (needs --engine ctranslate2).",
        choices=COMPUTE_TYPES,
    )
    model_name: str | None = option(None, "A Hub id or local folder instead of the backend's default model.")
    model_size: str | None = option(None, "Model size of the backend's family.")
    prompt: str | None = option(None, "Translation prompt for LLM backends.")
    system_prompt: str | None = option(None, "Optional system message for LLM backends.")
    device: str = "cpu"  # resolved from --cpu and the hardware by the caller

    def __post_init__(self) -> None:
        """Engine flags that contradict each other: one line, before anything is read or written (the
        translator itself refuses an engine it does not run on)."""
        from l2l.cli import UsageError

        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}: choose from {', '.join(ENGINES)}")
        if self.engine == "ctranslate2":
            if self.quant4 or self.quant8:
                raise UsageError(
                    "--quant4/--quant8 quantize the transformers engine; with --engine ctranslate2 use "
                    "--ct2_compute_type (int8 is the CPU default, int8_float16 the GPU default)"
                )
        elif self.ct2_compute_type:
            raise UsageError("--ct2_compute_type needs --engine ctranslate2")


class Translator:
    name: ClassVar[str]
    help: ClassVar[str]
    sentence_level: ClassVar[bool] = True  # MT models are trained on sentences; LLMs see paragraphs
    supports_ct2: ClassVar[bool] = False  # runs under --engine ctranslate2

    def __init__(self, options: TranslatorOptions):
        from l2l.cli import UsageError

        self.options = options
        if options.engine == "ctranslate2" and not self.supports_ct2:
            raise UsageError(
                f"--engine ctranslate2 does not support {self.name} (it serves opus, m2m, nllb, mbart, madlad, llm "
                "and towerinstruct)"
            )

    # --- command line -------------------------------------------------------------------------------
    @classmethod
    def backend_flags(cls) -> dict[str, dict]:
        """The BACKEND_FLAGS this backend takes, each with what differs from its TranslatorOptions field
        (default, choices, help, required)."""
        return {}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The backend's own flags, declared from their TranslatorOptions fields."""
        from l2l.config import add_field_argument

        for name, changes in cls.backend_flags().items():
            add_field_argument(parser, TranslatorOptions, name, **changes)

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
