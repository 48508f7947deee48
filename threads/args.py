"""Thread-building flags, shared by `python -m threads`, finetune.py, finetune_dpo.py and finetune_orpo.py."""

from __future__ import annotations

import argparse

from .build import TASK_PROMPT, Fields
from .make import ThreadOptions
from .templates import NAMES


def add_thread_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("threads")
    g.add_argument("--base_dataset_text_field", default="text", help="Column with the message text. Default text.")
    g.add_argument("--base_dataset_rank_field", default="rank", help="Column with a reply's rank (lower is better). Default rank.")
    g.add_argument("--base_dataset_id_field", default="message_id", help="Column with the message id. Default message_id.")
    g.add_argument("--base_dataset_parent_field", default="parent_id", help="Column with the parent id. Default parent_id.")
    g.add_argument("--base_dataset_role_field", default="role", help="Column with the author role (prompter/assistant). Default role.")
    g.add_argument("--thread_template", default=None,
                   help=f"Chat template: {', '.join(NAMES)} (the base model's own) or a Jinja file. Default llama3 "
                        "(DPO/ORPO with --adapter: the template saved with the adapter).")
    g.add_argument("--english_fraction", type=float, default=0.0,
                   help="Share of untranslated (English) threads to mix in against forgetting, e.g. 0.1.")
    g.add_argument("--source_dataset", default=None,
                   help="The untranslated dataset for --english_fraction (default: the <field>_source columns "
                        "kept by translate.py --keep_source).")
    g.add_argument("--english_instruction_prompt", default=None,
                   help="System prompt for the English threads (default: none).")
    g.add_argument("--translation_task_fraction", type=float, default=0.0,
                   help="Add this share of bilingual tasks (translate a text source->target and back).")
    g.add_argument("--translation_task_prompt", default=TASK_PROMPT,
                   help="User message of a translation task, with {source}, {target} and {text}.")
    g.add_argument("--val_fraction", type=float, default=0.0, help="Create a validation split of this share when missing.")
    g.add_argument("--test_fraction", type=float, default=0.0, help="Create a test split of this share when missing.")
    g.add_argument("--max_samples", type=int, default=None, help="Use a seeded subset of this many training threads.")


def thread_options(args: argparse.Namespace, dataset: str) -> ThreadOptions:
    return ThreadOptions(
        dataset=dataset, instruction_prompt=args.instruction_prompt,
        fields=Fields(text=args.base_dataset_text_field, rank=args.base_dataset_rank_field,
                      id=args.base_dataset_id_field, parent=args.base_dataset_parent_field,
                      role=args.base_dataset_role_field),
        thread_template=args.thread_template or "llama3", english_fraction=args.english_fraction,
        source_dataset=args.source_dataset, english_instruction_prompt=args.english_instruction_prompt,
        translation_task_fraction=args.translation_task_fraction, translation_task_prompt=args.translation_task_prompt,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction, max_samples=args.max_samples,
        seed=args.seed, trust_remote_code=args.trust_remote_code)
