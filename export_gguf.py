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
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, UsageError, log, run
from l2l.config import add_arguments, from_args, option
from l2l.llamacpp import CONVERT_TYPES, QUANT_TYPES


@dataclass(kw_only=True)
class ExportOptions:
    """export_gguf.py's settings."""

    model: str = option(
        help="An adapter folder from finetune.py (merged into its base on the fly) or a merged "
        "model (folder or Hub id).",
        positional=True,
    )
    output: str = option(help="The GGUF file to write (name.gguf).", positional=True)
    base_model: str | None = option(None, "The adapter's base model (default: read from its config).")
    outtype: str = option(
        "f16",
        "Weights in the file. Default f16. q8_0: half the size, near-lossless; q4_k_m: a quarter, "
        "the usual laptop choice (needs llama-cpp-python).",
        choices=[*CONVERT_TYPES, *QUANT_TYPES],
    )
    llama_cpp: str | None = option(
        None,
        "A llama.cpp checkout whose convert_hf_to_gguf.py to use (default: $LLAMA_CPP_DIR, else the "
        "one in llama-cpp-python's source release, fetched once).",
    )
    system: str | None = option(
        None,
        "System prompt for the printed Ollama Modelfile (default: the one the adapter was trained "
        "with, from its training_summary.json).",
    )
    overwrite: bool = option(False, "Replace an existing output file.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)


def build_parser() -> Parser:
    p = Parser(prog="export_gguf.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, ExportOptions)
    return p


def check_output(cfg) -> Path:
    from l2l.io import check_file_free

    out = Path(cfg.output)
    if out.suffix.lower() != ".gguf":
        raise UsageError(f"the output {cfg.output} should end in .gguf")
    check_file_free(cfg.output, cfg.overwrite, inputs=(cfg.model, cfg.base_model))
    if cfg.outtype in QUANT_TYPES:  # before the merge and the conversion, not after
        from l2l.llamacpp import require_quantizer

        require_quantizer(cfg.outtype)
    return out


def architecture(config, model: str) -> str:
    """The model's Hugging Face architecture name, from its config."""
    archs = getattr(config, "architectures", None) or []
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


def check_head_kept(config, model: str) -> None:
    """llama.cpp's Gemma converters drop `lm_head.weight` (Gemma ties it): a Gemma given an output layer of its
    own (extend_tokenizer.py --untie_embeddings) would lose it, trained rows and all, without a word."""
    if str(config.model_type).startswith("gemma") and not config.get_text_config().tie_word_embeddings:
        raise UsageError(f"{model} is a Gemma with an untied output layer (extend_tokenizer.py --untie_embeddings); "
                         "llama.cpp's converter drops it, so the GGUF would answer differently: export the "
                         "transformers model, or extend without --untie_embeddings")


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(ExportOptions, build_parser().parse_args(argv))
    out = check_output(cfg)
    from l2l import llamacpp
    from l2l.inference import adapter_base

    own_base = adapter_base(cfg.model)
    if cfg.base_model and own_base is None and not Path(cfg.model, "adapter_config.json").exists():
        raise UsageError(f"--base_model is for adapters; {cfg.model} is a full model (no adapter_config.json)")
    base = cfg.base_model or own_base
    from l2l.modeling import check_model_files

    for folder in (cfg.model, base):
        if folder:
            check_model_files(folder)
    from l2l.modeling import load_config

    config = load_config(base or cfg.model, trust_remote_code=cfg.trust_remote_code)
    arch = architecture(config, base or cfg.model)
    converter = llamacpp.find_converter(cfg.llama_cpp)
    if arch not in llamacpp.supported_architectures(converter):
        raise UsageError(f"llama.cpp's converter ({converter}) cannot convert the architecture {arch}: no GGUF "
                         "export for this model")
    check_head_kept(config, base or cfg.model)
    import shutil

    from l2l.io import disk_full_names, temp_dir_beside

    work = temp_dir_beside(out)  # also clears what a killed export of this file left behind
    with disk_full_names(out):  # a full disk while merging or converting: one line naming the .gguf
        try:
            if base:
                from l2l.merging import save_merged

                log(f"merging {cfg.model} into {base}")
                save_merged(cfg.model, base, work / "merged", trust_remote_code=cfg.trust_remote_code)
                source = work / "merged"
            else:
                source = local_model(cfg.model)
            converted = work / "model.gguf"
            from l2l.vocab import read_marker

            extension = read_marker(base or str(source))
            llamacpp.convert(converter, source, converted, cfg.outtype if cfg.outtype in CONVERT_TYPES else "f16",
                             pre_tokenizer_of=extension["base_model"] if extension else None)
            if cfg.outtype in QUANT_TYPES:
                llamacpp.quantize(converted, work / "quantized.gguf", cfg.outtype)
                converted = work / "quantized.gguf"
            meta = gguf_summary(converted)
            converted.replace(out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out} ({out.stat().st_size / 2**20:.0f} MiB, {meta['architecture']}, {cfg.outtype}, chat template: "
        f"{'yes' if meta['chat_template'] else 'NO: llama.cpp and Ollama will guess the chat format'})")
    print(run_instructions(out, meta, system_prompt(cfg)))
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


def system_prompt(cfg) -> str | None:
    if cfg.system is not None:
        return cfg.system
    summary = Path(cfg.model) / "training_summary.json"
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
    from l2l import templates

    go = templates.ollama_template(meta["chat_template"])
    lines += [f'TEMPLATE """{go}"""'] if go else [
        "# no TEMPLATE: the chat template is not one l2l ships; Ollama then picks one from the file's own "
        "(check with: ollama show mymodel --template)"]
    if system:
        lines.append(f"SYSTEM {json.dumps(system, ensure_ascii=False)}")
    sys_flag = f" -sys {json.dumps(system, ensure_ascii=False)}" if system else ""
    lines += ["", "# llama.cpp (the chat template in the file formats the conversation):",
              f"llama-cli -m {out} --jinja -cnv{sys_flag}"]
    return "\n".join(lines)


if __name__ == "__main__":
    run(main)
