"""A LoRA adapter merged into its base model and saved as a standalone model folder (weights, tokenizer with
the chat template it was trained with, the stop tokens finetune.py set): merge_adapter.py and export_gguf.py."""

from __future__ import annotations

from pathlib import Path

from l2l.cli import UsageError


def check_merge_inputs(adapter: str, base: str | None) -> str:
    """Before anything loads: `adapter` is an adapter, and its weights and its base model's are whole; the base."""
    from l2l.inference import adapter_base
    from l2l.modeling import check_model_files

    found = base or adapter_base(adapter)
    if found is None:
        raise UsageError(f"{adapter} is not a LoRA adapter (no adapter_config.json)")
    check_model_files(adapter)
    check_model_files(found)
    return found


def save_merged(adapter: str, base: str | None, folder: Path, *, device: str = "cpu", dtype=None,
                trust_remote_code: bool = False) -> str:
    """Merge `adapter` into `base` (default: the base named in its config) and save it in `folder`; the base."""
    from l2l.inference import adapter_tokenizer, attach_adapter

    base = check_merge_inputs(adapter, base)
    import transformers

    from l2l.modeling import load_model

    model = load_model(transformers.AutoModelForCausalLM, base, device=device, dtype=dtype,
                       trust_remote_code=trust_remote_code)  # never quantized: merging needs real weights
    merged = attach_adapter(model, adapter).merge_and_unload()
    tokenizer = adapter_tokenizer(adapter, base, trust_remote_code)
    merged.save_pretrained(folder, safe_serialization=True)
    from l2l import templates

    templates.save_with(tokenizer, folder, templates.saved_training_template(tokenizer) or tokenizer.chat_template)
    from l2l.vocab import MARKER

    marker = Path(base) / MARKER
    if marker.is_file():  # an extended vocabulary: the merged model is extended the same way
        (folder / MARKER).write_bytes(marker.read_bytes())
    gen = Path(adapter) / "generation_config.json"
    if gen.exists():  # the stop tokens finetune.py trained
        (folder / "generation_config.json").write_bytes(gen.read_bytes())
    return base
