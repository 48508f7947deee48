"""The checkpoint folder of a translation: self-describing JSON files written atomically.

    manifest.json                      what is being translated: dataset (name and content fingerprint), text
                                       fields, target language, --keep_source, split sizes
    chunk-<split>-<first>-<last>.json  translated records: header (split, translator, model, and the same
                                       identity as the manifest, count, indices) and the records, parallel to
                                       `indices`

A chunk is written to a temporary name and renamed, so a crash (even kill -9) leaves either the whole
chunk or none of it; leftover temporary files are removed on the next run. Which records are done is read
back from the chunks themselves, so a re-run continues exactly where the last one stopped, and several
shards, machines or translators can fill the same folder. Every chunk names what it belongs to, so a chunk of
another translation copied in is refused, and a lost manifest is rebuilt from the chunks.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l2l import __version__
from l2l.cli import UsageError
from l2l.io import OUTPUT_MARKER, atomic_write_json, same_path

MANIFEST = "manifest.json"
FORMAT = "l2l-translation-checkpoint"
CHUNK_RE = re.compile(r"^chunk-(?P<split>.+)-(?P<first>\d{9})-(?P<last>\d{9})(?:-(?P<seq>\d+))?\.json$")
TMP_RE = re.compile(r"^\..*\.tmp$")


class CorruptCheckpoint(UsageError):
    pass


@dataclass
class Chunk:
    path: Path
    header: dict
    indices: list[int]
    records: list[dict]
    checks: list | None = None  # per record, what the translation checks found as it was written (None: older)


def scan(folder: Path) -> list[Path]:
    """Chunk files in the folder; refuses a folder holding anything else (it is not ours)."""
    chunks = []
    if not folder.exists():
        return chunks
    if not folder.is_dir():
        raise UsageError(f"checkpoint location {folder} is a file, not a folder")
    for p in sorted(folder.iterdir()):
        if p.name in (MANIFEST, OUTPUT_MARKER) or TMP_RE.match(p.name):
            continue
        if p.is_file() and CHUNK_RE.match(p.name):
            chunks.append(p)
            continue
        hint = " (a LLaMa2lang checkpoint? combine it with the old tool first)" if p.name.startswith("upto") else ""
        raise UsageError(f"checkpoint folder {folder} holds a file that is not a checkpoint: {p.name}{hint}; "
                         "use an empty or new folder")
    return sorted(chunks, key=_order)


def _order(path: Path) -> tuple:
    """Split, range, then the order of writing: a range written again (-<time> suffix) comes after the first."""
    m = CHUNK_RE.match(path.name)
    return m["split"], int(m["first"]), int(m["last"]), int(m["seq"] or 0)


STALE_AFTER_S = 600


def remove_temporaries(folder: Path, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove the half-written files a killed run left behind. Only old ones: a checkpoint is written in
    well under a second, and a younger temporary file may belong to another shard's worker writing into the
    same folder right now (removing it made that worker fail)."""
    import time

    n, now = 0, time.time()
    for p in folder.glob(".*.tmp"):
        try:
            if now - p.stat().st_mtime < older_than_s:
                continue
            p.unlink()
        except FileNotFoundError:
            continue
        n += 1
    return n


def read_chunk(path: Path) -> Chunk:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt: not a {FORMAT} file")
    indices, records = data.get("indices"), data.get("records")
    if (not isinstance(indices, list) or not isinstance(records, list) or len(indices) != len(records)
            or data.get("count") != len(records) or not all(isinstance(i, int) for i in indices)):
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt: counts of indices and records disagree")
    checks = data.get("checks")
    if checks is not None and (not isinstance(checks, list) or len(checks) != len(records)):
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt: counts of records and checks disagree")
    header = {k: v for k, v in data.items() if k not in ("indices", "records", "checks")}
    return Chunk(path, header, indices, records, checks)


def read_all(folder: Path) -> list[Chunk]:
    return [read_chunk(p) for p in scan(folder)]


# What a chunk shares with its folder's manifest: a chunk that differs in one of these is another translation's.
# Besides, a chunk's dataset_fingerprint is its split's, which the manifest keeps in split_fingerprints.
IDENTITY = ("target_language", "text_fields", "keep_source")


def identity_difference(header: dict, manifest: dict, split: str | None = None) -> str | None:
    """The first thing a chunk header and the manifest (or another header) both say and disagree on, described;
    else None. `split`: the chunk's, whose fingerprint the manifest lists."""
    from l2l.languages import same_language

    for key in IDENTITY:
        if key == "target_language" and same_language(str(header.get(key, "")), str(manifest.get(key, ""))):
            continue  # one language, tagged by two backends (nl, nl-Latn)
        if key in header and key in manifest and header[key] != manifest[key]:
            return f"{key} {header[key]!r}, the folder's {manifest[key]!r}"
    mine = header.get("dataset_fingerprint")
    theirs = (manifest.get("split_fingerprints") or {}).get(split) if split else manifest.get("dataset_fingerprint")
    if mine and theirs:
        return None if mine == theirs else f"dataset_fingerprint {mine!r}, the folder's {theirs!r}"
    if not same_path(header.get("dataset"), manifest.get("dataset")):  # written before fingerprints
        return f"dataset {header.get('dataset')!r}, the folder's {manifest.get('dataset')!r}"
    return None


def check_chunk(chunk: Chunk, manifest: dict, folder: Path) -> None:
    """A chunk belongs to the folder's translation and to its dataset's size; one line naming it when not."""
    split = chunk.header["split"]
    why = identity_difference(chunk.header, manifest, split)
    size = (manifest.get("split_sizes") or {}).get(split)
    if why is None and manifest.get("split_sizes") and size is None:
        why = f"split {split!r}, which the folder's dataset does not have"
    if why is None and size is not None and any(not 0 <= i < size for i in chunk.indices):
        why = f"records past the end of split {split!r} ({size} records)"
    if why:
        raise UsageError(f"checkpoint {chunk.path.name} belongs to another translation ({why}); move it out of "
                         f"{folder}")


def manifest_from_chunks(chunks: list[Chunk], folder: Path) -> dict | None:
    """A lost manifest, rebuilt from the chunk headers (which all name their translation); None without chunks.
    Chunks that disagree among themselves are refused: which one is the folder's cannot be known."""
    if not chunks:
        return None
    first = chunks[0].header
    rebuilt = {k: first[k] for k in ("dataset", *IDENTITY, "lang_field") if k in first}
    rebuilt["split_fingerprints"], rebuilt["split_sizes"] = {}, {}
    for chunk in chunks:
        split, h = chunk.header["split"], chunk.header
        known = rebuilt["split_fingerprints"].get(split)
        if h.get("dataset_fingerprint") and first.get("dataset_fingerprint"):  # same settings; per split, same rows
            why = identity_difference({**h, "dataset_fingerprint": None}, {**first, "dataset": h.get("dataset")})
            if why is None and known and known != h["dataset_fingerprint"]:
                why = f"split {split!r} of two different datasets"
        else:
            why = identity_difference(h, first)
        if why:
            raise UsageError(f"checkpoint folder {folder} has no {MANIFEST} and holds chunks of different "
                             f"translations ({chunks[0].path.name} and {chunk.path.name}: {why}); move the "
                             "foreign ones out")
        if h.get("dataset_fingerprint"):
            rebuilt["split_fingerprints"][split] = h["dataset_fingerprint"]
        if h.get("split_size"):
            rebuilt["split_sizes"][split] = h["split_size"]
    return {k: v for k, v in rebuilt.items() if v != {}}


def load(folder: Path) -> tuple[dict | None, list[Chunk]]:
    """The folder's manifest (rebuilt from the chunks when it was lost) and its chunks, each checked against
    it; chunks in the order they were written."""
    chunks = read_all(folder)
    manifest = read_manifest(folder) or manifest_from_chunks(chunks, folder)
    for chunk in chunks:
        check_chunk(chunk, manifest, folder)
    return manifest, sorted(chunks, key=written_order)


def written_order(chunk: Chunk) -> tuple:
    """When a chunk was written: its nanosecond stamp; chunks written before stamps by creation time, then name."""
    return (chunk.header.get("written_ns") or 0, str(chunk.header.get("created", "")), _order(chunk.path))


def covered(chunks: list[Chunk]) -> dict[str, set[int]]:
    """Which record indices of each split are already translated."""
    done: dict[str, set[int]] = {}
    for chunk in chunks:
        done.setdefault(chunk.header["split"], set()).update(chunk.indices)
    return done


def write_chunk(folder: Path, split: str, indices: list[int], records: list[dict], meta: dict[str, Any],
                checks: list | None = None) -> Path:
    if not indices:
        raise ValueError("empty chunk")
    name = f"chunk-{split}-{min(indices):09d}-{max(indices):09d}.json"
    path = folder / name
    if path.exists():  # same range again (another shard or run): never overwrite finished work
        name = f"chunk-{split}-{min(indices):09d}-{max(indices):09d}-{int(time.time() * 1e6)}.json"
        path = folder / name
    payload = {"format": FORMAT, "version": 1, "tool_version": __version__, "split": split,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "written_ns": time.time_ns(), **meta,
               "count": len(records), "indices": indices, "records": records,
               **({"checks": checks} if checks is not None else {})}
    atomic_write_json(path, payload)
    return path


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptCheckpoint(f"checkpoint manifest {path} is corrupt: {e}") from e


def write_manifest(folder: Path, manifest: dict) -> None:
    atomic_write_json(folder / MANIFEST, {"format": FORMAT, "version": 1, **manifest})


def dataset_fingerprint(data) -> str:
    """A digest of one split's content (every row and column, in order): the same name and size with other
    content is another dataset."""
    import hashlib

    digest = hashlib.sha256(f"{len(data)}\0{','.join(data.column_names)}\0".encode())
    for start in range(0, len(data), 20000):
        digest.update(json.dumps(data[start:start + 20000], sort_keys=True, default=str, ensure_ascii=False).encode())
    return digest.hexdigest()[:32]


def merged_manifest(manifest: dict | None, identity: dict) -> dict:
    """The manifest after a run: its splits and the run's (a run of one --split adds that split), the run's
    identity otherwise (a folder from before fingerprints gets them once its dataset was checked)."""
    old = manifest or {}
    return {**old, **identity, "split_sizes": {**old.get("split_sizes", {}), **identity["split_sizes"]},
            "split_fingerprints": {**old.get("split_fingerprints", {}), **identity["split_fingerprints"]},
            "dataset": old.get("dataset", identity["dataset"])}
