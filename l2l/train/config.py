"""The training scripts' settings, each defined once (flag, default, help), validated once; and the record of
them kept beside the trainer checkpoints, so that a resume with other settings is refused instead of
silently continuing the old run."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import CPU_HELP, TRUST_REMOTE_CODE_HELP, UsageError, log, positive_int
from l2l.config import HubOptions, differences, names_where, nested, option

DEFAULT_BASE_MODEL = "NousResearch/Meta-Llama-3-8B-Instruct"
SETTINGS_FILE = "l2l_training_settings.json"
OPTIMIZERS = ["adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "adafactor",
              "sgd"]


@dataclass
class TrainingConfig:
    """The flags every training script takes: finetune.py, finetune_dpo.py, finetune_orpo.py and pretrain.py
    (LLaMa2lang's names and positionals)."""

    tuned_model: str = option(help="Output: a local folder for the adapter (a Hub repo id too with --push_to_hub).",
                              positional=True, resumable=True)
    dataset_name: str = option(help="The dataset: output of combine_checkpoints.py, a local file or a Hub id.",
                               positional=True, card=True)
    base_model: str = option(DEFAULT_BASE_MODEL, "Base model (Hub id or folder).", card=True)
    quant8: bool = option(False, "Load the base model in 8 bits instead of 4-bit NF4.", exclusive="quant")
    noquant: bool = option(False, "No quantization: LoRA on the full-precision model.", exclusive="quant")
    full_finetune: bool = option(
        False, "Train every weight (no LoRA, no quantization; float32 weights, mixed precision on a GPU): for models "
        "that fit (about 16 bytes a parameter with AdamW, 10 with --optim adamw_8bit, plus activations; checked "
        "before loading). tuned_model is then a whole model folder.", card=True)
    train_embeddings: bool = option(
        False, "Train the input and output embeddings fully beside LoRA, at --embedding_learning_rate (peft "
        "modules_to_save; tied embeddings stay tied): what reaching a new language, or an extended vocabulary's "
        "new rows, takes. The adapter then holds both matrices.", card=True)
    new_rows_only: bool = option(
        False, "Train only the embedding rows an extended vocabulary added (extend_tokenizer.py), every other "
        "weight frozen (peft TrainableTokens; quantized as usual): the first stage of a two-stage recipe (EEVE). "
        "Then merge_adapter.py, and train the merged model with --train_embeddings or --full_finetune "
        "(docs/vocabulary.md).", card=True)
    embedding_learning_rate: float | None = option(
        None, "Learning rate of the embeddings with --train_embeddings or --full_finetune. Default: --learning_rate "
        "/ 4 with --train_embeddings (full-rank updates beside low-rank ones; unsloth advises 2-10x below the "
        "body's), --learning_rate with --full_finetune.", type=float, card=True)
    optim: str | None = option(
        None, "Optimizer, by transformers' name: adamw_torch (the default), adamw_8bit or paged_adamw_8bit "
        "(bitsandbytes, a quarter of AdamW's state: what full fine-tuning on a T4 needs), adafactor, sgd.",
        choices=OPTIMIZERS, card=True)
    max_seq_length: int = option(512, "Longest training sequence in tokens.", type=positive_int, card=True)
    num_train_epochs: float = option(2.0, "Epochs.", type=float, resumable=True, card=True)
    max_steps: int = option(-1, "Stop after this many optimizer steps (-1: run the epochs).", type=int,
                            show_default=False, resumable=True, card=True)
    batch_size: int = option(4, "Per-device batch size.", type=positive_int, card=True)
    gradient_accumulation_steps: int = option(1, "Batches per optimizer step.", type=positive_int, card=True)
    learning_rate: float = option(2e-4, "Peak learning rate.", type=float, card=True)
    lr_scheduler_type: str = option("cosine", "Learning-rate schedule (transformers' names: cosine, linear, "
                                              "constant, ...).", card=True)
    warmup_ratio: float = option(0.03, "Share of steps warming up.", type=float, card=True)
    lora_r: int = option(16, "LoRA rank.", type=positive_int, card=True)
    lora_alpha: int = option(32, "LoRA alpha.", type=positive_int, card=True)
    lora_dropout: float = option(0.05, "LoRA dropout.", type=float, card=True)
    target_modules: str = option("all-linear", "Modules given LoRA adapters: all-linear or a comma-separated list "
                                               "(q_proj,v_proj).", card=True)
    padding: str = option("right", "Padding side.", choices=["left", "right"])
    seed: int = option(42, "Seed for sampling, splits and training.", type=int, card=True)
    eval_steps: int | None = option(None, "Evaluate the validation split every N steps (default: at each save).",
                                    type=positive_int, resumable=True)
    save_steps: int = option(100, "Checkpoint every N steps.", type=positive_int, resumable=True)
    logging_steps: int = option(10, "Log the loss every N steps.", type=positive_int, resumable=True)
    report_to: str = option("none", "none, tensorboard, wandb...", resumable=True)
    output_dir: str | None = option(None, "Trainer checkpoints (default <tuned_model>-checkpoints). An interrupted "
                                          "run resumes from here.", resumable=True)
    gradient_checkpointing: bool = option(False, "Trade compute for memory: recompute activations in the backward "
                                                 "pass. Default: on for 4-/8-bit training on a GPU (a 7B model's "
                                                 "QLoRA peak: 6 GiB with it, 17 without; docs/BENCHMARKS.md), off "
                                                 "on CPU and with --noquant.", exclusive="checkpointing",
                                          resumable=True)
    no_gradient_checkpointing: bool = option(False, "Keep activations (faster where memory allows).",
                                             exclusive="checkpointing", resumable=True)
    cpu: bool = option(False, CPU_HELP, resumable=True)
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    overwrite: bool = option(False, "Replace an existing tuned_model folder and start again (its checkpoints too).",
                             resumable=True)
    hub: HubOptions = nested(HubOptions)
    hub_model_id: str | None = option(None, "Hub repo for --push_to_hub (default: tuned_model).", resumable=True)

    def __post_init__(self) -> None:
        if self.max_steps == 0 or self.max_steps < -1:
            raise UsageError("--max_steps must be positive, or -1 to run the epochs")
        if not self.num_train_epochs > 0:
            raise UsageError(f"--num_train_epochs must be positive, got {self.num_train_epochs}")
        if not 0.0 < self.learning_rate < 1.0:
            raise UsageError(f"--learning_rate must be in (0, 1), got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise UsageError("--warmup_ratio must be in [0, 1)")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise UsageError("--lora_dropout must be in [0, 1)")
        if self.embedding_learning_rate is not None and not (self.train_embeddings or self.full_finetune):
            raise UsageError("--embedding_learning_rate needs --train_embeddings or --full_finetune")
        if self.embedding_learning_rate is not None and not 0.0 < self.embedding_learning_rate < 1.0:
            raise UsageError(f"--embedding_learning_rate must be in (0, 1), got {self.embedding_learning_rate}")
        if self.new_rows_only and (self.train_embeddings or self.full_finetune):
            raise UsageError("--new_rows_only trains the new rows alone (the first stage); --train_embeddings and "
                             "--full_finetune are the second stage's: run them on the merged first stage")
        if self.full_finetune and self.quant8:
            raise UsageError("--full_finetune trains every weight in full precision: it cannot train an 8-bit model "
                             "(drop --quant8, or train LoRA)")

    @property
    def embedding_lr(self) -> float:
        if self.embedding_learning_rate is not None:
            return self.embedding_learning_rate
        return self.learning_rate if self.full_finetune else self.learning_rate / 4

    def inputs(self) -> tuple[str | None, ...]:
        """What the run reads: no output may be, contain or lie inside one of these."""
        return self.dataset_name, self.base_model

    @property
    def checkpoints_dir(self) -> str:
        return self.output_dir or f"{self.tuned_model.rstrip('/')}-checkpoints"

    def checkpointing(self, device: str) -> bool:
        """Gradient checkpointing: as asked, else on for quantized training on a GPU (as peft's k-bit default)."""
        if self.gradient_checkpointing or self.no_gradient_checkpointing:
            return self.gradient_checkpointing
        return device == "cuda" and self.quantized

    @property
    def quantized(self) -> bool:
        return not (self.noquant or self.full_finetune)

    @property
    def quantization(self) -> str:
        if self.full_finetune:
            return "none (full fine-tuning)"
        return "8-bit" if self.quant8 else "none" if self.noquant else "4-bit NF4 (QLoRA)"


@dataclass(kw_only=True)  # a positional after the defaults: kw_only lets the dataclass take it
class ChatTrainingConfig(TrainingConfig):
    """Training on conversations (SFT, DPO, ORPO): LLaMa2lang's third positional, the system prompt."""

    instruction_prompt: str = option(help="System prompt added to every thread, e.g. 'You are a generic chatbot that "
                                          "always answers in Dutch.'", positional=True, card=True)
    threads_output_name: str | None = option(None, "Also save the training threads here (a folder).", resumable=True)


@dataclass(kw_only=True)
class SFTOptions(ChatTrainingConfig):
    """finetune.py's flags."""

    packing: bool = option(False, "Pack several threads into each sequence of --max_seq_length (no padding).")
    packing_strategy: str = option(
        "bfd",
        "bfd: whole threads, attention kept within each thread (padding-free); "
        "wrapped: a continuous stream cut at --max_seq_length. See docs/BENCHMARKS.md.",
        choices=["bfd", "bfd_split", "wrapped"],
    )
    full_loss: bool = option(
        False, "Train on whole conversations (default: answers only, where the template marks them)."
    )
    raw_text: bool = option(
        False, "Continued pretraining: the dataset is plain target-language text (a .txt file, one passage a line, "
               "or the --raw_text_field column of a dataset), packed, the loss on every token; the instruction "
               "prompt is not used (give \"\").")
    raw_text_field: str = option("text", "With --raw_text: the dataset's text column.")


@dataclass
class PretrainOptions(TrainingConfig):
    """pretrain.py's flags: continued pretraining on plain target-language text (no prompt, no threads)."""

    text_field: str = option("text", "The dataset's text column (a .txt file is one passage a line).")
    val_fraction: float = option(0.0, "Share of the passages held out for validation.", type=float)
    streaming: bool = option(False, "Read the text as a stream, never whole (large files, Hub datasets); "
                                    "shuffled in a window; needs --max_steps.")
    mix: str | None = option(
        None, "Several text sources read as streams and mixed by share, e.g. 'pt_web.txt=0.8,en_wiki.jsonl=0.2' "
        "(target-language text plus a replay share of English against forgetting): the shares sum to 1 and the "
        "dataset is one of the sources; a smaller source is read again until the mix ends. Needs --max_steps.")
    val_passages: int = option(0, "With --streaming or --mix: the first N passages of each source held out for "
                                  "validation (never trained on).", type=int)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val_fraction must be in [0, 1), got {self.val_fraction}")
        if (self.streaming or self.mix) and self.max_steps < 0:
            raise UsageError(f"{'--mix' if self.mix else '--streaming'} reads the text as a stream, of no known "
                             "length: give --max_steps")
        if (self.streaming or self.mix) and self.val_fraction:
            raise UsageError("--val_fraction needs the whole text; with --streaming or --mix use --val_passages N")
        if self.val_passages and not (self.streaming or self.mix):
            raise UsageError("--val_passages holds out passages of a stream (--streaming or --mix); the whole text "
                             "takes --val_fraction")
        if self.val_passages < 0:
            raise UsageError(f"--val_passages must be 0 or more, got {self.val_passages}")
        self.mix_shares()

    def mix_shares(self) -> dict[str, float]:
        """{source: share}: --mix, else the dataset alone."""
        if not self.mix:
            return {self.dataset_name: 1.0}
        shares: dict[str, float] = {}
        for part in filter(None, (x.strip() for x in self.mix.split(","))):
            source, sep, share = part.rpartition("=")
            try:
                value = float(share)
            except ValueError:
                value = -1.0
            if not sep or not source or not 0 < value <= 1:
                raise UsageError(f"--mix {part!r}: expected SOURCE=SHARE with a share in (0, 1]")
            shares[source] = shares.get(source, 0.0) + value
        total = sum(shares.values())
        if abs(total - 1) > 1e-6:
            raise UsageError(f"--mix: the shares sum to {total:g}, not 1")
        from l2l.io import same_path

        if not any(same_path(self.dataset_name, source) for source in shares):
            raise UsageError(f"--mix: the dataset {self.dataset_name} is not one of its sources "
                             f"({', '.join(shares)})")
        return shares

    def inputs(self) -> tuple[str | None, ...]:
        return (*super().inputs(), *self.mix_shares())


@dataclass(kw_only=True)
class PreferenceOptions(ChatTrainingConfig):
    """finetune_dpo.py's and finetune_orpo.py's flags."""

    max_prompt_length: int = option(
        512, "Longest prompt in tokens: older turns of the history are dropped to fit.", type=positive_int
    )
    beta: float = option(0.1, "Preference strength.", type=float)
    adapter: str | None = option(
        None,
        "Start from this LoRA adapter (e.g. finetune.py's output): the usual "
        "SFT-then-preference pipeline. Default: a fresh LoRA.",
    )

    def inputs(self) -> tuple[str | None, ...]:
        return (*super().inputs(), self.adapter)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.adapter and self.full_finetune:
            raise UsageError("--full_finetune trains a whole model, not an adapter: merge --adapter into its base "
                             "first (merge_adapter.py) and give the merged folder as --base_model")
        if self.adapter and self.new_rows_only:
            raise UsageError("--new_rows_only starts a fresh first stage: it cannot continue --adapter (merge it "
                             "into its base first, or drop --new_rows_only)")
        if not self.beta > 0:
            raise UsageError(f"--beta must be positive, got {self.beta}")


def resumable_settings(cfg: TrainingConfig) -> tuple[str, ...]:
    """The settings a resumed run may change: option(..., resumable=True), Hub pushing (HubOptions) included."""
    return names_where(type(cfg), "resumable")


def flat_settings(*configs) -> dict:
    """All settings of some configs as one flat {name: value} dict (nested configs flattened), in the form they
    read back from the settings file (JSON values)."""
    out: dict = {}
    for cfg in configs:
        for key, value in dataclasses.asdict(cfg).items():
            if isinstance(value, dict):
                out.update(value)
            else:
                out[key] = value
    return json.loads(json.dumps(out, default=str))


def check_checkpoints(cfg: TrainingConfig, settings: dict) -> None:
    """Before anything slow or written: a checkpoint folder from a run with other settings is refused, naming
    the settings (unless --overwrite, which starts again)."""
    record = Path(cfg.checkpoints_dir) / SETTINGS_FILE
    if cfg.overwrite or not record.exists():
        return
    saved = json.loads(record.read_text(encoding="utf-8"))
    changed = differences(saved, settings, ignore=resumable_settings(cfg))
    if changed:
        shown = ", ".join(f"--{k} ({saved.get(k)!r} -> {settings.get(k)!r})" for k in changed[:4])
        raise UsageError(f"{cfg.checkpoints_dir} holds checkpoints of a run with other settings: {shown}"
                         f"{' and more' if len(changed) > 4 else ''}; run with the same settings to resume it, "
                         "or add --overwrite to start again")


def record_checkpoints(cfg: TrainingConfig, settings: dict, main_process: bool = True) -> None:
    """Just before training: --overwrite clears the old checkpoints; the settings are recorded beside them so
    that the next resume can be checked."""
    folder = Path(cfg.checkpoints_dir)
    if not main_process:
        return
    if cfg.overwrite and folder.exists() and any(folder.iterdir()):
        from l2l.io import remove_own

        log(f"--overwrite: removing the checkpoints of the earlier run in {folder}")
        remove_own(folder, "the checkpoint folder")
    elif not (folder / SETTINGS_FILE).exists() and any(folder.glob("checkpoint-*")):
        log(f"note: {folder} has checkpoints without a record of their settings; resuming from them")
    from l2l.io import atomic_write_json, mark_output

    folder.mkdir(parents=True, exist_ok=True)
    mark_output(folder, "training checkpoints")
    # without --overwrite: replayed as a run file (--config this file), the record resumes the run, never restarts it
    atomic_write_json(folder / SETTINGS_FILE, {k: v for k, v in settings.items() if k != "overwrite"})
