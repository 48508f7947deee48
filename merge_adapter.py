#!/usr/bin/env python
"""Merge a LoRA adapter into its base model and save a standalone model (safetensors + tokenizer).

    python merge_adapter.py ./llama3-nl ./llama3-nl-merged [--cpu] [--push_to_hub]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from l2l.cli import Parser, add_cpu_arg, add_hub_args, add_trust_remote_code_arg, log, run


def build_parser() -> Parser:
    p = Parser(prog="merge_adapter.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_name", help="The adapter: a folder or Hub id (its base model is read from its config).")
    p.add_argument("output_name", help="Folder for the merged model (a Hub repo id too with --push_to_hub).")
    p.add_argument("--base_model", default=None, help="Override the adapter's base model.")
    add_cpu_arg(p, help="Merge on the CPU (the model is loaded unquantized).")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto",
                   help="Weights of the merged model. Default auto: float32 on CPU, bf16/fp16 on GPU.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    add_trust_remote_code_arg(p)
    add_hub_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from l2l.io import check_output_free

    check_output_free(args.output_name, args.overwrite, inputs=(args.model_name, args.base_model))
    import torch

    from l2l.io import replace_dir, temp_dir_beside
    from l2l.merging import save_merged
    from l2l.modeling import device_for

    out = Path(args.output_name)
    tmp = temp_dir_beside(out)
    try:
        base = save_merged(args.model_name, args.base_model, tmp, device=device_for(args.cpu),
                           dtype=None if args.dtype == "auto" else getattr(torch, args.dtype),
                           trust_remote_code=args.trust_remote_code)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"merged {args.model_name} into {base}: {out}")
    if args.push_to_hub:
        from l2l.training import push_adapter

        push_adapter(out, args.output_name, args.private)
    print(out)
    return 0


if __name__ == "__main__":
    run(main)
