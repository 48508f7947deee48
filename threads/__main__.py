"""python -m threads DATASET OUTPUT --base_model M --instruction_prompt P [flags]: write training threads."""

from __future__ import annotations

from dataclasses import dataclass

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, UsageError, log, run
from l2l.config import HubOptions, add_arguments, from_args, nested, option
from l2l.threads.args import add_thread_arguments, thread_options
from l2l.threads.exports import FORMATS, check_format


@dataclass
class BuildConfig:
    """`python -m threads`'s own flags; the thread-building ones are ThreadOptions'."""

    dataset: str = option(help="The translated dataset: output of combine_checkpoints.py, a local file or a Hub id.",
                          positional=True)
    output: str = option(help="Folder to save the threads to (or a Hub repo id with --push_to_hub).", positional=True)
    base_model: str | None = option(None, "The model the threads are for (its tokenizer renders them; needed by "
                                          "the datasets format and --max_prompt_length).")
    instruction_prompt: str | None = option(None, "System prompt opening every thread, e.g. 'You are a chatbot that "
                                                  "always answers in Dutch.'")
    seed: int = option(42, "Seed for sampling and splits.", type=int)
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)
    overwrite: bool = option(False, "Replace an existing output folder.")
    preference: bool = option(False, "Write DPO/ORPO preference pairs (prompt/chosen/rejected from OASST ranks) "
                                     "instead of threads.")
    max_prompt_length: int | None = option(None, "With --preference: drop the oldest turns of longer prompts "
                                                 "(in tokens).", type=int)
    output_format: str = option("datasets", "datasets (save_to_disk, for our trainers and TRL), or JSONL files for "
                                "other trainers: messages (OpenAI), sharegpt or alpaca, with a LLaMA-Factory "
                                "dataset_info.json.", choices=FORMATS)
    hub: HubOptions = nested(HubOptions)

    def __post_init__(self) -> None:
        if self.max_prompt_length is not None and self.max_prompt_length <= 0:
            raise UsageError("--max_prompt_length must be positive")
        check_format(self.output_format, self.hub.push_to_hub)
        if self.base_model is None and (self.output_format == "datasets" or self.max_prompt_length):
            need = "--max_prompt_length" if self.max_prompt_length else "the datasets output format"
            raise UsageError(f"--base_model is required for {need} (its tokenizer renders or counts the threads)")


def build_parser() -> Parser:
    p = Parser(prog="python -m threads", description="Build training conversations (threads) from a translated "
               "dataset and save them (save_to_disk) without training.")
    add_arguments(p, BuildConfig)
    add_thread_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = from_args(BuildConfig, args)
    opts = thread_options(args, cfg.dataset)
    from l2l import templates
    from l2l.io import check_output_free, save_dataset
    from l2l.modeling import load_tokenizer
    from l2l.threads.make import build_pairs, make, pairs_dataset

    if not cfg.hub.push_to_hub:
        check_output_free(cfg.output, cfg.overwrite, inputs=(cfg.dataset, opts.source_dataset, cfg.base_model))
    if cfg.output_format != "datasets":
        return write_other_format(cfg, opts)
    tokenizer = load_tokenizer(cfg.base_model, trust_remote_code=cfg.trust_remote_code)
    if cfg.preference:
        counter = templates.prompt_counter(tokenizer, templates.load(opts.template, tokenizer))
        dsd = pairs_dataset(build_pairs(opts, counter, cfg.max_prompt_length))
    else:
        dsd, _ = make(opts, tokenizer)
    print(save_dataset(dsd, cfg.output, push_to_hub=cfg.hub.push_to_hub, private=cfg.hub.private,
                       overwrite=cfg.overwrite))
    log("columns: " + ", ".join(next(iter(dsd.values())).column_names))
    return 0


def write_other_format(cfg: BuildConfig, opts) -> int:
    """Threads or pairs as JSONL files in another trainer's shape (no tokenizer needed unless counting)."""
    from l2l.threads.exports import write_files
    from l2l.threads.make import build_pairs, build_threads

    counter = None
    if cfg.max_prompt_length:
        from l2l import templates
        from l2l.modeling import load_tokenizer

        tokenizer = load_tokenizer(cfg.base_model, trust_remote_code=cfg.trust_remote_code)
        counter = templates.prompt_counter(tokenizer, templates.load(opts.template, tokenizer))
    items = build_pairs(opts, counter, cfg.max_prompt_length) if cfg.preference else build_threads(opts)
    print(write_files(items, cfg.output, cfg.output_format, cfg.preference, cfg.overwrite))
    log(f"{cfg.output_format} JSONL: " + ", ".join(f"{k}.jsonl ({len(v)})" for k, v in items.items())
        + " and dataset_info.json (LLaMA-Factory)")
    return 0


if __name__ == "__main__":
    run(main, prog="python -m threads")
