"""The offline engines and real models: Apertium, SmolLM2 from its GGUF package, and the quickstart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import ROOT, load_records, run_cli, write_jsonl

needs_apertium = pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium is not installed (apt-get)")


@needs_apertium
def test_apertium_translates_and_keeps_code(tmp_path):
    rows = [{"instruction": "The house is red.", "input": "Use `ls` please.",
             "output": "Hello world.\n```\nx = 1\n```"}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    run_cli("translate.py", "apertium", "es", tmp_path / "ckpt", "--base_dataset", data, "--source_lang", "en",
            check=True)
    run_cli("combine_checkpoints.py", tmp_path / "ckpt", tmp_path / "out", check=True)
    (row,) = load_records(tmp_path / "out")["train"]
    assert row["instruction"] == "La casa es roja."
    assert "`ls`" in row["input"] and row["output"].endswith("\n```\nx = 1\n```")
    bad = run_cli("translate.py", "apertium", "de", tmp_path / "c2", "--base_dataset", data, "--source_lang", "en")
    assert bad.returncode == 2 and "pairs installed: eng-spa" in bad.stderr


def test_apertium_missing_is_one_clear_line(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "Hi.", "output": "Hello."}])
    bin_dir = tmp_path / "bin"  # a PATH with python but without apertium
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(os.path.realpath(os.sys.executable))
    proc = run_cli("translate.py", "apertium", "es", tmp_path / "ckpt", "--base_dataset", data, "--source_lang", "en",
                   env={"PATH": str(bin_dir)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "apt-get install apertium" in proc.stderr and not (tmp_path / "ckpt").exists()


def test_smollm2_converted_once_and_answers(smollm2_cache):
    cache, folder = smollm2_cache
    assert folder == str(cache / "SmolLM2-135M-Instruct")
    cfg = json.loads((cache / "SmolLM2-135M-Instruct" / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "quantization_config" not in cfg
    again = subprocess.run([os.sys.executable, "-m", "l2l.assets", "smollm2"], capture_output=True, text=True,
                           env={**os.environ, "L2L_CACHE": str(cache), "PYTHONPATH": str(ROOT)}, timeout=120, cwd=ROOT)
    assert again.stdout.strip() == folder and "converting" not in again.stderr  # cached: not converted again
    proc = run_cli("run_inference.py", folder, "You are a helpful assistant.", "What is the capital of France?",
                   "--temperature", "0", "--max_new_tokens", "12", check=True)
    assert "Paris" in proc.stdout  # a real model


def test_quickstart_end_to_end_on_real_models(tmp_path, smollm2_cache):
    """The README's first command, with fewer training steps: every stage on the real models, offline."""
    cache, _ = smollm2_cache
    out = tmp_path / "qs"
    env = {**os.environ, "QUICKSTART_OUT": str(out), "SFT_STEPS": "2", "DPO_STEPS": "1", "L2L_CACHE": str(cache),
           "PY": os.sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "quickstart.sh")], capture_output=True, text=True, env=env,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for stage in range(1, 10):
        assert f"== {stage}/9" in proc.stdout
    answer = [line for line in proc.stdout.splitlines() if line.startswith("A: ")]
    assert answer and len(answer[0]) > 5
    assert json.loads((out / "smollm2-pt-sft" / "training_summary.json").read_text())["steps"] == 2
    dpo = json.loads((out / "smollm2-pt-dpo" / "training_summary.json").read_text())
    assert dpo["steps"] == 1 and dpo["train_pairs"] > 0 and "rewards_accuracies" in dpo
    assert (out / "smollm2-pt-merged" / "model.safetensors").exists()
    translated = load_records(out / "oasst_sample_pt")["train"]
    assert len(translated) == 80 and all(r["lang"] == "pt-BR" for r in translated)
    (bench,) = json.loads((out / "benchmark" / "results.json").read_text())["results"]
    assert bench["error"] is None and bench["bleu"] > 50  # a real engine on real sentences
    base, tuned = json.loads((out / "evaluation" / "results.json").read_text())["results"]
    assert len(base["answers"]) == len(tuned["answers"]) == 8 and base["perplexity"] > 1
    assert "real answers in Portuguese (no echo or loop) to 8 unseen questions: base" in proc.stdout
