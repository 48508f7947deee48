"""What the datasets people translate and train on look like, in one place: the known formats and their text
fields, conversation turns, roles, and OASST message trees read into conversations.

OASST message trees: from every root prompter message follow the best-ranked reply (lowest rank; a missing
rank counts as worst; ties go to the earliest in dataset order) down to a leaf. Deleted messages and messages
that failed review are dropped where those columns exist. A thread alternates user/assistant, ends on an
assistant turn, and a root without a reply gives nothing. Parents are indexed to children once: linear time.

Other formats: alpaca (instruction + input -> user, output -> assistant), dolly (instruction + context ->
user, response -> assistant), ShareGPT `conversations` and `messages` conversations.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from l2l.cli import UsageError
from l2l.config import option

CONVERSATION_TEXT_KEYS = ("value", "content", "text")


CONVERSATION_ROLE_KEYS = ("from", "role")


def is_conversation(value: Any) -> bool:
    """A list of turns: dicts holding a text under value/content/text."""
    return isinstance(value, list) and all(
        isinstance(t, dict) and any(k in t for k in CONVERSATION_TEXT_KEYS) for t in value)


def turn_text_key(turn: dict) -> str | None:
    return next((k for k in CONVERSATION_TEXT_KEYS if k in turn), None)


# Auto-detection, first match wins: (required columns, text fields).
KNOWN_FORMATS = [
    ("oasst", {"text", "message_id", "parent_id"}, ["text"]),
    ("alpaca", {"instruction", "output"}, ["instruction", "input", "output"]),
    ("dolly", {"instruction", "response"}, ["instruction", "context", "response"]),
    ("sharegpt", {"conversations"}, ["conversations"]),
    ("messages", {"messages"}, ["messages"]),
    ("preference", {"prompt", "chosen", "rejected"}, ["prompt", "chosen", "rejected"]),
    ("text", {"text"}, ["text"]),
]


def detect_format(columns: list[str]) -> tuple[str, list[str]] | None:
    cols = set(columns)
    for name, required, fields in KNOWN_FORMATS:
        if required <= cols:
            return name, [f for f in fields if f in cols]
    return None


def resolve_text_fields(columns: list[str], requested: str | None, dataset: str) -> list[str]:
    """The columns to translate: the user's comma-separated list, checked, or the detected format's."""
    if requested:
        fields = [f.strip() for f in requested.split(",") if f.strip()]
        missing = [f for f in fields if f not in columns]
        if missing:
            raise UsageError(f"dataset {dataset} has no column {missing[0]!r} (columns: {', '.join(columns)})")
        return fields
    found = detect_format(columns)
    if found is None:
        raise UsageError(f"cannot tell which columns of {dataset} to translate (columns: {', '.join(columns)}); "
                         "name them with --base_dataset_text_field, e.g. instruction,input,output")
    return found[1]


def check_text_columns(splits: dict, fields: list[str], dataset: str) -> None:
    """Each column to translate holds text (strings, or conversations of turns): numbers or a column with no
    values at all are named here, not met later as a table that does not combine."""
    from datasets import Sequence, Value

    for split, data in splits.items():
        for name in fields:
            feature = data.features.get(name)
            text = isinstance(feature, Value) and feature.dtype in ("string", "large_string")
            turns = isinstance(feature, (list, Sequence)) or type(feature).__name__ in ("List", "LargeList")
            if not (text or turns):
                kind = getattr(feature, "dtype", type(feature).__name__)
                what = "no values (every row is null)" if kind == "null" else f"{kind} values, not text"
                raise UsageError(f"column {name!r} of {dataset} (split {split}) holds {what}; choose the columns "
                                 "to translate with --base_dataset_text_field")


ROLE_MAP = {"prompter": "user", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
            "bot": "assistant", "model": "assistant", "system": "system"}


@dataclass
class Fields:
    """The columns of OASST-style message trees."""

    text: str = option("text", "Column with the message text.", flag="--base_dataset_text_field")
    rank: str = option("rank", "Column with a reply's rank (lower is better).", flag="--base_dataset_rank_field")
    id: str = option("message_id", "Column with the message id.", flag="--base_dataset_id_field")
    parent: str = option("parent_id", "Column with the parent id.", flag="--base_dataset_parent_field")
    role: str = option("role", "Column with the author role (prompter/assistant).", flag="--base_dataset_role_field")


def rank_of(value) -> float:
    return math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def is_usable(row: dict) -> bool:
    return row.get("deleted") is not True and row.get("review_result") is not False


def index_tree(rows: list[dict], f: Fields) -> tuple[list[int], dict]:
    """Roots (positions) and parent id -> child positions, in dataset order; unusable messages left out."""
    roots, children = [], defaultdict(list)
    for pos, row in enumerate(rows):
        if not is_usable(row):
            continue
        parent = row.get(f.parent)
        if parent is None or parent == "":
            roots.append(pos)
        else:
            children[parent].append(pos)
    return roots, children


def record_units(rows: list[dict], columns: list[str], f: Fields) -> list[str]:
    """What each row belongs to when a dataset is split: its message tree (OASST) or itself."""
    if detect(columns, f) != "oasst":
        return [str(i) for i in range(len(rows))]
    parent = {row.get(f.id): row.get(f.parent) for row in rows}
    units = []
    for row in rows:
        node, seen = row.get(f.id), set()
        while parent.get(node) not in (None, "") and node not in seen:
            seen.add(node)
            node = parent[node]
        units.append(str(node))
    return units


def oasst_threads(rows: list[dict], f: Fields, text_field: str | None = None) -> list[dict]:
    """Best-ranked path of every tree: [{'id': root id, 'messages': [{role, content}, ...]}]."""
    text_field = text_field or f.text
    roots, children = index_tree(rows, f)
    threads = []
    for root in roots:
        if ROLE_MAP.get(rows[root].get(f.role)) != "user":
            continue
        turns, pos, want = [], root, "user"
        while True:
            text = rows[pos].get(text_field)
            if not isinstance(text, str) or not text.strip():
                break
            turns.append({"role": want, "content": text})
            want = "assistant" if want == "user" else "user"
            kids = [c for c in children.get(rows[pos][f.id], ()) if ROLE_MAP.get(rows[c].get(f.role)) == want]
            if not kids:
                break
            pos = min(kids, key=lambda c: (rank_of(rows[c].get(f.rank)), c))
        while turns and turns[-1]["role"] != "assistant":
            turns.pop()
        if turns:
            threads.append({"id": str(rows[root][f.id]), "messages": turns})
    return threads


def _join(*parts) -> str:
    return "\n\n".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def row_conversation(row: dict, fmt: str, fields: dict) -> list[dict] | None:
    """One non-tree row as user/assistant turns, or None when it has no answer."""
    if fmt == "alpaca":
        user = _join(row.get(fields["instruction"]), row.get(fields.get("input", "input")))
        answer = row.get(fields["output"])
    elif fmt == "dolly":
        user = _join(row.get(fields["instruction"]), row.get(fields.get("context", "context")))
        answer = row.get(fields["response"])
    else:
        value = row.get(fields["conversation"])
        if not is_conversation(value):
            return None
        turns = []
        for t in value:
            role = ROLE_MAP.get(str(t.get("role", t.get("from", ""))).lower())
            text = t.get(turn_text_key(t))
            if role is None or not isinstance(text, str):
                continue
            if role == "system":
                continue  # the instruction prompt takes the system place
            if turns and turns[-1]["role"] == role:  # merge repeated roles to keep alternation
                turns[-1]["content"] = _join(turns[-1]["content"], text)
            else:
                turns.append({"role": role, "content": text})
        while turns and turns[0]["role"] != "user":
            turns.pop(0)
        while turns and turns[-1]["role"] != "assistant":
            turns.pop()
        return turns or None
    if not user or not isinstance(answer, str) or not answer.strip():
        return None
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def detect(columns: list[str], f: Fields) -> str:
    if {f.text, f.id, f.parent, f.role} <= set(columns):
        return "oasst"
    found = detect_format(columns)
    if found is None or found[0] not in ("alpaca", "dolly", "sharegpt", "messages"):
        raise UsageError(f"cannot build threads from columns {', '.join(columns)}: expected OASST message trees "
                         f"({f.text}, {f.id}, {f.parent}, {f.role}), alpaca, dolly, ShareGPT or messages rows")
    return found[0]


def conversations(rows: list[dict], columns: list[str], f: Fields, source: bool = False) -> list[dict]:
    """Threads of any supported format. source=True builds them from the kept originals (<field>_source)."""
    fmt = detect(columns, f)
    suffix = "_source" if source else ""
    if fmt == "oasst":
        if source and f"{f.text}_source" not in columns:
            return []
        return oasst_threads(rows, f, f.text + suffix)
    names = {"alpaca": {"instruction": "instruction", "input": "input", "output": "output"},
             "dolly": {"instruction": "instruction", "context": "context", "response": "response"},
             "sharegpt": {"conversation": "conversations"}, "messages": {"conversation": "messages"}}[fmt]
    fields = {k: v + suffix for k, v in names.items()}
    if source and not all(v in columns for v in fields.values() if not v.startswith(("input", "context"))):
        return []
    out = []
    for i, row in enumerate(rows):
        turns = row_conversation(row, fmt, fields)
        if turns:
            out.append({"id": str(row.get("id", i)), "messages": turns})
    return out
