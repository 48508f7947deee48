"""Preference pairs from OASST ranks, for DPO and ORPO.

For every prompter message at any depth, on any branch, with the conversation that leads to it as history,
the best-ranked reply (lowest rank; ties go to the earliest) is chosen and every other ranked reply with a
worse rank is rejected: one pair per rejected reply. Unranked, deleted and review-failed replies take no
part, a message with a single ranked reply gives no pair, and replies ranked equal to the chosen one give none
either (a tie states no preference). Rows are conversational (prompt, chosen and rejected are lists of
messages) so trl applies the chat template, end-of-turn token included, to both completions.
"""

from __future__ import annotations

from l2l.cli import UsageError
from l2l.shapes import ROLE_MAP, Fields, index_tree, is_conversation, is_usable, rank_of

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def _history(rows: list[dict], pos: int, by_id: dict, f: Fields, text_field: str) -> list[dict] | None:
    """The turns from the root down to rows[pos], or None when the chain is broken or does not alternate."""
    chain = []
    seen = set()
    while pos is not None:
        if pos in seen:
            return None  # a cycle in corrupt data
        seen.add(pos)
        chain.append(pos)
        parent = rows[pos].get(f.parent)
        if parent is None or parent == "":
            break
        pos = by_id.get(parent)
        if pos is None:
            return None  # an ancestor was deleted or is missing
    turns = []
    for p in reversed(chain):
        role = ROLE_MAP.get(rows[p].get(f.role))
        text = rows[p].get(text_field)
        if role not in ("user", "assistant") or not isinstance(text, str) or (turns and turns[-1]["role"] == role):
            return None
        turns.append({"role": role, "content": text})
    return turns if turns and turns[0]["role"] == "user" else None


def oasst_pairs(rows: list[dict], f: Fields, text_field: str | None = None) -> list[dict]:
    text_field = text_field or f.text
    _, children = index_tree(rows, f)
    by_id = {row[f.id]: pos for pos, row in enumerate(rows) if is_usable(row)}
    pairs = []
    for pos, row in enumerate(rows):
        if not is_usable(row) or ROLE_MAP.get(row.get(f.role)) != "user":
            continue
        replies = [c for c in children.get(row[f.id], ())
                   if ROLE_MAP.get(rows[c].get(f.role)) == "assistant" and rank_of(rows[c].get(f.rank)) != float("inf")
                   and isinstance(rows[c].get(text_field), str)]
        if len(replies) < 2:
            continue
        best = min(replies, key=lambda c: (rank_of(rows[c].get(f.rank)), c))
        history = _history(rows, pos, by_id, f, text_field)
        if history is None:
            continue
        for c in replies:
            if c == best or rank_of(rows[c].get(f.rank)) == rank_of(rows[best].get(f.rank)):
                continue
            pairs.append({"id": f"{row[f.id]}:{rows[c][f.id]}", "prompt": history,
                          "chosen": [{"role": "assistant", "content": rows[best][text_field]}],
                          "rejected": [{"role": "assistant", "content": rows[c][text_field]}]})
    return pairs


def preference_rows(rows: list[dict], columns: list[str], f: Fields, system_prompt: str | None) -> list[dict]:
    """Pairs from OASST trees, or rows already in prompt/chosen/rejected form, used as they are."""
    if set(PREFERENCE_COLUMNS) <= set(columns):
        out = []
        for i, row in enumerate(rows):
            item = {"id": str(row.get("id", i)), **{k: row[k] for k in PREFERENCE_COLUMNS}}
            if not all(isinstance(item[k], str) or is_conversation(item[k]) for k in PREFERENCE_COLUMNS):
                raise UsageError(f"row {i}: prompt, chosen and rejected must be texts or lists of messages")
            out.append(item)
        return out
    if not {f.text, f.id, f.parent, f.role, f.rank} <= set(columns):
        raise UsageError(f"cannot build preference pairs from columns {', '.join(columns)}: expected OASST message "
                         f"trees with ranks ({f.text}, {f.id}, {f.parent}, {f.role}, {f.rank}) "
                         "or prompt/chosen/rejected rows")
    pairs = oasst_pairs(rows, f)
    if system_prompt:
        for p in pairs:
            p["prompt"] = [{"role": "system", "content": system_prompt}] + p["prompt"]
    return pairs


def shortest_prompt(prompt: list[dict]) -> list[dict]:
    """What fit_prompt keeps at the least: the system prompt and the last user turn."""
    return ([prompt[0]] if prompt and prompt[0]["role"] == "system" else []) + prompt[-1:]


def fit_prompt(pair: dict, count_tokens, max_prompt_length: int | None) -> dict | None:
    """Drop the oldest history turns (never the system prompt or the last user turn) until the prompt fits."""
    if not max_prompt_length or not is_conversation(pair["prompt"]):
        return pair
    prompt = list(pair["prompt"])
    system = [prompt.pop(0)] if prompt and prompt[0]["role"] == "system" else []
    while True:
        if count_tokens(system + prompt) <= max_prompt_length:
            return {**pair, "prompt": system + prompt}
        if len(prompt) <= 1:
            return None
        prompt = prompt[2:] if len(prompt) > 2 else prompt[-1:]  # drop a user/assistant exchange
