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
from pathlib import Path

from l2l.cli import Parser, UsageError, add_cpu_arg, add_trust_remote_code_arg, positive_int, run

HELP = "Type a message. :n starts a new thread, :q quits."


def build_parser() -> Parser:
    p = Parser(prog="run_inference.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_name", help="An adapter folder or Hub id (its base model is read from the adapter config) "
                                      "or a full model.")
    p.add_argument("instruction_prompt", help="System prompt, e.g. 'You are a chatbot that always answers in Dutch.'")
    p.add_argument("input", nargs="?", default=None, help="A message: print the answer and exit.")
    p.add_argument("--input_file", default=None,
                   help="A .txt file (one prompt a line) or JSONL (prompt/input/instruction text, or messages) "
                        "to answer.")
    p.add_argument("--output_file", default=None, help="JSONL answers for --input_file, one line per input, in order.")
    p.add_argument("--thread_template", default=None,
                   help="Chat template (llama3, llama2, chatml, phi3, tokenizer or a file). Default: the model's own.")
    p.add_argument("--base_model", default=None, help="Override the adapter's base model.")
    p.add_argument("--quant4", action="store_true", help="Load the base model in 4 bits.")
    add_cpu_arg(p, help="Use the CPU even when a GPU is available.")
    p.add_argument("--max_new_tokens", type=positive_int, default=512, help="Default 512.")
    p.add_argument("--temperature", type=float, default=0.7, help="0 for greedy decoding. Default 0.7.")
    p.add_argument("--top_p", type=float, default=0.9, help="Default 0.9.")
    p.add_argument("--repetition_penalty", type=float, default=1.0, help="Default 1.0.")
    p.add_argument("--seed", type=int, default=None, help="Make sampling reproducible.")
    p.add_argument("--batch_size", type=positive_int, default=8, help="Prompts per generate call with --input_file.")
    add_trust_remote_code_arg(p)
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
    args = build_parser().parse_args(argv)
    if args.input_file and not args.output_file:
        raise UsageError("--input_file needs --output_file")
    if args.input is not None and not args.input.strip():
        raise UsageError("the message is empty")
    if args.input is not None and args.input_file:
        raise UsageError("give either an input or --input_file, not both")
    if not 0 < args.top_p <= 1:
        raise UsageError("--top_p must be in (0, 1]")
    if args.output_file:  # before the model loads and answers: never lose the work at the last step
        from l2l.io import check_apart, check_writable

        check_writable(args.output_file, folder=False, flag="--output_file")
        check_apart(args.output_file, args.input_file, args.model_name)
    inputs = read_inputs(Path(args.input_file)) if args.input_file else None
    from l2l.inference import ChatModel, GenerationOptions

    options = GenerationOptions(args.max_new_tokens, args.temperature, args.top_p, args.repetition_penalty, args.seed)
    chat = ChatModel(args.model_name, cpu=args.cpu, quant4=args.quant4, thread_template=args.thread_template,
                     base_model=args.base_model, trust_remote_code=args.trust_remote_code)
    system = [{"role": "system", "content": args.instruction_prompt}] if args.instruction_prompt else []
    if args.input is not None:
        print(chat.answer([system + [{"role": "user", "content": args.input}]], options)[0])
        return 0
    if inputs is not None:
        return answer_file(chat, inputs, system, options, args)
    return chat_loop(chat, system, options, interactive=sys.stdin.isatty())


def answer_file(chat, inputs, system, options, args) -> int:
    from tqdm import tqdm

    from l2l.io import atomic_write_text

    lines = []
    with tqdm(total=len(inputs), unit="prompt", desc="answer") as bar:
        for b in range(0, len(inputs), args.batch_size):
            batch = inputs[b:b + args.batch_size]
            answers = chat.answer([system + conv for _, conv in batch], options)
            for (src, _), ans in zip(batch, answers):
                lines.append(json.dumps({"input": src, "answer": ans}, ensure_ascii=False))
            bar.update(len(batch))
    Path(args.output_file).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.output_file), "\n".join(lines) + "\n")
    print(args.output_file)
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
