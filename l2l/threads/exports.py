"""Threads and preference pairs as the files other trainers read (their documented dataset shapes):

- messages: OpenAI-style {"messages": [{"role", "content"}, ...]}: axolotl `type: chat_template`, LLaMA-Factory
  (sharegpt formatting with OpenAI tags), unsloth/TRL as they are;
- sharegpt: {"conversations": [{"from": "system"|"human"|"gpt", "value"}, ...]}: axolotl (with
  field_messages/message_property_mappings), LLaMA-Factory's default sharegpt, unsloth's standardize_sharegpt;
- alpaca: {"instruction", "input", "output", "system", "history": [[user, assistant], ...]}: LLaMA-Factory's
  alpaca, axolotl's alpaca types (single-turn threads).

Preference pairs: messages {"messages": prompt, "chosen": message, "rejected": message} (axolotl's
chat_template.default DPO, LLaMA-Factory ranking with OpenAI tags); sharegpt {"conversations", "chosen",
"rejected"} and alpaca {"instruction", "input", "chosen", "rejected", "system", "history"}: LLaMA-Factory's
ranking formats. TRL and unsloth DPO/ORPO read the default `datasets` output (prompt/chosen/rejected) directly.

Each split goes to OUTPUT/<split>.jsonl, with OUTPUT/dataset_info.json: LLaMA-Factory's entries for them."""

from __future__ import annotations

import json
from pathlib import Path

from l2l.cli import UsageError

FORMATS = ("datasets", "messages", "sharegpt", "alpaca")
SHAREGPT_ROLE = {"system": "system", "user": "human", "assistant": "gpt"}
OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
               "system_tag": "system"}


def _sharegpt(messages: list[dict]) -> list[dict]:
    return [{"from": SHAREGPT_ROLE[m["role"]], "value": m["content"]} for m in messages]


def _alpaca(messages: list[dict]) -> dict:
    """System, earlier (user, assistant) turns as history, and the last user message."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) % 2 == 0:  # a whole thread: its last turn is the answer
        turns = turns[:-1]
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 1, 2)]
    return {"instruction": turns[-1]["content"], "input": "", "system": system, "history": history}


def thread_row(messages: list[dict], fmt: str) -> dict:
    if fmt == "messages":
        return {"messages": messages}
    if fmt == "sharegpt":
        return {"conversations": _sharegpt(messages)}
    return {**_alpaca(messages), "output": messages[-1]["content"]}


def _as_messages(value, role: str) -> list[dict]:
    return [{"role": role, "content": value}] if isinstance(value, str) else list(value)


def pair_row(pair: dict, fmt: str) -> dict:
    prompt = _as_messages(pair["prompt"], "user")
    chosen, rejected = (_as_messages(pair[k], "assistant")[-1] for k in ("chosen", "rejected"))
    if fmt == "messages":
        return {"messages": prompt, "chosen": chosen, "rejected": rejected}
    if fmt == "sharegpt":
        return {"conversations": _sharegpt(prompt), "chosen": _sharegpt([chosen])[0],
                "rejected": _sharegpt([rejected])[0]}
    return {**_alpaca(prompt), "chosen": chosen["content"], "rejected": rejected["content"]}


def llamafactory_entry(fmt: str, file_name: str, preference: bool) -> dict:
    """A dataset_info.json entry that LLaMA-Factory reads the file with."""
    entry = {"file_name": file_name, "ranking": True} if preference else {"file_name": file_name}
    if fmt == "alpaca":
        cols = {"prompt": "instruction", "query": "input", "system": "system", "history": "history"}
        cols |= {"chosen": "chosen", "rejected": "rejected"} if preference else {"response": "output"}
        return entry | {"columns": cols}
    cols = {"messages": "messages" if fmt == "messages" else "conversations"}
    cols |= {"chosen": "chosen", "rejected": "rejected"} if preference else {}
    entry |= {"formatting": "sharegpt", "columns": cols}
    return entry | ({"tags": OPENAI_TAGS} if fmt == "messages" else {})


def write_files(items: dict[str, list[dict]], location: str, fmt: str, preference: bool, overwrite: bool) -> str:
    """Every split as OUTPUT/<split>.jsonl plus dataset_info.json, written whole or not at all."""
    from l2l.io import building, check_output_free

    check_output_free(location, overwrite)
    target = Path(location)
    name = target.name or "l2l"
    with building(target, "thread files") as tmp:
        info = {}
        for split, rows in items.items():
            convert = pair_row if preference else thread_row
            lines = [json.dumps(convert(r if preference else r["messages"], fmt), ensure_ascii=False) for r in rows]
            (tmp / f"{split}.jsonl").write_text("".join(x + "\n" for x in lines), encoding="utf-8")
            info[f"{name}_{split}"] = llamafactory_entry(fmt, f"{split}.jsonl", preference)
        (tmp / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return str(target)


def check_format(fmt: str, push_to_hub: bool) -> None:
    if fmt != "datasets" and push_to_hub:
        raise UsageError(f"--output_format {fmt} writes files to a folder; --push_to_hub takes the datasets format")
