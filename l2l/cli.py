"""What every script shares on the command line: one-line errors with exit code 2, logging, the parser."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2, nothing written."""


class ModelNotFound(UsageError):
    """No model under this name: no such local folder, and no such Hub repository (or not cached offline)."""


class ModelLoadError(UsageError):
    """The model exists but cannot be loaded or converted (wrong architecture, broken files, converter error)."""


CPU_HELP = "Force the CPU even when a GPU is available."
TRUST_REMOTE_CODE_HELP = "Allow models and datasets to run their own code from the Hub (off by default)."


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage stays available through --help) and no abbreviated flags
    (`--work 2` is an error, not `--workers 2`)."""

    def __init__(self, *args, run_file: bool = True, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.run_file = run_file
        self.run_file_ignores: tuple[str, ...] = ()  # recorded settings that are not flags (l2l.config)
        from l2l.config import CONFIG_HELP

        if run_file:
            self.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
        else:  # a sub-command: the top parser reads the file; the flag is only accepted here too
            self.add_argument("--config", metavar="FILE", help=argparse.SUPPRESS, default=argparse.SUPPRESS)

    def parse_known_args(self, args=None, namespace=None):
        """--config FILE first: its values become the defaults, then the command line is parsed over them."""
        argv = sys.argv[1:] if args is None else list(args)
        path = _run_file_path(argv) if self.run_file else None
        if path is not None:
            from l2l.config import apply_run_file, read_run_file

            argv = apply_run_file(self, read_run_file(path), path, argv, ignore=self.run_file_ignores)
        ns, extras = super().parse_known_args(argv, namespace)
        if self.__dict__.get("file_positionals"):
            from l2l.config import place_file_positionals

            place_file_positionals(self, ns)
        return ns, extras

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _run_file_path(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--":
            return None
        if a == "--config":
            if i + 1 >= len(argv):
                raise UsageError("--config needs a file")
            return argv[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def log(msg: str) -> None:
    """Progress and status go to stderr so stdout stays clean for results."""
    try:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(msg, file=sys.stderr, flush=True)


def run(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run a script's main(): UsageError -> one line on stderr and exit 2; Ctrl-C -> exit 130."""
    import logging

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # its CPU-kernel notice on import is harmless
    prog = prog or os.path.basename(sys.argv[0]) or "l2l"
    try:
        code = main(argv)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:
        if not is_disk_full(e):
            raise
        where = next((x.filename for x in exception_chain(e) if isinstance(x, OSError) and x.filename), None)
        _close_progress_bars()
        print(f"{prog}: error: no space left on the device ({where or 'writing output'}); everything written "
              "before is whole and kept: free some space and run the same command again", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        _close_progress_bars()  # their last redraw would otherwise land after the message
        print("interrupted: completed checkpoints are kept; run the same command again to continue",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)  # no interpreter teardown: nothing (a progress bar, a worker) may print after this line
    sys.exit(code or 0)


def exception_chain(e: BaseException) -> list[BaseException]:
    """An error and those it came from (cause or context), at most ten."""
    seen: list[BaseException] = []
    while e is not None and len(seen) < 10 and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


# what libraries that do not raise OSError say when the disk fills: safetensors (a Rust io::Error), torch.save
_DISK_FULL_WORDS = ("no space left on device", "os error 28", "disk quota exceeded", "file write failed")


def is_disk_full(e: BaseException) -> bool:
    """Whether an error (or one it came from) is a full disk or quota, whichever library raised it."""
    import errno

    for x in exception_chain(e):
        if isinstance(x, OSError) and x.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(w in str(x).lower() for w in _DISK_FULL_WORDS):
            return True
    return False


def _close_progress_bars() -> None:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    sys.stderr.write("\n")
    sys.stderr.flush()


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def non_negative_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}")
    return n


def first_line(e: BaseException) -> str:
    """An exception's message cut to its first line (its type where it has none), for one-line errors."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
