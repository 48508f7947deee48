#!/usr/bin/env python
"""Chat with a tuned model: one answer, a chat loop, or a file of prompts.

    python run_inference.py model_name "instruction prompt" "question"      # prints the answer and exits
    python run_inference.py model_name "instruction prompt"                 # chat loop (:n new thread, :q quit)
    echo "question" | python run_inference.py model_name "instruction prompt"
    python run_inference.py model_name "instruction prompt" --input_file prompts.jsonl --output_file answers.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, UsageError, positive_int, run
from l2l.config import add_arguments, from_args, nested, option
from l2l.inference import GenerationOptions

HELP = "Type a message. :n starts a new thread, :q quits."


@dataclass(kw_only=True)
class InferenceOptions:
    """run_inference.py's settings."""

    model_name: str = option(
        help="An adapter folder or Hub id (its base model is read from the adapter config) or a full model.",
        positional=True,
    )
    instruction_prompt: str = option(
        help="System prompt, e.g. 'You are a chatbot that always answers in Dutch.'", positional=True
    )
    input: str | None = option(None, "A message: print the answer and exit.", nargs="?", positional=True)
    input_file: str | None = option(
        None, "A .txt file (one prompt a line) or JSONL (prompt/input/instruction text, or messages) to answer."
    )
    output_file: str | None = option(None, "JSONL answers for --input_file, one line per input, in order.")
    overwrite: bool = option(False, "Replace an existing --output_file.")
    thread_template: str | None = option(
        None, "Chat template (llama3, llama2, chatml, phi3, tokenizer or a file). Default: the model's own."
    )
    base_model: str | None = option(None, "Override the adapter's base model.")
    quant4: bool = option(False, "Load the base model in 4 bits.")
    cpu: bool = option(False, "Use the CPU even when a GPU is available.")
    generation: GenerationOptions = nested(GenerationOptions)
    batch_size: int = option(8, "Prompts per generate call with --input_file.", type=positive_int)
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)


def build_parser() -> Parser:
    p = Parser(prog="run_inference.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, InferenceOptions)
    return p


def read_inputs(path: Path) -> list[tuple[object, list[dict]]]:
    """(what to echo, the conversation without system prompt) for every line of a .txt or JSONL file."""
    if not path.is_file():
        raise UsageError(f"--input_file {path}: no such file")
    from l2l.data import read_jsonl

    if path.suffix.lower() not in (".jsonl", ".json"):
        return [(line, [{"role": "user", "content": line}])
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = []
    for n, obj in read_jsonl(path, "--input_file"):
        if isinstance(obj, dict) and isinstance(obj.get("messages"), list):
            items.append((obj, [m for m in obj["messages"] if m.get("role") != "system"]))
            continue
        text = next((obj[k] for k in ("prompt", "input", "instruction", "text") if isinstance(obj, dict)
                     and isinstance(obj.get(k), str)), obj if isinstance(obj, str) else None)
        if text is None:
            raise UsageError(f"--input_file {path}, line {n}: expected prompt, input, instruction, text or messages")
        items.append((obj, [{"role": "user", "content": text}]))
    return items


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(InferenceOptions, build_parser().parse_args(argv))
    if cfg.input_file and not cfg.output_file:
        raise UsageError("--input_file needs --output_file")
    if cfg.input is not None and not cfg.input.strip():
        raise UsageError("the message is empty")
    if cfg.input is not None and cfg.input_file:
        raise UsageError("give either an input or --input_file, not both")
    if cfg.output_file:  # before the model loads and answers: never lose the work at the last step
        from l2l.io import check_file_free

        check_file_free(cfg.output_file, cfg.overwrite, flag="--output_file",
                        inputs=(cfg.input_file, cfg.model_name, cfg.base_model, cfg.thread_template))
    inputs = read_inputs(Path(cfg.input_file)) if cfg.input_file else None
    from l2l.inference import ChatModel

    options = cfg.generation
    chat = ChatModel(cfg.model_name, cpu=cfg.cpu, quant4=cfg.quant4, thread_template=cfg.thread_template,
                     base_model=cfg.base_model, trust_remote_code=cfg.trust_remote_code)
    system = [{"role": "system", "content": cfg.instruction_prompt}] if cfg.instruction_prompt else []
    if cfg.input is not None:
        print(chat.answer([system + [{"role": "user", "content": cfg.input}]], options)[0])
        return 0
    if inputs is not None:
        return answer_file(chat, inputs, system, options, cfg)
    return chat_loop(chat, system, options, interactive=sys.stdin.isatty())


def answer_file(chat, inputs, system, options, cfg) -> int:
    from tqdm import tqdm

    from l2l.io import atomic_write_text

    lines = []
    with tqdm(total=len(inputs), unit="prompt", desc="answer") as bar:
        for b in range(0, len(inputs), cfg.batch_size):
            batch = inputs[b:b + cfg.batch_size]
            answers = chat.answer([system + conv for _, conv in batch], options)
            for (src, _), ans in zip(batch, answers):
                lines.append(json.dumps({"input": src, "answer": ans}, ensure_ascii=False))
            bar.update(len(batch))
    Path(cfg.output_file).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(cfg.output_file), "\n".join(lines) + "\n")
    print(cfg.output_file)
    return 0


def chat_loop(chat, system, options, interactive: bool) -> int:
    """A thread kept across turns. On a terminal answers stream as they are generated; piped input gets one
    answer per line."""
    thread: list[dict] = []
    if interactive:
        print(HELP)
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            break
        text = line.strip()
        if not text:
            continue
        if text == ":q":
            break
        if text == ":n":
            thread = []
            if interactive:
                print("(new thread)")
            continue
        thread.append({"role": "user", "content": text})
        if interactive:
            answer = chat.answer([system + thread], options, streamer=chat.streamer())[0]
        else:
            answer = chat.answer([system + thread], options)[0]
            print(answer, flush=True)
        thread.append({"role": "assistant", "content": answer})
    return 0


if __name__ == "__main__":
    run(main)
