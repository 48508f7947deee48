"""python -m threads DATASET OUTPUT --base_model M --instruction_prompt P [flags]: write training threads."""

from __future__ import annotations

import argparse

from l2l.cli import Parser, add_hub_args, add_trust_remote_code_arg, log, run

from .args import add_thread_arguments, thread_options


def build_parser() -> Parser:
    p = Parser(prog="python -m threads", description="Build training conversations (threads) from a translated "
               "dataset and save them (save_to_disk) without training.")
    p.add_argument("dataset", help="The translated dataset: output of combine_checkpoints.py, a local file or a Hub id.")
    p.add_argument("output", help="Folder to save the threads to (or a Hub repo id with --push_to_hub).")
    p.add_argument("--base_model", required=True, help="The model the threads are for (its tokenizer renders them).")
    p.add_argument("--instruction_prompt", default=None,
                   help="System prompt opening every thread, e.g. 'You are a chatbot that always answers in Dutch.'")
    p.add_argument("--seed", type=int, default=42, help="Seed for sampling and splits. Default 42.")
    add_trust_remote_code_arg(p)
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    p.add_argument("--preference", action="store_true",
                   help="Write DPO/ORPO preference pairs (prompt/chosen/rejected from OASST ranks) instead of threads.")
    p.add_argument("--max_prompt_length", type=int, default=None,
                   help="With --preference: drop the oldest turns of longer prompts (in tokens).")
    add_thread_arguments(p)
    add_hub_args(p, "threads")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from l2l.io import check_output_free, save_dataset
    from l2l.modeling import load_tokenizer

    from .make import build_pairs, make, pairs_dataset

    if not args.push_to_hub:
        check_output_free(args.output, args.overwrite)
    opts = thread_options(args, args.dataset)
    opts.validate()
    tokenizer = load_tokenizer(args.base_model, trust_remote_code=args.trust_remote_code)
    if args.preference:
        from . import templates

        counter = prompt_counter(tokenizer, templates.load(opts.thread_template, tokenizer))
        dsd = pairs_dataset(build_pairs(opts, counter, args.max_prompt_length))
    else:
        dsd, _ = make(opts, tokenizer)
    print(save_dataset(dsd, args.output, push_to_hub=args.push_to_hub, private=args.private, overwrite=args.overwrite))
    log("columns: " + ", ".join(next(iter(dsd.values())).column_names))
    return 0


def prompt_counter(tokenizer, template: str):
    """Tokens of a conversational prompt rendered with the chat template (generation prompt included)."""
    def count(messages: list[dict]) -> int:
        return len(tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True,
                                                 add_generation_prompt=True, return_dict=True)["input_ids"])
    return count


if __name__ == "__main__":
    run(main)
