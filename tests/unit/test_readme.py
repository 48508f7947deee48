"""Every command in the README and the docs pages is accepted by the script it calls, so they cannot rot:
each `python script.py ...` / `python -m ...` line (Colab `!python`, `accelerate launch`, pipes and loops
included) is parsed with that script's own argument parser (a `--config recipes/...` included). The
commands that run offline are run for real elsewhere
(the quickstart test runs the README's first command)."""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import ROOT

from l2l.cli import UsageError

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))
         if p.name not in ("ARCHITECTURE.md", "BENCHMARKS.md")}


def parsers():
    import add_easy_negatives
    import benchmark
    import check_translations
    import combine_checkpoints
    import dataset_stats
    import evaluate_model
    import export_gguf
    import extend_tokenizer
    import finetune
    import generate_synthetic
    import merge_adapter
    import pretrain
    import run_inference
    import translate
    from l2l import assets
    from l2l.train.preference import build_parser as preference
    from threads.__main__ import build_parser as threads

    return {"translate.py": translate.build_parser, "combine_checkpoints.py": combine_checkpoints.build_parser,
            "finetune.py": finetune.build_parser, "finetune_dpo.py": lambda: preference("finetune_dpo.py", ""),
            "finetune_orpo.py": lambda: preference("finetune_orpo.py", ""),
            "run_inference.py": run_inference.build_parser, "merge_adapter.py": merge_adapter.build_parser,
            "benchmark.py": benchmark.build_parser, "-m threads": threads, "-m l2l.assets": assets.build_parser,
            "generate_synthetic.py": generate_synthetic.build_parser,
            "add_easy_negatives.py": add_easy_negatives.build_parser,
            "dataset_stats.py": dataset_stats.build_parser, "evaluate_model.py": evaluate_model.build_parser,
            "export_gguf.py": export_gguf.build_parser, "extend_tokenizer.py": extend_tokenizer.build_parser,
            "pretrain.py": pretrain.build_parser, "check_translations.py": check_translations.build_parser}


def shell_blocks(text: str = README) -> list[str]:
    """The fenced blocks holding commands (```bash, ```sh, ```python, ```yaml or untagged; ```text is a
    synopsis)."""
    blocks, current, lang = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                if lang in ("", "bash", "sh", "python", "yaml"):
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def readme_commands(text: str = README) -> list[str]:
    commands = []
    for block in shell_blocks(text):
        text = re.sub(r"\\\n\s*", " ", block)  # join continued lines
        for line in text.splitlines():
            line = line.split(" #")[0]  # a comment after the command
            for m in re.finditer(r"(?:^|[\s!|;&])python (-m [\w.]+|[\w]+\.py)(.*?)(?=\s*(?:\||;|&&|&\s|&$|$))", line):
                commands.append(f"{m.group(1)}{m.group(2)}")
            for m in re.finditer(r"\"python (-m [\w.]+|[\w]+\.py)([^\"]*)\"", line):  # sbatch --wrap "python ..."
                commands.append(f"{m.group(1)}{m.group(2)}")
            for m in re.finditer(r"accelerate launch .*?(\w+\.py)(.*?)(?=\s*(?:\||;|&&|$))", line):
                commands.append(f"{m.group(1)}{m.group(2)}")
    return commands


COMMANDS = readme_commands()
PAGE_COMMANDS = [f"{name}: {command}" for name, text in PAGES.items() for command in readme_commands(text)]


def test_readme_starts_with_the_two_commands():
    first_block = shell_blocks()[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make quickstart", "make test"]
    assert len(COMMANDS) >= 20  # one recipe or more per stage
    assert len(PAGE_COMMANDS) >= 40  # the pages' recipes are all found


def test_readme_is_short_and_links_every_stage_page():
    assert len(README.encode("utf-8")) < 15_000
    for name in PAGES:
        assert f"docs/{name}" in README, f"README does not link docs/{name}"


@pytest.mark.parametrize("command", COMMANDS + PAGE_COMMANDS)
def test_readme_command_parses(command, monkeypatch):
    monkeypatch.chdir(ROOT)  # recipes/ paths in --config are relative to the checkout
    command = command.split(": ", 1)[1] if command.split(": ", 1)[0] in PAGES else command
    table = parsers()
    script = next(k for k in table if command.startswith(k))
    argv = shlex.split(re.sub(r"\$\{?(i|[A-Z][A-Z_]*)\}?", "0", command[len(script):]))  # $i, $SLURM_ARRAY_TASK_ID
    if "--config" in argv and not (ROOT / argv[argv.index("--config") + 1]).is_file():
        at = argv.index("--config")  # a run file of the user's own (a run's recorded settings): not in the checkout
        assert not argv[at + 1].startswith("recipes/"), f"no such recipe: {argv[at + 1]}"
        argv = argv[:at] + argv[at + 2:] + ["T", "D", "P"][:3 - sum(not a.startswith("-") for a in argv[:at])]
    try:
        table[script]().parse_args(argv)
    except SystemExit as e:  # exit 0: a command that answers at once, as --help does (--list_benchmarks)
        if e.code != 0:
            pytest.fail(f"command rejected by {script} (exit {e.code}): {command}")
    except UsageError as e:
        pytest.fail(f"command rejected by {script} ({e}): {command}")
