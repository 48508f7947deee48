"""Writing results: atomic files and folders, datasets to disk or (only when asked) to the Hub."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from l2l.cli import UsageError, first_line, log


def _ordinary_mode(folder: bool) -> int:
    """The permissions a plain new file or folder gets under the current umask (mkstemp/mkdtemp use 0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _ordinary_mode(folder=False))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False))


def temp_dir_beside(target: Path) -> Path:
    """A temporary folder next to `target` (same filesystem, so a rename finishes the write), with the
    permissions of an ordinary new folder. Leftovers of an earlier write of the same target that was killed
    are removed first (writers of one target run one at a time: the CTranslate2 cache holds a lock)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in [*target.parent.glob(f".{target.name}.*.tmp"), target.with_name(f".{target.name}.old")]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    tmp.chmod(_ordinary_mode(folder=True))
    return tmp


@contextlib.contextmanager
def exclusive(path: Path):
    """Hold an exclusive lock on `path` (created if missing) across processes: one of several workers that
    want to build the same cached file does it while the others wait, then find it built. A no-op where
    the platform has no fcntl."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_dir(tmp: Path, target: Path) -> None:
    """Put a finished folder in place of `target` (which may exist)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


# ------------------------------------------------------------------------------ outputs the toolkit owns
OUTPUT_MARKER = ".l2l_output.json"
# files only this toolkit writes: folders made before the marker existed are recognised by them
_OWN_FILES = ("l2l_training_settings.json", "training_summary.json")


def mark_output(folder: Path, kind: str) -> None:
    """Say that `folder` was made by this toolkit: --overwrite may replace it later (and only such folders)."""
    from l2l import __version__

    atomic_write_json(Path(folder) / OUTPUT_MARKER, {"tool": "l2l", "version": __version__, "kind": kind})


def is_own(folder: Path) -> bool:
    """An empty folder, or one this toolkit made (its marker, or a file only it writes)."""
    folder = Path(folder)
    return not any(folder.iterdir()) or any((folder / name).is_file() for name in (OUTPUT_MARKER, *_OWN_FILES))


def check_replaceable(location: str | Path, flag: str = "output") -> None:
    """--overwrite replaces only what this toolkit wrote: a non-empty folder without its marker is the user's."""
    folder = Path(location)
    if folder.is_dir() and not is_own(folder):
        example = sorted(p.name for p in folder.iterdir())[0]
        raise UsageError(f"{flag} {location} holds files this toolkit did not write (such as {example}) and no "
                         f"{OUTPUT_MARKER}; --overwrite replaces only the toolkit's own outputs: move them away or "
                         "choose another folder")


def remove_own(location: str | Path, flag: str = "output") -> None:
    """Delete a folder this toolkit made (refusing any other, see check_replaceable)."""
    check_replaceable(location, flag)
    shutil.rmtree(location)


class DiskFull(OSError):
    """No space left while writing `filename`: reported in one line, exit 1 (l2l.cli.run)."""

    def __init__(self, path: str | Path):
        import errno

        super().__init__(errno.ENOSPC, "No space left on device", str(path))


@contextlib.contextmanager
def disk_full_names(path: str | Path):
    """A full disk inside the block, whichever library raised it, becomes DiskFull naming `path` (the output
    the user gave), so l2l.cli.run reports it in one line."""
    from l2l.cli import is_disk_full

    try:
        yield
    except Exception as e:
        if is_disk_full(e) and getattr(e, "filename", None) != str(path):
            raise DiskFull(path) from e
        raise


@contextlib.contextmanager
def building(target: str | Path, kind: str):
    """A folder built beside `target`, marked as the toolkit's and put in its place whole when the block ends;
    on any error the half-built folder is removed, and a full disk (whatever library raised it) is DiskFull
    naming the target."""
    target = Path(target)
    tmp = temp_dir_beside(target)
    with disk_full_names(target):
        try:
            yield tmp
            mark_output(tmp, kind)
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


# ------------------------------------------------------------------------------ inputs and outputs apart
def same_path(a: str | Path | None, b: str | Path | None) -> bool:
    """Two spellings of one file or folder (or of one Hub id): the same string, or paths that resolve alike."""
    if a == b:
        return True
    pa, pb = Path(a or "").expanduser(), Path(b or "").expanduser()
    return bool(a and b) and pa.exists() and pb.exists() and pa.resolve() == pb.resolve()

def discovered_inputs(spec: str | Path) -> list[Path]:
    """The local paths a command reads through `spec` besides it: the base model an adapter folder names in its
    adapter_config.json (and that base's own base, and so on)."""
    found: list[Path] = []
    current = Path(spec).expanduser()
    while len(found) < 8 and (current / "adapter_config.json").is_file():
        try:
            base = json.loads((current / "adapter_config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            break
        base = base.get("base_model_name_or_path") if isinstance(base, dict) else None
        if not isinstance(base, str) or not Path(base).expanduser().exists():
            break
        current = Path(base).expanduser()
        found.append(current)
    return found


def check_apart(output: str, *inputs: str | Path | None) -> None:
    """Refuse an output that is, contains, or lies inside one of the inputs, or one the command finds through
    them (an adapter's base model): writing it would replace, delete or bury the input (--overwrite does not
    change that). Inputs that are not local paths (Hub ids) are ignored."""
    out = Path(output).expanduser().resolve()
    for spec in inputs:
        if spec is None or not Path(spec).expanduser().exists():
            continue
        for path, via in [(Path(spec).expanduser(), None)] + [(p, spec) for p in discovered_inputs(spec)]:
            inp = path.resolve()
            how = "is" if out == inp else "contains" if inp.is_relative_to(out) else \
                "lies inside" if out.is_relative_to(inp) else None
            if how:
                what = f"the base model {path} of the adapter {via}" if via else f"the input {spec}"
                raise UsageError(f"the output {output} {how} {what}; choose an output outside it")


def check_writable(location: str | Path, folder: bool, flag: str = "output") -> None:
    """Refuse, before any work, an output that cannot be written where it is: a folder given for a file, a file
    given for a folder, or a path below an existing file."""
    path = Path(location)
    if folder and path.is_file():
        raise UsageError(f"{flag} {location} is a file, not a folder")
    if not folder and path.is_dir():
        raise UsageError(f"{flag} {location} is a folder, not a file")
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise UsageError(f"{flag} {location} cannot be created: {blocked} is a file")


def check_output_free(location: str, overwrite: bool, inputs: tuple = (), flag: str = "output") -> None:
    """Refuse to replace an existing file or non-empty folder unless asked to (and then only a folder this
    toolkit made), and any output that is, contains or lies inside an input."""
    check_apart(location, *inputs)
    check_writable(location, folder=True, flag=flag)
    target = Path(location)
    occupied = target.is_file() or (target.is_dir() and any(target.iterdir()))
    if occupied and not overwrite:
        raise UsageError(f"{flag} {location} already exists; pass --overwrite to replace it")
    if occupied:
        check_replaceable(target, flag)


def check_file_free(location: str, overwrite: bool, inputs: tuple = (), flag: str = "output") -> None:
    """The same for an output file: apart from the inputs, writable, and replaced only with --overwrite."""
    check_apart(location, *inputs)
    check_writable(location, folder=False, flag=flag)
    if Path(location).exists() and not overwrite:
        raise UsageError(f"{flag} {location} already exists; pass --overwrite to replace it")


def save_dataset(dataset, location: str, *, push_to_hub: bool = False, private: bool = False,
                 overwrite: bool = False) -> str:
    """Save a Dataset/DatasetDict with save_to_disk (atomically) or push it to the Hub when asked."""
    if push_to_hub:
        token = os.environ.get("HF_TOKEN") or None  # read here, never printed
        try:
            dataset.push_to_hub(location, private=private, token=token)
        except Exception as e:  # offline, no token, no rights: one line, no traceback, no token
            reason = first_line(e)
            if token:
                reason = reason.replace(token, "***")
            raise UsageError(f"cannot push to the Hub repository {location}: {reason}") from e
        log(f"pushed to https://huggingface.co/datasets/{location}")
        return f"https://huggingface.co/datasets/{location}"
    import datasets

    datasets.disable_progress_bars()
    check_output_free(location, overwrite)
    target = Path(location)
    with building(target, "dataset") as tmp:
        dataset.save_to_disk(str(tmp))
    log(f"saved to {target}")
    return str(target)
