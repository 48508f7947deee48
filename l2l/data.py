"""Loading datasets from anywhere users keep them, and recognising their format.

A dataset is a Hub id or a local file or folder (json, jsonl, parquet, csv, arrow, or a `save_to_disk`
folder). It always comes back as a DatasetDict, all splits.

Formats: OASST message trees (text + lang per message), alpaca-like rows (instruction/input/output),
dolly (instruction/context/response), ShareGPT `conversations` ({from, value}) and `messages`
({role, content}) conversations, and preference rows (prompt/chosen/rejected).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from l2l.cli import UsageError
from l2l.shapes import resolve_text_fields, turn_text_key

_BUILDERS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow",
             ".tsv": "csv"}


def _reason(e: BaseException) -> str:
    """The most specific message in an exception chain ("JSON parse error ... in row 1", not "an error
    occurred while generating the dataset"), on one line."""
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _non_empty_lines(path: Path, enough: int) -> int:
    """How many non-blank lines the file has, counting no further than `enough` (large files are not read
    through: this runs on every load)."""
    n = 0
    with path.open("rb") as f:
        for line in f:
            n += bool(line.strip())
            if n >= enough:
                break
    return n


def _check_local(spec: str, path: Path) -> None:
    """Local inputs that datasets would answer with a puzzle: an empty file, a folder without data files."""
    if path.is_file() and not _non_empty_lines(path, 1):
        raise UsageError(f"dataset {spec} is empty")
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv") and _non_empty_lines(path, 2) < 2:
        raise UsageError(f"dataset {spec} has a header but no records")
    if path.is_dir() and not (path / "dataset_dict.json").exists() and not (path / "state.json").exists():
        if not any(p.suffix.lower() in _BUILDERS for p in path.rglob("*") if p.is_file()):
            raise UsageError(f"dataset folder {spec} holds no data files ({', '.join(sorted(_BUILDERS))}) and is "
                             "not a save_to_disk folder")


def _explain(spec: str, path: Path, e: BaseException) -> str:
    """One line for a dataset that did not load: the bad line of a JSON Lines file, the offline Hub."""
    import os

    if path.is_file() and path.suffix.lower() == ".jsonl":
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            try:
                if line.strip():
                    json.loads(line)
            except json.JSONDecodeError as bad:
                return f"cannot read dataset {spec}, line {n}: not JSON ({bad.msg})"
    if not path.exists() and os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0"):
        return (f"cannot read dataset {spec}: it is not a local file or folder, and the Hub is off "
                f"(HF_HUB_OFFLINE is set) and has no cached copy; give a local file or folder instead")
    return f"cannot read dataset {spec}: {_reason(e)}"


def load_any(spec: str, *, split: str | None = None, trust_remote_code: bool = False):
    """Load `spec` as a DatasetDict. Raises UsageError with a one-line reason when it cannot."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # its errors reach the user as our one line
    path = Path(spec)
    _check_local(spec, path)
    try:
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            ds = datasets.load_from_disk(str(path))
        elif path.is_file():
            builder = _BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise UsageError(f"cannot read dataset {spec}: unknown file type {path.suffix!r} "
                                 f"(use {', '.join(sorted(_BUILDERS))})")
            kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
            ds = datasets.load_dataset(builder, data_files=str(path), **kwargs)
        elif path.is_dir():
            ds = datasets.load_dataset(str(path))
        elif spec.startswith((".", "/", "~")) or path.suffix.lower() in _BUILDERS:
            raise UsageError(f"cannot read dataset {spec}: no such file or folder")
        else:
            kwargs = {"trust_remote_code": True} if trust_remote_code else {}
            ds = datasets.load_dataset(spec, **kwargs)
    except UsageError:
        raise
    except Exception as e:  # datasets raises many types; the user needs the reason, not a traceback
        raise UsageError(_explain(spec, path, e)) from e
    if isinstance(ds, datasets.Dataset):
        ds = datasets.DatasetDict({"train": ds})
    if split is not None:
        if split not in ds:
            raise UsageError(f"dataset {spec} has no split {split!r} (splits: {', '.join(ds)})")
        ds = datasets.DatasetDict({split: ds[split]})
    if not len(ds):
        raise UsageError(f"dataset {spec} has no splits")
    if not any(len(d) for d in ds.values()):
        raise UsageError(f"dataset {spec} has no records")
    return ds


def read_jsonl(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every non-empty line of a JSON Lines file; a line that is not JSON stops the
    run with one line naming it."""
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{what} {path}, line {n}: not JSON ({e.msg})") from e


def read_text(path: str | Path, what: str = "the text file") -> str:
    """A UTF-8 text file whole; one line of error for a missing or binary one."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{what} {path}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{what} {path} is not UTF-8 text (byte {e.start} cannot be read)") from None
    if "\x00" in text:
        raise UsageError(f"{what} {path} is not text (it holds NUL bytes)")
    return text


def read_lines(path: str, what: str = "the text file") -> list[str]:
    """The non-empty lines of a UTF-8 text file, stripped; one line of error for a missing, binary or empty one."""
    lines = [line.strip() for line in read_text(path, what).splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"{what} {path} is empty")
    return lines


def read_texts(spec: str, fields: str | None, limit: int, trust_remote_code: bool) -> tuple[list[str], str | None]:
    """Texts to learn from (at most `limit`): the lines of a .txt file, or the `fields` (default: detected) of
    any dataset, message contents of conversations included; and the dataset's majority `lang`, if any."""
    if Path(spec).suffix == ".txt":
        return read_lines(spec)[:limit], None
    from collections import Counter

    texts, langs = [], Counter()
    for data in load_any(spec, trust_remote_code=trust_remote_code).values():
        cols = resolve_text_fields(data.column_names, fields, spec)
        for row in data:
            langs[row.get("lang")] += 1
            for c in cols:
                value = row[c]
                if isinstance(value, list):
                    texts += [t[turn_text_key(t)] for t in value if isinstance(t, dict) and turn_text_key(t)]
                elif isinstance(value, str) and value.strip():
                    texts.append(value)
            if len(texts) >= limit:
                break
    lang = next((k for k, _ in langs.most_common() if isinstance(k, str) and k), None)
    return texts[:limit], lang


def _check_text_start(path: Path, size: int = 1 << 16) -> None:
    """A text file to stream: there, and its first bytes UTF-8 text (the rest is read as it comes)."""
    if not path.is_file():
        raise UsageError(f"the text file {path}: no such file")
    with path.open("rb") as f:
        head = f.read(size)
    if b"\x00" in head:
        raise UsageError(f"the text file {path} is not text (it holds NUL bytes)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not a character cut at the window's end
            raise UsageError(f"the text file {path} is not UTF-8 text (byte {e.start} cannot be read)") from None
    if not head.strip():
        raise UsageError(f"the text file {path} is empty")


def stream_texts(spec: str, field: str, trust_remote_code: bool = False):
    """An IterableDataset of {"text"} read as a stream, never whole: the lines of a .txt file, the `field` of a
    JSON/JSONL/CSV/parquet file or a Hub dataset (its train split), or of a save_to_disk folder (memory-mapped).
    A source that cannot be read fails here, in one line, before training starts."""
    import datasets

    path = Path(spec)
    if path.suffix == ".txt":
        _check_text_start(path)

        def lines():
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.strip():
                        yield {"text": line.strip()}

        return datasets.IterableDataset.from_generator(lines)
    _check_local(spec, path)
    try:
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            data = load_any(spec)
            data = data["train"] if "train" in data else data[next(iter(data))]
            stream = data.to_iterable_dataset()
        elif path.is_file():
            builder = _BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise UsageError(f"cannot read {spec}: unknown file type {path.suffix!r}")
            stream = datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
        else:
            kwargs = {"trust_remote_code": True} if trust_remote_code else {}
            stream = datasets.load_dataset(spec, split="train", streaming=True, **kwargs)
        first = next(iter(stream))
    except UsageError:
        raise
    except StopIteration:
        raise UsageError(f"{spec} holds no text") from None
    except Exception as e:
        raise UsageError(_explain(spec, path, e)) from e
    if not isinstance(first.get(field), str):
        raise UsageError(f"{spec} has no text column {field!r} (columns: {', '.join(first)}); use --text_field")
    return stream.map(lambda row: {"text": row[field]}, remove_columns=list(first)).filter(
        lambda row: isinstance(row["text"], str) and bool(row["text"].strip()))
