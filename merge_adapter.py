#!/usr/bin/env python
"""Merge a LoRA adapter into its base model and save a standalone model (safetensors + tokenizer).

    python merge_adapter.py ./llama3-nl ./llama3-nl-merged [--cpu] [--push_to_hub]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, log, run
from l2l.config import HubOptions, add_arguments, from_args, nested, option


@dataclass(kw_only=True)
class MergeOptions:
    """merge_adapter.py's settings."""

    model_name: str = option(
        help="The adapter: a folder or Hub id (its base model is read from its config).", positional=True
    )
    output_name: str = option(
        help="Folder for the merged model (a Hub repo id too with --push_to_hub).", positional=True
    )
    base_model: str | None = option(None, "Override the adapter's base model.")
    cpu: bool = option(False, "Merge on the CPU (the model is loaded unquantized).")
    dtype: str = option(
        "auto",
        "Weights of the merged model. Default auto: float32 on CPU, bf16/fp16 on GPU.",
        choices=["auto", "float32", "bfloat16", "float16"],
    )
    overwrite: bool = option(False, "Replace an existing output folder.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    hub: HubOptions = nested(HubOptions)


def build_parser() -> Parser:
    p = Parser(prog="merge_adapter.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, MergeOptions)
    return p


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(MergeOptions, build_parser().parse_args(argv))
    from l2l.io import check_output_free
    from l2l.merging import check_merge_inputs

    check_output_free(cfg.output_name, cfg.overwrite, inputs=(cfg.model_name, cfg.base_model))
    check_merge_inputs(cfg.model_name, cfg.base_model)
    import torch

    from l2l.io import building
    from l2l.merging import save_merged
    from l2l.modeling import device_for

    out = Path(cfg.output_name)
    with building(out, "merged model") as tmp:
        base = save_merged(cfg.model_name, cfg.base_model, tmp, device=device_for(cfg.cpu),
                           dtype=None if cfg.dtype == "auto" else getattr(torch, cfg.dtype),
                           trust_remote_code=cfg.trust_remote_code)
    log(f"merged {cfg.model_name} into {base}: {out}")
    if cfg.hub.push_to_hub:
        from l2l.train.outputs import push_adapter

        push_adapter(out, cfg.output_name, cfg.hub.private)
    print(out)
    return 0


if __name__ == "__main__":
    run(main)
