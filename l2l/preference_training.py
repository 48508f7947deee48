"""DPO and ORPO: everything finetune_dpo.py and finetune_orpo.py share beyond l2l/training.py."""

from __future__ import annotations

import argparse

from .cli import Parser, log
from . import training


def build_parser(prog: str, description: str, default_beta: float) -> Parser:
    from threads.args import add_thread_arguments

    p = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_training_arguments(p)
    p.add_argument("--max_prompt_length", type=int, default=512,
                   help="Longest prompt in tokens: older turns of the history are dropped to fit. Default 512.")
    p.add_argument("--beta", type=float, default=default_beta, help=f"Preference strength. Default {default_beta}.")
    p.add_argument("--adapter", default=None,
                   help="Start from this LoRA adapter (e.g. finetune.py's output): the usual SFT-then-preference "
                        "pipeline. Default: a fresh LoRA.")
    add_thread_arguments(p)
    return p


def load_model(args, device: str):
    """The base model, plus the SFT adapter made trainable when --adapter is given (else a fresh LoRA)."""
    model = training.load_model_for_training(args, device)
    if not args.adapter:
        return model, training.lora_config(args)
    from .inference import attach_adapter

    model = attach_adapter(model, args.adapter, trainable=True)
    if device == "cpu":
        training.disable_cpu_bf16_repacking(model)
    return model, None


def preference_metrics(log_history: list[dict]) -> dict:
    """The last logged reward accuracy and margin, train and validation."""
    out = {}
    for entry in log_history:
        for key in ("rewards/accuracies", "rewards/margins", "eval_rewards/accuracies", "eval_rewards/margins"):
            if key in entry:
                out[key.replace("/", "_")] = float(entry[key])
    return out


def main(argv, kind: str, prog: str, description: str, default_beta: float) -> int:
    args = build_parser(prog, description, default_beta).parse_args(argv)
    from threads import templates
    from threads.__main__ import prompt_counter
    from threads.args import thread_options
    from threads.make import build_pairs, pairs_dataset

    from .io import save_dataset
    from .modeling import device_for

    training.check_arguments(args)
    opts = thread_options(args, args.dataset_name)
    opts.validate()
    device = device_for(args.cpu)
    # Starting from an SFT adapter: its tokenizer, and by default the chat template it was trained with.
    from_adapter = bool(args.adapter) and _has_tokenizer(args.adapter)
    tokenizer = training.load_tokenizer_for_training(args.adapter if from_adapter else args.base_model,
                                                     args.padding, args.trust_remote_code)
    if args.thread_template is None:
        args.thread_template = "tokenizer" if from_adapter and tokenizer.chat_template else "llama3"
        log(f"chat template: {'the one saved with ' + args.adapter if args.thread_template == 'tokenizer' else 'llama3'}")
    template = templates.load(args.thread_template, tokenizer)
    dsd = pairs_dataset(build_pairs(opts, prompt_counter(tokenizer, template), args.max_prompt_length))
    if args.threads_output_name and training.is_main_process():
        save_dataset(dsd, args.threads_output_name, overwrite=True)
    tokenizer.chat_template = template
    eos_ids = templates.stop_token_ids(template, tokenizer)
    train_ds = dsd["train"].select_columns(["prompt", "chosen", "rejected"])
    eval_ds = dsd["validation"].select_columns(["prompt", "chosen", "rejected"]) if "validation" in dsd else None
    common = training.common_trainer_kwargs(args, device, eval_ds is not None)
    model, peft_config = load_model(args, device)
    if kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**common, beta=args.beta, max_length=args.max_seq_length)
        trainer = DPOTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=peft_config)
    else:
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        config = ORPOConfig(**common, beta=args.beta, max_length=args.max_seq_length, remove_unused_columns=False,
                            max_completion_length=max(1, args.max_seq_length - args.max_prompt_length))
        trainer = ORPOTrainer(model=model, args=config, train_dataset=train_ds, eval_dataset=eval_ds,
                              processing_class=tokenizer, peft_config=peft_config)
    result = training.train(trainer, config.output_dir)
    summary = training.summarize(trainer, result, train_ds, eval_ds, "pairs")
    summary.update(preference_metrics(trainer.state.log_history))
    if args.adapter:
        summary["started_from_adapter"] = args.adapter
    training.finish(trainer, tokenizer, args, kind, summary, eos_ids)
    return 0


def _has_tokenizer(folder: str) -> bool:
    from pathlib import Path

    return (Path(folder) / "tokenizer_config.json").exists()
