"""Settings defined once: a config dataclass field carries its flag, default and help, and the command-line
parser is generated from the dataclass (as TRL's scripts do with their dataclass configs).

    @dataclass
    class JobConfig:
        batch_size: int = option(10, "Texts per model call.", type=positive_int)

    add_arguments(parser, JobConfig)        # --batch_size, with its default and help
    cfg = from_args(JobConfig, namespace)   # the dataclass; its __post_init__ validates once
    to_argv(cfg)                            # back to flags (for the worker processes translate.py starts)

A field without `option(...)` is not a flag: the caller passes it, or `from_args` takes it from the namespace
when another config declared a flag of that name. A field whose type is a config dataclass (`nested=True`)
contributes its own flags.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

_KEY = "cli"
_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, flag: str | None = None, type: Callable | None = None,
           choices: list | None = None, positional: bool = False, exclusive: str | None = None,
           show_default: bool = True, metavar: str | None = None) -> Any:
    """A dataclass field that is also a command-line flag (or a positional argument)."""
    meta = {"help": help, "flag": flag, "type": type, "choices": choices, "positional": positional,
            "exclusive": exclusive, "show_default": show_default, "metavar": metavar}
    if positional or default is _MISSING:
        return dataclasses.field(metadata={_KEY: meta})
    return dataclasses.field(default=default, metadata={_KEY: meta})


def nested(cls: type) -> Any:
    """A field holding another config dataclass, whose flags are declared with this one's."""
    return dataclasses.field(default_factory=cls, metadata={_KEY: {"nested": cls}})


def flag_fields(cls: type, positionals: bool | None = None):
    """(field, metadata) of every flag of a config class, nested configs included, in declaration order."""
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_KEY)
        if meta is None:
            continue
        if "nested" in meta:
            yield from flag_fields(meta["nested"], positionals)
        elif positionals is None or meta["positional"] == positionals:
            yield f, meta


def flag_name(f: dataclasses.Field, meta: dict) -> str:
    return meta["flag"] or f"--{f.name}"


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, positionals: bool | None = None,
                  suppress: bool = False, exclude: tuple[str, ...] = ()) -> None:
    """Declare a config class's flags on a parser. positionals: True only those, False only flags, None both.
    suppress: leave unset flags out of the namespace (for flags accepted both before and after a sub-command)."""
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f, meta in flag_fields(cls, positionals):
        if f.name in exclude:
            continue
        if meta["positional"]:
            parser.add_argument(f.name, help=meta["help"], metavar=meta["metavar"])
            continue
        target = parser
        if meta["exclusive"]:
            if meta["exclusive"] not in groups:
                groups[meta["exclusive"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["exclusive"]]
        target.add_argument(flag_name(f, meta), dest=f.name, help=_help(f, meta), **_kwargs(f, meta, suppress))


def _kwargs(f: dataclasses.Field, meta: dict, suppress: bool) -> dict:
    if f.default is _MISSING:  # a flag without a default must be given
        return {"required": True, "type": meta["type"] or str, "metavar": meta["metavar"]}
    default = argparse.SUPPRESS if suppress else f.default
    if f.default is False and meta["type"] is None:
        return {"action": "store_true", "default": default}
    kw = {"default": default, "metavar": meta["metavar"] or flag_name(f, meta).lstrip("-").upper()}
    if meta["type"] is not None:
        kw["type"] = meta["type"]
    if meta["choices"] is not None:
        kw["choices"] = meta["choices"]
        kw["metavar"] = meta["metavar"] or "{" + ",".join(map(str, meta["choices"])) + "}"
    return kw


def _help(f: dataclasses.Field, meta: dict) -> str:
    text = meta["help"]
    shown = not any(f.default is v for v in (None, False, _MISSING))
    if meta["show_default"] and shown and "Default" not in text:
        text = f"{text} Default {f.default}."
    return text.strip()


def from_args(cls: type, ns: argparse.Namespace, **given: Any):
    """Build a config from parsed arguments: `given` values first, then namespace attributes of the same name,
    then the field defaults. Nested configs are built the same way. Validation is the dataclass's own."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_KEY) or {}
        if f.name in given:
            kwargs[f.name] = given[f.name]
        elif "nested" in meta:
            kwargs[f.name] = from_args(meta["nested"], ns)
        elif hasattr(ns, f.name):
            kwargs[f.name] = getattr(ns, f.name)
    return cls(**kwargs)


def to_argv(cfg: Any, exclude: tuple[str, ...] = ()) -> list[str]:
    """The flags that rebuild `cfg` (those that differ from their default, nested configs included);
    positionals are left to the caller."""
    argv: list[str] = []
    for f in dataclasses.fields(cfg):
        meta = f.metadata.get(_KEY)
        if meta is None or meta.get("positional") or f.name in exclude:
            continue
        value = getattr(cfg, f.name)
        if "nested" in meta:
            argv += to_argv(value, exclude)
        elif value == f.default:
            continue
        elif value is True and f.default is False:
            argv.append(flag_name(f, meta))
        elif value is not None and value is not False:
            argv += [flag_name(f, meta), str(value)]
    return argv


def differences(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Names of the settings whose values differ between two dicts of settings (missing keys count)."""
    keys = (set(saved) | set(current)) - set(ignore)
    return sorted(k for k in keys if saved.get(k) != current.get(k))


@dataclasses.dataclass
class HubOptions:
    """Pushing the output to the Hugging Face Hub: never without --push_to_hub."""

    push_to_hub: bool = option(False, "Push the output to the Hugging Face Hub (the output is then a repo id). "
                                      "Nothing is pushed without this flag. Uses HF_TOKEN from the environment.")
    private: bool = option(False, "Create the Hub repository as private.")
