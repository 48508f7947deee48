"""The model and tokenizer a training run starts from: a (quantized) base with LoRA, and the CPU fixes it needs."""

from __future__ import annotations

import os

from l2l.cli import log


# ------------------------------------------------------------------------------------------ model
def disable_cpu_bf16_repacking(model) -> int:
    """On CPUs with AVX512-BF16, bitsandbytes repacks 4-bit weights for inference the first time one runs
    (generate, evaluate); QLoRA gradients of later training steps are then wrong (53-60 % error measured on
    this project's CI machine). Turning the repacking off keeps them equal to a float reference."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    n = 0
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
            n += 1
    return n


def load_tokenizer_for_training(name: str, padding: str, trust_remote_code: bool):
    from l2l.modeling import load_tokenizer

    tok = load_tokenizer(name, trust_remote_code=trust_remote_code)
    tok.padding_side = padding
    if tok.pad_token is None:
        # Never a word token: a reserved padding token when the vocabulary has one, else the end token
        # (labels are masked by attention, not by id, so the real end token is still trained).
        for candidate in ("<|finetune_right_pad_id|>", "<|pad|>", "<pad>", "[PAD]"):
            if candidate in tok.get_vocab():
                tok.pad_token = candidate
                break
        else:
            tok.pad_token = tok.eos_token
    return tok


def load_model_for_training(cfg, device: str):
    """The base model, quantized (4-bit NF4 by default, --quant8, --noquant), ready for k-bit training."""
    import transformers

    from l2l.modeling import compute_dtype, load_model

    quant4 = not (cfg.quant8 or cfg.noquant)
    kwargs = {}
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and device == "cuda":
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = load_model(transformers.AutoModelForCausalLM, cfg.base_model, device=device, quant4=quant4,
                       quant8=cfg.quant8, trust_remote_code=cfg.trust_remote_code,
                       dtype=compute_dtype(device) if device == "cuda" else None)
    if quant4 or cfg.quant8:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.checkpointing(device))
        if device == "cpu":
            disable_cpu_bf16_repacking(model)
    model.config.use_cache = False
    return model


def lora_config(cfg, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    from l2l.vocab import read_marker

    targets = cfg.target_modules
    targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    extension = read_marker(cfg.base_model)
    extra = {"trainable_token_indices": extension["new_token_ids"]} if extension else {}
    if extension:
        log(f"the base model's vocabulary was extended (extend_tokenizer.py): its {len(extension['new_token_ids'])} "
            "new embedding rows are trained too")
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none", task_type=task_type, **extra)


def expose_head_bias(model) -> None:
    """TRL's fused loss reads `lm_head.weight` and `lm_head.bias`. When new token rows are trained, peft wraps the
    head: the wrapper's `weight` is the head with the trained rows (so the loss trains them), but it has no
    `bias` attribute, and the first step fails. Give it the head's own (None: LM heads have no bias)."""
    head = model.get_output_embeddings()
    if type(head).__name__ == "TrainableTokensWrapper" and head.original_module.bias is None:
        try:
            head.bias  # noqa: B018 - a later peft may expose it
        except AttributeError:
            head.bias = None
