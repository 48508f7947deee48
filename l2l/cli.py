"""What every script shares on the command line: one-line errors with exit code 2, logging, flag groups."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2, nothing written."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage stays available through --help)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def log(msg: str) -> None:
    """Progress and status go to stderr so stdout stays clean for results."""
    try:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(msg, file=sys.stderr, flush=True)


def run(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a script's main(): UsageError -> one line on stderr and exit 2; Ctrl-C -> exit 130."""
    import logging

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # its CPU-kernel notice on import is harmless
    try:
        code = main(argv)
    except UsageError as e:
        prog = os.path.basename(sys.argv[0]) or "l2l"
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed checkpoints are kept; run the same command again to continue",
              file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


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


def add_quant_args(parser: argparse.ArgumentParser, **kw) -> None:
    """--quant8/--quant4 as in LLaMa2lang (mutually exclusive)."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--quant8", action="store_true", help="Load the model in 8 bits (bitsandbytes).", **kw)
    g.add_argument("--quant4", action="store_true", help="Load the model in 4 bits NF4 (bitsandbytes).", **kw)


def add_hub_args(parser: argparse.ArgumentParser, what: str, **kw) -> None:
    parser.add_argument("--push_to_hub", action="store_true",
                        help=f"Push the {what} to the Hugging Face Hub (output is then a repo id). "
                             "Nothing is pushed without this flag. Uses HF_TOKEN from the environment.", **kw)
    parser.add_argument("--private", action="store_true", help="Create the Hub repository as private.", **kw)


def add_cpu_arg(parser: argparse.ArgumentParser, help: str = "Force the CPU even when a GPU is available.", **kw) -> None:
    parser.add_argument("--cpu", action="store_true", help=help, **kw)


def add_trust_remote_code_arg(parser: argparse.ArgumentParser, **kw) -> None:
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="Allow models and datasets to run their own code from the Hub (off by default).", **kw)


def add_model_loading_args(parser: argparse.ArgumentParser, **kw) -> None:
    add_cpu_arg(parser, **kw)
    add_trust_remote_code_arg(parser, **kw)
