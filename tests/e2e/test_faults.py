"""Faults: each long-running stage stopped part-way with SIGINT and with SIGKILL, then the same command run
again; nothing may be lost or duplicated, training resumes from its last checkpoint, and SIGINT ends with one
line saying how to continue. A full disk (a small tmpfs) during checkpoint writes leaves the folder resumable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, combined_records, load_records, run_cli, run_in_process, write_jsonl


def start(tmp_path: Path, script: str, *args) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    target = ["-m", script] if script == "threads" else [str(ROOT / script)]
    proc = subprocess.Popen([sys.executable, *target, *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp_path,
                            preexec_fn=default_sigint)
    return proc, log


def default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored, and children inherit that (Python then installs no
    KeyboardInterrupt handler): the stage under test must get SIGINT as it would from a terminal's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_when(proc: subprocess.Popen, ready, sig: int, timeout: float = 240) -> None:
    """Send `sig` as soon as `ready()` is true (the stage is part-way), and wait for the process to end."""
    deadline = time.time() + timeout
    while time.time() < deadline and not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (code {proc.returncode}) before it could be stopped part-way")
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=120)


def assert_clean_interrupt(proc: subprocess.Popen, log: Path) -> None:
    err = log.read_text()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith("interrupted:") and "run the same command again" in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    rows = [{"instruction": f"Hello world number {i}. How are you today?",
             "output": "The quick brown fox " * (1 + i % 4), "id": i} for i in range(40)]
    return write_jsonl(tmp_path_factory.mktemp("faults") / "en.jsonl", rows)


def translate_args(models, data, folder):
    return ["llm", "--model_name", models["chat"], "nl", folder, "--base_dataset", data, "--source_lang", "en",
            "--checkpoint_n", "2", "--batch_size", "4", "--max_length", "16", "--max_batch_tokens", "1"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_translate_stopped_and_continued(tmp_path, models, english, translated, sig):
    ref = translated / "ckpt"  # the same translation, uninterrupted
    ckpt = tmp_path / "ckpt"
    proc, log = start(tmp_path, "translate.py", *translate_args(models, english, ckpt))
    stop_when(proc, lambda: len(list(ckpt.glob("chunk-*.json"))) >= 2, sig)
    if sig == signal.SIGINT:
        assert_clean_interrupt(proc, log)
    done = len(list(ckpt.glob("chunk-*.json")))
    assert 2 <= done < 20
    again = run_cli("translate.py", *translate_args(models, english, ckpt), check=True)
    assert "already done" in again.stderr
    assert combined_records(ckpt) == combined_records(ref)  # every record once, as uninterrupted


@pytest.fixture(scope="module")
def translated(tmp_path_factory, models, english):
    folder = tmp_path_factory.mktemp("translated")
    run_in_process("translate.py", *translate_args(models, english, folder / "ckpt"), check=True)
    run_in_process("combine_checkpoints.py", folder / "ckpt", folder / "ds", check=True)
    return folder


@pytest.mark.parametrize("script", ["combine", "threads"])
def test_short_stages_killed_leave_nothing_half_written(tmp_path, models, translated, script):
    """Killed at several moments (loading, building, saving): the output is absent or whole, never half."""
    if script == "combine":
        args, script_name = [translated / "ckpt"], "combine_checkpoints.py"
    else:
        args, script_name = [translated / "ds"], "threads"
    extra = [] if script == "combine" else ["--base_model", models["chat"], "--thread_template", "chatml"]
    ref = tmp_path / "ref"
    run_cli(*(["-m", "threads"] if script == "threads" else [script_name]), *args, ref, *extra, check=True)
    for delay in (0.5, 2.0, 4.0):
        out = tmp_path / f"out{delay}"
        proc, _ = start(tmp_path, script_name, *args, out, *extra)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists() or load_records(out) == load_records(ref)
        run_cli(*(["-m", "threads"] if script == "threads" else [script_name]), *args, out, *extra,
                *(["--overwrite"] if out.exists() else []), check=True)
        assert load_records(out) == load_records(ref)
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left


def sft_args(models, data, out, *extra):
    return [out, data, "Antwoord in het Nederlands.", "--base_model", models["chat"], "--thread_template", "chatml",
            "--noquant", "--cpu", "--max_steps", "16", "--save_steps", "2", "--batch_size", "2", "--max_seq_length",
            "64", "--logging_steps", "1", "--learning_rate", "5e-3", *extra]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_sft_stopped_resumes_from_its_last_checkpoint(tmp_path, models, translated, sig):
    out = tmp_path / "tuned"
    ckpts = tmp_path / "tuned-checkpoints"
    proc, log = start(tmp_path, "finetune.py", *sft_args(models, translated / "ds", out))
    stop_when(proc, lambda: (ckpts / "checkpoint-4" / "trainer_state.json").exists(), sig)
    if sig == signal.SIGINT:
        assert_clean_interrupt(proc, log)
    assert not out.exists()
    again = run_cli("finetune.py", *sft_args(models, translated / "ds", out), check=True)
    assert "resuming from" in again.stderr and "checkpoint-4" in again.stderr.split("resuming from", 1)[1][:200]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 16 and {s for s, _ in summary["curves"]["train"]} >= set(range(1, 17))


def test_sft_killed_while_saving_resumes_from_the_complete_checkpoint(tmp_path, models, translated):
    """A checkpoint cut off while being saved (no trainer_state.json) is removed, the one before is used."""
    out = tmp_path / "tuned"
    ckpts = tmp_path / "tuned-checkpoints"
    run_cli("finetune.py", *sft_args(models, translated / "ds", out, "--max_steps", "4"), check=True)
    shutil.rmtree(out)
    partial = ckpts / "checkpoint-6"
    shutil.copytree(ckpts / "checkpoint-4", partial)
    (partial / "trainer_state.json").unlink()
    again = run_cli("finetune.py", *sft_args(models, translated / "ds", out), check=True)
    assert f"removing {partial}" in again.stderr and f"resuming from {ckpts / 'checkpoint-4'}" in again.stderr
    assert json.loads((out / "training_summary.json").read_text())["steps"] == 16


def test_dpo_killed_resumes(tmp_path, models):
    rows = [{"message_id": f"q{i}", "parent_id": None, "role": "prompter", "text": f"Hoe gaat het {i}?",
             "rank": None, "lang": "nl"} for i in range(8)]
    rows += [{"message_id": f"a{i}{r}", "parent_id": f"q{i}", "role": "assistant", "text": f"Antwoord {r} op {i}.",
              "rank": r, "lang": "nl"} for i in range(8) for r in range(2)]
    data = write_jsonl(tmp_path / "ranked.jsonl", rows)
    out, ckpts = tmp_path / "dpo", tmp_path / "dpo-checkpoints"
    args = [out, data, "Antwoord kort.", "--base_model", models["chat"], "--thread_template", "chatml", "--noquant",
            "--cpu", "--max_steps", "6", "--save_steps", "2", "--batch_size", "2", "--logging_steps", "1"]
    proc, _ = start(tmp_path, "finetune_dpo.py", *args)
    stop_when(proc, lambda: (ckpts / "checkpoint-2" / "trainer_state.json").exists(), signal.SIGKILL)
    again = run_cli("finetune_dpo.py", *args, check=True)
    assert "resuming from" in again.stderr
    assert json.loads((out / "training_summary.json").read_text())["steps"] == 6


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_generate_synthetic_stopped_and_continued(tmp_path, models, sig):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"Paragraph {i} tells how the river {i} runs through the old town and the "
                                  f"fields beside it every spring." for i in range(30)))
    args = [corpus, None, "--model_name", models["chat"], "--temperature", "0", "--max_new_tokens", "6",
            "--min_words", "5", "--checkpoint_n", "1"]
    ref, ckpt = tmp_path / "ref", tmp_path / "ckpt"
    run_cli("generate_synthetic.py", *[a if a is not None else ref for a in args], check=True)
    proc, log = start(tmp_path, "generate_synthetic.py", *[a if a is not None else ckpt for a in args])
    stop_when(proc, lambda: len(list(ckpt.glob("chunk-*.json"))) >= 2, sig)
    if sig == signal.SIGINT:
        assert_clean_interrupt(proc, log)
    assert 2 <= len(list(ckpt.glob("chunk-*.json"))) < 30
    run_cli("generate_synthetic.py", *[a if a is not None else ckpt for a in args], check=True)
    assert combined_records(ckpt) == combined_records(ref)


def test_evaluate_model_interrupted_writes_nothing_then_completes(tmp_path, models, translated):
    args = [models["chat"], models["chat64"], "--dataset", translated / "ds", "--target_lang", "nl", "--n_prompts",
            "16", "--max_new_tokens", "24", "--output_dir", tmp_path / "eval"]
    proc, log = start(tmp_path, "evaluate_model.py", *args)
    stop_when(proc, lambda: "== tuned" in log.read_text(), signal.SIGINT)
    assert_clean_interrupt(proc, log)
    assert not (tmp_path / "eval" / "results.json").exists()
    run_cli("evaluate_model.py", *args, check=True)
    assert {r["model"] for r in json.loads((tmp_path / "eval" / "results.json").read_text())["results"]} == {
        "base", "tuned"}


# ------------------------------------------------------------------------------------------------ full disk
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root, as in CI); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk but `leave` bytes."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def test_full_disk_during_translation_leaves_the_folder_resumable(tmp_path, models, english, translated, small_disk):
    ref = translated / "ckpt"  # the same translation, uninterrupted
    ckpt = small_disk / "ckpt"
    filler = fill(small_disk, 24 * 1024)  # room for a few chunks only
    full = run_cli("translate.py", *translate_args(models, english, ckpt))
    errors = [line for line in full.stderr.splitlines() if "error:" in line]
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert len(errors) == 1 and "no space left" in errors[0] and "run the same command again" in errors[0]
    written = len(list(ckpt.glob("chunk-*.json")))
    assert 0 < written < 20
    filler.unlink()
    run_cli("translate.py", *translate_args(models, english, ckpt), check=True)
    assert combined_records(ckpt) == combined_records(ref)


def test_full_disk_during_combine_writes_nothing(tmp_path, translated, small_disk):
    filler = fill(small_disk, 8 * 1024)
    out = small_disk / "ds"
    full = run_cli("combine_checkpoints.py", translated / "ckpt", out)
    assert full.returncode == 1 and "no space left" in full.stderr and "Traceback" not in full.stderr, full.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no half-written folder
    filler.unlink()
    run_cli("combine_checkpoints.py", translated / "ckpt", out, check=True)
    assert load_records(out) == load_records(translated / "ds")


def adapter_of(base: Path, folder: Path) -> Path:
    """A LoRA adapter (random, nonzero) on `base`, saved as finetune.py would leave it (with the tokenizer)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules="all-linear",
                                                                                   init_lora_weights=False))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


def assert_disk_full(proc: subprocess.CompletedProcess, names: Path) -> None:
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(errors) == 1 and "no space left" in errors[0] and str(names) in errors[0], errors


def test_full_disk_while_a_merged_model_is_saved_leaves_nothing(tmp_path, models, small_disk):
    adapter = adapter_of(models["chat"], tmp_path / "adapter")
    out = small_disk / "merged"
    filler = fill(small_disk, 48 * 1024)  # the merged weights need about 200 KiB
    assert_disk_full(run_cli("merge_adapter.py", adapter, out, "--cpu"), out)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # the half-saved folder is gone
    filler.unlink()
    run_cli("merge_adapter.py", adapter, out, "--cpu", check=True)
    assert (out / "model.safetensors").is_file() and (out / ".l2l_output.json").is_file()


def test_full_disk_while_training_saves_a_checkpoint_resumes(tmp_path, models, small_disk):
    data = write_jsonl(tmp_path / "nl.jsonl", [
        row for t in range(8) for row in (
            {"message_id": f"q{t}", "parent_id": None, "role": "prompter", "text": f"Hoe gaat het {t}?",
             "rank": None, "lang": "nl"},
            {"message_id": f"a{t}", "parent_id": f"q{t}", "role": "assistant", "text": f"Goed, dank je {t}.",
             "rank": 0, "lang": "nl"})])
    ckpts = small_disk / "ckpts"
    args = ("finetune.py", tmp_path / "tuned", data, "P", "--base_model", models["chat"], "--thread_template",
            "chatml", "--noquant", "--cpu", "--max_steps", "4", "--save_steps", "2", "--batch_size", "4",
            "--max_seq_length", "64", "--output_dir", ckpts)
    filler = fill(small_disk, 12 * 1024)  # the settings record fits, a trainer checkpoint does not
    assert_disk_full(run_cli(*args, timeout=600), ckpts)
    assert not list(ckpts.glob("checkpoint-*/trainer_state.json"))  # no checkpoint looks whole
    filler.unlink()
    run_cli(*args, check=True, timeout=600)
    summary = json.loads((tmp_path / "tuned" / "training_summary.json").read_text())
    assert summary["steps"] == 4
