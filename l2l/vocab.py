"""Extending a BPE tokenizer with tokens learned from target-language text, and the model's embeddings with it.

The new tokens continue the base tokenizer's own BPE: every word of the text is first cut by the base tokenizer,
each base piece becomes one symbol, and `tokenizers`' BpeTrainer learns merges of those symbols. Each learned
merge (a, b) -> ab is appended to the base's merges (after all of them), so the base cuts a word exactly as
before and only then are its pieces joined: existing ids keep their strings (everything decodes as before) and
a new token decodes to the text of the pieces it joins. A new token's embedding row (and output row, when
untied) starts as the mean of its pieces' rows.

The output folder carries `l2l_vocab_extension.json`: which ids are new (finetune.py trains those rows)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from l2l.cli import UsageError

MARKER = "l2l_vocab_extension.json"
_FIRST_SYMBOL = 0xF0000  # Supplementary Private Use Area A: one symbol per base piece, never in real text
# never joined: byte-fallback pieces (the joined string would not decode) and digits (models cut numbers digit
# by digit on purpose)
_NO_JOIN = re.compile(r"^<0x[0-9A-Fa-f]{2}>$|[0-9]")


def check_extensible(tokenizer) -> dict:
    """The tokenizer.json of a fast BPE tokenizer, as a dict; one line for anything else."""
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError("the base model has no fast tokenizer (tokenizer.json): only a fast BPE tokenizer can be "
                         "extended here")
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = spec.get("model", {}).get("type")
    if kind != "BPE":
        raise UsageError(f"the base tokenizer is a {kind} model: only BPE tokenizers (Llama, Mistral, Qwen, SmolLM, "
                         "GPT-style) can be extended here")
    return spec


def word_counts(backend, texts) -> Counter:
    """Pre-tokenized words (as the base tokenizer's model sees them) and how often each occurs."""
    counts: Counter = Counter()
    for text in texts:
        norm = backend.normalizer.normalize_str(text) if backend.normalizer else text
        words = backend.pre_tokenizer.pre_tokenize_str(norm) if backend.pre_tokenizer else [(norm, None)]
        counts.update(w for w, _ in words)
    return counts


def base_pieces(backend, words) -> dict[str, list[str]]:
    return {w: [t.value for t in backend.model.tokenize(w)] for w in words}


def learn_merges(counts: Counter, pieces: dict[str, list[str]], n_merges: int) -> list[tuple[str, str]]:
    """BPE merges over the base pieces, most frequent pair first (tokenizers' BpeTrainer), as piece strings."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    symbol: dict[str, str] = {}
    for seq in pieces.values():
        for p in seq:
            if p not in symbol:
                symbol[p] = chr(_FIRST_SYMBOL + len(symbol))
    text_of = {s: p for p, s in symbol.items()}

    def encoded(word: str) -> str:  # pieces never joined become breaks
        return "".join(" " if _NO_JOIN.search(p) else symbol[p] for p in pieces[word])

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    alphabet = list(symbol.values())
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + n_merges, initial_alphabet=alphabet,
                                  limit_alphabet=len(alphabet), min_frequency=2, show_progress=False)
    lines = (" ".join([encoded(w)] * min(1000, c - i)) for w, c in counts.items() for i in range(0, c, 1000))
    tok.train_from_iterator(lines, trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    pairs = [m if isinstance(m, list) else m.split(" ", 1) for m in merges]
    return [("".join(text_of[c] for c in a), "".join(text_of[c] for c in b)) for a, b in pairs]


def extend_spec(spec: dict, merges: list[tuple[str, str]], n_new: int) -> tuple[dict, dict[int, list[int]], int]:
    """tokenizer.json with the merges appended until n_new new tokens exist; each new id with the ids of the
    base pieces it joins; and how many merges were used. A merge whose result the base already knows (under a
    different cut) joins to that existing token."""
    model = spec["model"]
    vocab = model["vocab"]
    next_id = 1 + max([*vocab.values(), *(t["id"] for t in spec.get("added_tokens", []))])
    as_strings = bool(model["merges"]) and isinstance(model["merges"][0], str)
    known = {tuple(m.split(" ", 1)) if as_strings else tuple(m) for m in model["merges"]}
    parts: dict[str, list[str]] = {}
    new: dict[int, list[int]] = {}
    used = 0
    for a, b in merges:
        if len(new) == n_new:
            break
        used += 1
        if (a, b) in known:
            continue
        if a + b not in vocab:
            parts[a + b] = parts.get(a, [a]) + parts.get(b, [b])
            vocab[a + b] = next_id
            new[next_id] = [vocab[p] for p in parts[a + b]]
            next_id += 1
        model["merges"].append(f"{a} {b}" if as_strings else [a, b])
        known.add((a, b))
    return spec, new, used


def init_new_rows(model, new: dict[int, list[int]], output_init: str = "first_piece", untie: bool = False) -> str:
    """Resize the embeddings and start each new row: its input row the mean of the rows of the base pieces it
    joins; its output row (an untied output layer) the first piece's row ("first_piece", as EEVE: the new token
    is then as likely as the piece it starts with, so generation can choose it) or the mean ("mean"). `untie`
    gives a tied model an output matrix of its own first. Returns what the output rows started as."""
    import torch

    emb = model.get_input_embeddings()
    rows = max(emb.weight.shape[0], max(new) + 1)
    if rows > emb.weight.shape[0]:
        model.resize_token_embeddings(rows, mean_resizing=False)
    inp = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    if untie and out is not None and out.weight.data_ptr() == inp.data_ptr():
        out.weight = torch.nn.Parameter(inp.detach().clone())
        model.config.tie_word_embeddings = False
        model.config.get_text_config().tie_word_embeddings = False
    tied = out is None or out.weight.data_ptr() == inp.data_ptr()
    with torch.no_grad():
        for i, parts in new.items():
            inp[i] = inp[parts].mean(0)
            if not tied:
                out.weight[i] = out.weight[parts[0]] if output_init == "first_piece" else out.weight[parts].mean(0)
    model.config.vocab_size = rows
    return "tied to the input rows (mean of the pieces)" if tied else (
        "the first piece's output row" if output_init == "first_piece" else "the mean of the pieces' output rows")


def extension_record(earlier: dict | None, base_model: str, learned_from: str, base_vocab_size: int,
                     new: dict[int, list[int]], tokens_per_word: dict, output_rows: str) -> dict:
    """The l2l_vocab_extension.json of an extended model. Extending an extended model adds to its record:
    base_model, base_vocab_size and new_token_ids stay relative to the original base (every id new against it
    is trained by finetune.py), and each extension is listed; output_rows (what init_new_rows returned) is the
    last extension's."""
    step = {"extended": base_model, "learned_from": learned_from, "new_token_ids": sorted(new),
            "tokens_per_word": tokens_per_word, "output_rows": output_rows}
    pieces = {str(i): parts for i, parts in sorted(new.items())}
    if earlier is None:
        return {"base_model": base_model, "learned_from": learned_from, "base_vocab_size": base_vocab_size,
                "new_token_ids": sorted(new), "pieces": pieces, "tokens_per_word": tokens_per_word,
                "output_rows": output_rows, "extensions": [step]}
    first = earlier.get("extensions") or [{k: earlier.get(k) for k in ("learned_from", "new_token_ids",
                                                                        "tokens_per_word")}]
    return {**earlier, "new_token_ids": sorted({*earlier.get("new_token_ids", []), *new}),
            "pieces": {**earlier.get("pieces", {}), **pieces},
            "tokens_per_word": {"before": earlier.get("tokens_per_word", {}).get("before"),
                                "after": tokens_per_word.get("after")},
            "output_rows": output_rows, "extensions": [*first, step]}


def write_marker(folder: Path, info: dict) -> None:
    (folder / MARKER).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def read_marker(model_dir: str) -> dict | None:
    """The extension record of a model folder (None for a model not extended here, or a Hub id)."""
    path = Path(model_dir) / MARKER
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path} is damaged ({e}): restore it from the extended model's folder") from None
    if not isinstance(record, dict) or not isinstance(record.get("new_token_ids"), list):
        raise UsageError(f"{path} is damaged: it lists no new_token_ids")
    return record


def report(counts: Counter, pieces: dict, tokenizer) -> float:
    """Tokens per word of the counted text under `tokenizer` (the base's pieces when it is None)."""
    words = sum(counts.values())
    if tokenizer is None:
        return sum(len(pieces[w]) * c for w, c in counts.items()) / max(1, words)
    model = tokenizer.backend_tokenizer.model
    return sum(len(model.tokenize(w)) * c for w, c in counts.items()) / max(1, words)
