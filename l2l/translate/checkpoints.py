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
from l2l.io import OUTPUT_MARKER, atomic_write_json

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
    header = {k: v for k, v in data.items() if k not in ("indices", "records")}
    return Chunk(path, header, indices, records)


def read_all(folder: Path) -> list[Chunk]:
    return [read_chunk(p) for p in scan(folder)]


# What a chunk shares with its folder's manifest: a chunk that differs in one of these is another translation's.
IDENTITY = ("dataset_fingerprint", "target_language", "text_fields", "keep_source")


def identity_difference(header: dict, manifest: dict) -> str | None:
    """The first identity key a chunk header and the manifest both hold and disagree on, described; else None."""
    from l2l.languages import same_language

    for key in IDENTITY:
        if key == "target_language" and same_language(str(header.get(key, "")), str(manifest.get(key, ""))):
            continue  # one language, tagged by two backends (nl, nl-Latn)
        if key in header and key in manifest and header[key] != manifest[key]:
            return f"{key} {header[key]!r}, the folder's {manifest[key]!r}"
    if "dataset_fingerprint" not in header or "dataset_fingerprint" not in manifest:
        if header.get("dataset") != manifest.get("dataset"):  # chunks written before fingerprints
            return f"dataset {header.get('dataset')!r}, the folder's {manifest.get('dataset')!r}"
    return None


def check_chunk(chunk: Chunk, manifest: dict, folder: Path) -> None:
    """A chunk belongs to the folder's translation and to its dataset's size; one line naming it when not."""
    why = identity_difference(chunk.header, manifest)
    size = (manifest.get("split_sizes") or {}).get(chunk.header["split"])
    if why is None and manifest.get("split_sizes") and size is None:
        why = f"split {chunk.header['split']!r}, which the folder's dataset does not have"
    if why is None and size is not None and any(not 0 <= i < size for i in chunk.indices):
        why = f"records past the end of split {chunk.header['split']!r} ({size} records)"
    if why:
        raise UsageError(f"checkpoint {chunk.path.name} belongs to another translation ({why}); move it out of "
                         f"{folder}")


def manifest_from_chunks(chunks: list[Chunk], folder: Path) -> dict | None:
    """A lost manifest, rebuilt from the chunk headers (which all name their translation); None without chunks.
    Chunks that disagree among themselves are refused: which one is the folder's cannot be known."""
    if not chunks:
        return None
    first = chunks[0].header
    for chunk in chunks[1:]:
        why = identity_difference(chunk.header, first)
        if why:
            raise UsageError(f"checkpoint folder {folder} has no {MANIFEST} and holds chunks of different "
                             f"translations ({chunks[0].path.name} and {chunk.path.name}: {why}); move the "
                             "foreign ones out")
    keys = ("dataset", *IDENTITY, "lang_field", "split_sizes")
    return {k: first[k] for k in keys if k in first}


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


def write_chunk(folder: Path, split: str, indices: list[int], records: list[dict], meta: dict[str, Any]) -> Path:
    if not indices:
        raise ValueError("empty chunk")
    name = f"chunk-{split}-{min(indices):09d}-{max(indices):09d}.json"
    path = folder / name
    if path.exists():  # same range again (another shard or run): never overwrite finished work
        name = f"chunk-{split}-{min(indices):09d}-{max(indices):09d}-{int(time.time() * 1e6)}.json"
        path = folder / name
    payload = {"format": FORMAT, "version": 1, "tool_version": __version__, "split": split,
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "written_ns": time.time_ns(), **meta,
               "count": len(records), "indices": indices, "records": records}
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


def dataset_fingerprint(splits: dict) -> str:
    """A digest of a dataset's content (every split, row and column, in order): the same name and size with
    other content is another dataset."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(splits):
        data = splits[name]
        digest.update(f"{name}\0{len(data)}\0{','.join(data.column_names)}\0".encode())
        for start in range(0, len(data), 20000):
            digest.update(json.dumps(data[start:start + 20000], sort_keys=True, default=str,
                                     ensure_ascii=False).encode())
    return digest.hexdigest()[:32]
