#!/usr/bin/env python
"""Export a tuned model to one GGUF file for llama.cpp, Ollama, LM Studio or llama-cpp-python, with llama.cpp's
own converter: an adapter is merged into its base first; the chat template and special tokens travel along.

    python export_gguf.py ./llama3-nl llama3-nl.gguf                      # adapter -> merged -> f16 GGUF
    python export_gguf.py ./llama3-nl llama3-nl-q4.gguf --outtype q4_k_m  # smaller, for a laptop
    python export_gguf.py ./llama3-nl-merged llama3-nl.gguf --outtype q8_0

The converter is convert_hf_to_gguf.py from llama.cpp (--llama_cpp DIR, a checkout), by default the one vendored
in llama-cpp-python's source release on PyPI (fetched once, cached). f16, bf16, f32 and q8_0 come straight from
the converter; q4_k_m and the other k-quants from llama.cpp's quantizer (needs `pip install llama-cpp-python`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from l2l.cli import Parser, UsageError, add_trust_remote_code_arg, log, run
from l2l.llamacpp import CONVERT_TYPES, QUANT_TYPES


def build_parser() -> Parser:
    p = Parser(prog="export_gguf.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="An adapter folder from finetune.py (merged into its base on the fly) or a merged "
                                 "model (folder or Hub id).")
    p.add_argument("output", help="The GGUF file to write (name.gguf).")
    p.add_argument("--base_model", default=None, help="The adapter's base model (default: read from its config).")
    p.add_argument("--outtype", default="f16", choices=[*CONVERT_TYPES, *QUANT_TYPES],
                   help="Weights in the file. Default f16. q8_0: half the size, near-lossless; q4_k_m: a quarter, "
                        "the usual laptop choice (needs llama-cpp-python).")
    p.add_argument("--llama_cpp", default=None,
                   help="A llama.cpp checkout whose convert_hf_to_gguf.py to use (default: $LLAMA_CPP_DIR, else the "
                        "one in llama-cpp-python's source release, fetched once).")
    p.add_argument("--system", default=None,
                   help="System prompt for the printed Ollama Modelfile (default: the one the adapter was trained "
                        "with, from its training_summary.json).")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output file.")
    add_trust_remote_code_arg(p)
    return p


def check_output(args) -> Path:
    from l2l.io import check_apart, check_writable

    out = Path(args.output)
    if out.suffix.lower() != ".gguf":
        raise UsageError(f"the output {args.output} should end in .gguf")
    if out.is_dir() or (out.exists() and not args.overwrite):
        raise UsageError(f"the output {args.output} exists; give --overwrite to replace it")
    check_apart(args.output, args.model, args.base_model)
    check_writable(str(out.parent) if str(out.parent) else ".", folder=True, flag="output")
    return out


def architecture(model: str, trust_remote_code: bool) -> str:
    """The model's Hugging Face architecture name, from its config."""
    from l2l.modeling import load_config

    archs = getattr(load_config(model, trust_remote_code=trust_remote_code), "architectures", None) or []
    if not archs:
        raise UsageError(f"{model}'s config names no architecture: llama.cpp's converter needs one")
    return archs[0]


def local_model(model: str) -> Path:
    """A merged model as a local folder (a Hub id is downloaded to the Hub cache)."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    from l2l.modeling import load_error

    try:
        return Path(snapshot_download(model, allow_patterns=["*.json", "*.safetensors", "*.model", "*.jinja",
                                                              "*.txt", "*.tiktoken"]))
    except Exception as e:
        raise load_error("model", model, e) from e


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = check_output(args)
    from l2l import llamacpp
    from l2l.inference import adapter_base

    own_base = adapter_base(args.model)
    if args.base_model and own_base is None and not Path(args.model, "adapter_config.json").exists():
        raise UsageError(f"--base_model is for adapters; {args.model} is a full model (no adapter_config.json)")
    base = args.base_model or own_base
    arch = architecture(base or args.model, args.trust_remote_code)
    converter = llamacpp.find_converter(args.llama_cpp)
    if arch not in llamacpp.supported_architectures(converter):
        raise UsageError(f"llama.cpp's converter ({converter}) cannot convert the architecture {arch}: no GGUF "
                         "export for this model")
    import shutil

    from l2l.io import temp_dir_beside

    work = temp_dir_beside(out)  # also clears what a killed export of this file left behind
    try:
        if base:
            from l2l.merging import save_merged

            log(f"merging {args.model} into {base}")
            save_merged(args.model, base, work / "merged", trust_remote_code=args.trust_remote_code)
            source = work / "merged"
        else:
            source = local_model(args.model)
        converted = work / "model.gguf"
        from l2l.vocab import read_marker

        extension = read_marker(base or str(source))
        llamacpp.convert(converter, source, converted, args.outtype if args.outtype in CONVERT_TYPES else "f16",
                         pre_tokenizer_of=extension["base_model"] if extension else None)
        if args.outtype in QUANT_TYPES:
            llamacpp.quantize(converted, work / "quantized.gguf", args.outtype)
            converted = work / "quantized.gguf"
        meta = gguf_summary(converted)
        converted.replace(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out} ({out.stat().st_size / 2**20:.0f} MiB, {meta['architecture']}, {args.outtype}, chat template: "
        f"{'yes' if meta['chat_template'] else 'NO: llama.cpp and Ollama will guess the chat format'})")
    print(run_instructions(out, meta, system_prompt(args)))
    return 0


def gguf_summary(path: Path) -> dict:
    """What the written file says about itself: architecture, chat template, its end-of-text token."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def field(key):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    tokens = field("tokenizer.ggml.tokens") or []
    eos = field("tokenizer.ggml.eos_token_id")
    return {"architecture": field("general.architecture"), "chat_template": field("tokenizer.chat_template"),
            "eos": tokens[eos] if eos is not None and eos < len(tokens) else None}


def system_prompt(args) -> str | None:
    if args.system is not None:
        return args.system
    summary = Path(args.model) / "training_summary.json"
    if summary.is_file():
        return json.loads(summary.read_text(encoding="utf-8")).get("instruction_prompt")
    return None


def run_instructions(out: Path, meta: dict, system: str | None) -> str:
    """An Ollama Modelfile and a llama-cli line that run the exported file."""
    stops = {meta["eos"]} | ({"<|im_end|>"} if "<|im_end|>" in (meta["chat_template"] or "") else set()) \
        | ({"<|eot_id|>"} if "<|eot_id|>" in (meta["chat_template"] or "") else set())
    lines = ["# Ollama: save as Modelfile, then: ollama create mymodel -f Modelfile && ollama run mymodel",
             f"FROM ./{out.name}"]
    lines += [f"PARAMETER stop {json.dumps(s)}" for s in sorted(s for s in stops if s)]
    if system:
        lines.append(f"SYSTEM {json.dumps(system, ensure_ascii=False)}")
    sys_flag = f" -sys {json.dumps(system, ensure_ascii=False)}" if system else ""
    lines += ["", "# llama.cpp (the chat template in the file formats the conversation):",
              f"llama-cli -m {out} --jinja -cnv{sys_flag}"]
    return "\n".join(lines)


if __name__ == "__main__":
    run(main)
