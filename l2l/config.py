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
           show_default: bool = True, metavar: str | None = None, resumable: bool = False,
           card: bool = False, nargs: str | None = None, append: bool = False) -> Any:
    """A dataclass field that is also a command-line flag (or a positional argument).
    resumable: a resumed training run may change it (where things go, how often it logs or saves, how long it
    runs); card: the model card lists it among the hyperparameters. nargs: argparse's ("?" or "+"); append: a
    repeatable flag collecting a list (default None)."""
    meta = {"help": help, "flag": flag, "type": type, "choices": choices, "positional": positional,
            "exclusive": exclusive, "show_default": show_default, "metavar": metavar, "resumable": resumable,
            "card": card, "nargs": nargs, "append": append}
    if default is _MISSING:
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


def names_where(cls: type, key: str) -> tuple[str, ...]:
    """The names of a config class's flags (nested ones included) whose option() sets `key` (resumable, card)."""
    return tuple(f.name for f, meta in flag_fields(cls) if meta.get(key))


def unflagged(cls: type) -> tuple[str, ...]:
    """A config class's fields that are not flags (the caller sets them), nested configs included."""
    out: list[str] = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_KEY)
        if meta is None:
            out.append(f.name)
        elif "nested" in meta:
            out += unflagged(meta["nested"])
    return tuple(out)


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
            extra = {"nargs": meta["nargs"]} if meta["nargs"] else {}
            if meta["choices"]:
                extra["choices"] = meta["choices"]
            if f.default is not _MISSING:
                extra["default"] = f.default
            parser.add_argument(f.name, help=meta["help"], metavar=meta["metavar"], **extra)
            continue
        target = parser
        if meta["exclusive"]:
            if meta["exclusive"] not in groups:
                groups[meta["exclusive"]] = parser.add_mutually_exclusive_group()
            target = groups[meta["exclusive"]]
        target.add_argument(flag_name(f, meta), dest=f.name, help=_help(f, meta), **_kwargs(f, meta, suppress))


def add_field_argument(parser: argparse.ArgumentParser, cls: type, name: str, **changes: Any) -> None:
    """Declare one field's flag, with what a caller changes (default, choices, help, type, required): a
    translation backend's own default model size, say. The flag, its dest and its type stay the field's."""
    f, meta = next((f, m) for f, m in flag_fields(cls, positionals=False) if f.name == name)
    kw = {**_kwargs(f, meta, False), "help": _help(f, meta), **changes}
    if "choices" in changes:
        kw["metavar"] = "{" + ",".join(map(str, changes["choices"])) + "}"
    parser.add_argument(flag_name(f, meta), dest=f.name, **kw)


def _kwargs(f: dataclasses.Field, meta: dict, suppress: bool) -> dict:
    if f.default is _MISSING:  # a flag without a default must be given
        return {"required": True, "type": meta["type"] or str, "metavar": meta["metavar"]}
    default = argparse.SUPPRESS if suppress else f.default
    if f.default is False and meta["type"] is None:
        return {"action": "store_true", "default": default}
    if meta["append"]:
        return {"action": "append", "default": default, "metavar": meta["metavar"] or "FILE",
                **({"type": meta["type"]} if meta["type"] else {})}
    kw = {"default": default, "metavar": meta["metavar"] or flag_name(f, meta).lstrip("-").upper()}
    if meta["type"] is not None:
        kw["type"] = meta["type"]
    if meta["nargs"]:
        kw["nargs"] = meta["nargs"]
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
                                      "Nothing is pushed without this flag. Uses HF_TOKEN from the environment.",
                               resumable=True)
    private: bool = option(False, "Create the Hub repository as private.", resumable=True)


# ------------------------------------------------------------------------------------------------ run files
CONFIG_HELP = ("A run file (YAML or JSON) setting any flag of this command, keys named as the flags without their "
               "dashes (lora_r: 8, noquant: true; positionals by their names); flags on the command line win.")


def read_run_file(path: str) -> dict:
    """A run file's settings: a YAML or JSON mapping of flag names to values (a training run's
    l2l_training_settings.json reads as one)."""
    from pathlib import Path

    from l2l.cli import UsageError, first_line

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix.lower() == ".json":
            import json

            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as e:  # UnicodeDecodeError, json's ValueError, yaml.YAMLError and its kinds
        raise UsageError(f"--config {path}: not a YAML or JSON file ({first_line(e)})") from e
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"--config {path}: expected a mapping of flag names to values, got a {type(values).__name__}")
    return values


def _actions_by_key(parser: argparse.ArgumentParser) -> tuple[dict, argparse._SubParsersAction | None]:
    """{key: action} for a parser's own flags and positionals (keys: flag names without dashes, and dests)."""
    keys, sub = {}, None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action
            continue
        if isinstance(action, argparse._HelpAction) or action.dest == "config":
            continue
        shown = [action.metavar] if not action.option_strings and isinstance(action.metavar, str) else []
        for name in [s.lstrip("-") for s in action.option_strings] + [action.dest] + shown:
            keys.setdefault(name, action)
    return keys, sub


def _value(action: argparse.Action, key: str, value: Any, path: str) -> Any:
    """A run file's value for one flag, converted and checked as the command line's would be."""
    from l2l.cli import UsageError

    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise UsageError(f"--config {path}: {key} is a switch: expected true or false, got {value!r}")
        return value
    if value is None:
        return None
    many = getattr(action, "nargs", None) in ("+", "*") or isinstance(action, argparse._AppendAction)
    if many:
        return [_value(_Single(action), key, v, path) for v in (value if isinstance(value, list) else [value])]
    if isinstance(value, (bool, list, dict)):  # YAML reads `no` as false: Norwegian must be quoted
        kind = "true/false (quote it if it is text: 'no')" if isinstance(value, bool) else f"a {type(value).__name__}"
        raise UsageError(f"--config {path}: {key} takes one value, got {kind}")
    convert = action.type or str
    try:
        out = convert(value if isinstance(value, str) else str(value))
    except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
        raise UsageError(f"--config {path}: {key}: {e}") from e
    if action.choices is not None and out not in action.choices:
        raise UsageError(f"--config {path}: {key}: {out!r} is not one of {', '.join(map(str, action.choices))}")
    return out


class _Single:
    """One item of a list-valued flag: the flag's type and choices."""

    def __init__(self, action: argparse.Action):
        self.type, self.choices, self.nargs = action.type, action.choices, None


def _given_on_command_line(action: argparse.Action, argv: list[str]) -> bool:
    return any(a == s or a.startswith(s + "=") for a in argv for s in action.option_strings)


def apply_run_file(parser: argparse.ArgumentParser, values: dict, path: str, argv: list[str],
                   ignore: tuple[str, ...] = ()) -> list[str]:
    """Make a run file's values the parser's defaults, so that the command line still wins. A positional the
    file sets becomes optional; `Parser` then gives the command line's positionals first to those the file
    leaves out (`place_file_positionals`). A sub-command named in the file is put in front of argv when argv
    names none. Keys no flag takes are an error, except `ignore` (settings a run records that are not flags)."""
    from l2l.cli import UsageError

    values = dict(values)
    script = values.pop("script", None)  # a recipe may say which command it is for
    if script is not None and str(script) != parser.prog.split()[-1]:
        raise UsageError(f"--config {path} is a run file for {script}, not {parser.prog.split()[-1]}")
    keys, sub = _actions_by_key(parser)
    chosen_parser, sub_keys = None, {}
    if sub is not None:
        chosen = next((a for a in argv if a in sub.choices), None) or values.get(sub.dest)
        if chosen is not None and chosen not in sub.choices:
            raise UsageError(f"--config {path}: {sub.dest} {chosen!r} is not one of {', '.join(sub.choices)}")
        if chosen is not None:
            if not any(a in sub.choices for a in argv):
                argv = [chosen, *argv]
            chosen_parser = sub.choices[chosen]
            sub_keys, _ = _actions_by_key(chosen_parser)
    unknown = [k for k in values if k not in keys and k not in sub_keys and k not in ignore
               and not (sub is not None and k == sub.dest)]
    if unknown:
        raise UsageError(f"--config {path}: no flag --{unknown[0]} in this command (see --help)")
    parsers = [q for q in (parser, chosen_parser) if q is not None]
    given = [a for a in [*keys.values(), *sub_keys.values()] if _given_on_command_line(a, argv)]
    applied = []  # (the parser that owns the flag, the flag, the file's value)
    for key, value in values.items():
        owner, action = parser, keys.get(key)
        if (action is None or action.default is argparse.SUPPRESS) and key in sub_keys:
            owner, action = chosen_parser, sub_keys[key]
        if action is None or action in given:
            continue
        if any(_exclusive_with(q, action, other) for q in parsers for other in given):
            continue  # the command line chose another flag of the same group
        applied.append((owner, action, _value(action, key, value, path)))
    _check_exclusive(parsers, applied, path)
    for owner, action, value in applied:
        action.required = False
        if action.option_strings:
            action.default = value
        else:  # placed after parsing, where the command line leaves room (Parser.parse_known_args)
            action.default = None
            action.nargs = {None: "?", "+": "*"}.get(action.nargs, action.nargs)
            owner.__dict__.setdefault("file_positionals", {})[action.dest] = value
    return argv


def place_file_positionals(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> None:
    """The positionals of a parser whose run file set some. The command line's n positionals fill, in order, the
    positionals the file leaves out and, when n is larger, that many more of the file's, from the first; the
    file fills the rest. (`run_inference.py --config chat.yaml "question"`: the question is the input, not the
    model; `finetune.py OUT DATA --config recipe.yaml`: the recipe's prompt stays.)"""
    from_file = parser.__dict__.get("file_positionals") or {}
    if not from_file:
        return
    actions = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    cli = [v for a in actions if (v := getattr(ns, a.dest, None)) is not None and v != []]
    placed = {a.dest: from_file.get(a.dest, a.default) for a in actions}
    replaced = [a.dest for a in actions if a.dest in from_file][:max(0, len(cli) - (len(actions) - len(from_file)))]
    targets = [a.dest for a in actions if a.dest not in from_file or a.dest in replaced]
    for dest, value in zip(targets, cli):
        placed[dest] = value
    for dest, value in placed.items():
        setattr(ns, dest, value)


def _check_exclusive(parsers: list, applied: list, path: str) -> None:
    """Two flags of one exclusive group set by the file (quant8 and noquant): refused, as on the command line."""
    from l2l.cli import UsageError

    chosen = [action for _, action, value in applied if value not in (None, False)]
    for group in (g for q in parsers for g in q._mutually_exclusive_groups):
        both = [a for a in chosen if a in group._group_actions]
        if len(both) > 1:
            names = " and ".join(a.option_strings[0].lstrip("-") for a in both)
            raise UsageError(f"--config {path}: {names} cannot be used together")


def _exclusive_with(parser: argparse.ArgumentParser, a: argparse.Action, b: argparse.Action) -> bool:
    return any(a in g._group_actions and b in g._group_actions for g in parser._mutually_exclusive_groups)
