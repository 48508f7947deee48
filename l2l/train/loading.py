"""The model and tokenizer a training run starts from: a (quantized) base with LoRA, and the CPU fixes it needs."""

from __future__ import annotations

import os

from l2l.cli import UsageError, log


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


def load_model_for_training(cfg, device: str, reference_copy: bool = False):
    """The base model, quantized (4-bit NF4 by default, --quant8, --noquant), ready for k-bit training; with
    --full_finetune in float32, after checking that it fits (beside a frozen reference copy, for DPO)."""
    import torch
    import transformers

    from l2l.modeling import compute_dtype, load_model

    quant4 = cfg.quantized and not cfg.quant8
    if cfg.full_finetune:
        check_full_finetune_fits(cfg, device, reference_copy)
    model = load_model(transformers.AutoModelForCausalLM, cfg.base_model, device=device, quant4=quant4,
                       quant8=cfg.quant8, trust_remote_code=cfg.trust_remote_code,
                       dtype=torch.float32 if cfg.full_finetune else compute_dtype(device) if device == "cuda"
                       else None)
    if quant4 or cfg.quant8:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.checkpointing(device))
        if device == "cpu":
            disable_cpu_bf16_repacking(model)
    model.config.use_cache = False
    return model


# 16 bytes a parameter for float32 weights + gradients + AdamW's two moments; 8-bit AdamW keeps 2 bytes of state
OPTIMIZER_STATE_BYTES = {"adamw_8bit": 2, "paged_adamw_8bit": 2, "adamw_bnb_8bit": 2, "adafactor": 1, "sgd": 0}


def full_finetune_bytes(n_params: int, optim: str | None, reference_copy: bool = False) -> int:
    """Weights and gradients (float32), the optimizer's state, and a frozen float32 copy for DPO's reference."""
    return n_params * (8 + OPTIMIZER_STATE_BYTES.get(optim or "adamw_torch", 8) + 4 * reference_copy)


def device_memory(device: str) -> int:
    """Bytes the training can use: the GPU's total memory, or the machine's available memory on CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_properties(int(os.environ.get("LOCAL_RANK", "0"))).total_memory
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_full_finetune_fits(cfg, device: str, reference_copy: bool = False) -> None:
    """--full_finetune: the parameters counted on the meta device (nothing loaded), the memory that weights,
    gradients and optimizer state take against the device's; one line when it cannot fit."""
    import torch
    import transformers

    from l2l.modeling import load_config

    config = load_config(cfg.base_model, trust_remote_code=cfg.trust_remote_code)
    with torch.device("meta"):
        shell = transformers.AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.trust_remote_code)
    n = sum(p.numel() for p in shell.parameters())
    need, have = full_finetune_bytes(n, cfg.optim, reference_copy), device_memory(device)
    gib = 2**30
    if need > 0.9 * have:
        raise UsageError(f"--full_finetune: {cfg.base_model} has {n / 1e9:.2f}B parameters, which need about "
                         f"{need / gib:.1f} GiB for weights, gradients and {cfg.optim or 'AdamW'} state"
                         f"{' and the reference copy' if reference_copy else ''}, and this "
                         f"{device} has {have / gib:.1f} GiB: train LoRA (drop --full_finetune; "
                         "--train_embeddings trains the embeddings beside it), or --optim adamw_8bit")
    log(f"full fine-tuning: {n / 1e6:.0f}M parameters, about {need / gib:.2f} GiB for weights, gradients and "
        f"optimizer state, plus activations ({device}: {have / gib:.1f} GiB)")


def embedding_modules(model, what_for: str = "--train_embeddings") -> list[str]:
    """The names of the model's input and output embedding modules (as peft's modules_to_save names them); one
    line when the model has none to train."""
    names = []
    for getter, what in ((model.get_input_embeddings, "input"), (model.get_output_embeddings, "output")):
        try:
            module = getter()
        except (AttributeError, NotImplementedError):
            module = None
        found = next((n for n, m in model.named_modules() if module is not None and m is module), None)
        if not found:
            raise UsageError(f"{what_for}: {type(model).__name__} has no {what} embeddings module to train")
        names.append(found.rsplit(".", 1)[-1])
    return list(dict.fromkeys(names))


def embedding_optimizer(trainer, cfg) -> None:
    """--train_embeddings / --full_finetune: the optimizer the trainer makes (--optim, its weight-decay groups,
    bitsandbytes' 32-bit embedding state), with the embeddings moved into groups of their own at
    --embedding_learning_rate."""
    if not (cfg.train_embeddings or cfg.full_finetune):
        return
    embeddings = float32_embeddings(trainer.model)
    optimizer = trainer.create_optimizer()
    for group in list(optimizer.param_groups):
        moved = [p for p in group["params"] if id(p) in embeddings]
        if moved:
            group["params"] = [p for p in group["params"] if id(p) not in embeddings]
            optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"}, "params": moved,
                                       "lr": cfg.embedding_lr})
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
    n = sum(p.numel() for p in embeddings.values())
    log(f"embeddings: {n / 1e6:.1f}M parameters trained at {cfg.embedding_lr:g}, the rest at {cfg.learning_rate:g}")


def float32_embeddings(model) -> dict:
    """{id: parameter} of what trains in the input and output embeddings (the whole matrices, or an extended
    vocabulary's new rows), cast to float32: TRL casts a 4-bit model's trainable weights to bf16, too coarse
    for Adam, and peft casts only its adapter layers."""
    import torch

    embeddings = {id(p): p for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None
                  for p in m.parameters() if p.requires_grad}
    for p in embeddings.values():
        if p.dtype != torch.float32:
            p.data = p.data.float()
    return embeddings


def lora_config(cfg, model=None, task_type: str = "CAUSAL_LM"):
    """peft's LoraConfig for these settings (None with --full_finetune); `model` names the embedding modules
    that --train_embeddings trains."""
    from peft import LoraConfig

    if cfg.full_finetune:
        return None
    targets = cfg.target_modules
    targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    extension = check_new_rows(cfg)
    extra = {"trainable_token_indices": new_rows(model, extension["new_token_ids"])} if extension else {}
    if cfg.train_embeddings:  # the whole matrices, new rows included
        extra = {"modules_to_save": embedding_modules(model), "ensure_weight_tying": True}
        log(f"--train_embeddings: {', '.join(extra['modules_to_save'])} trained fully beside LoRA")
    elif cfg.new_rows_only:
        log(f"--new_rows_only: the {len(extension['new_token_ids'])} new rows of "
            f"{', '.join(extra['trainable_token_indices'])} trained, every other weight frozen")
    elif extension:
        log(f"the base model's vocabulary was extended (extend_tokenizer.py): its {len(extension['new_token_ids'])} "
            "new embedding rows are trained too")
    rank = 1 if cfg.new_rows_only else cfg.lora_r  # --new_rows_only: a rank-1 LoRA kept frozen (a no-op)
    return LoraConfig(r=rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none", task_type=task_type, **extra)


def check_new_rows(cfg) -> dict | None:
    """The base's extension record (None for a base never extended); --new_rows_only needs one."""
    from l2l.vocab import read_marker

    extension = read_marker(cfg.base_model)
    if cfg.new_rows_only and not (extension and extension.get("new_token_ids")):
        raise UsageError(f"--new_rows_only: {cfg.base_model} has no new vocabulary rows (it was not extended by "
                         "extend_tokenizer.py); train it with LoRA, --train_embeddings or --full_finetune")
    return extension


def new_rows(model, ids: list[int]) -> dict[str, list[int]]:
    """The new rows to train in each embedding module: the input embeddings, and an untied output layer too (a
    tied one follows the input rows)."""
    names = embedding_modules(model, "the extended vocabulary's new rows")
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    if out is None or out.weight.data_ptr() == inp.weight.data_ptr():
        names = names[:1]
    return {name: list(ids) for name in names}


def prepare_trainable(trainer, cfg) -> None:
    """After the trainer wrapped the model: the head's bias exposed for TRL's fused loss, new vocabulary rows
    kept in float32, the LoRA layers frozen for --new_rows_only (their B is zero: they change nothing, and only
    the new rows train), the embeddings' optimizer groups for --train_embeddings / --full_finetune."""
    import torch

    expose_head_bias(trainer.model)
    float32_embeddings(trainer.model)
    if cfg.new_rows_only:
        for name, p in trainer.model.named_parameters():
            if "lora_" in name and p.requires_grad:
                # DPO's reference pass (the adapter disabled, then enabled) makes peft set requires_grad again;
                # the zero gradient keeps them out of the gradient norm that clipping scales the new rows by
                p.register_hook(torch.zeros_like)
                p.requires_grad = False
    embedding_optimizer(trainer, cfg)


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
