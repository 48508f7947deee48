"""The DPO/ORPO scripts and `python -m threads --preference` end to end on a tiny model (the pairs themselves:
tests/unit/test_pairs.py)."""

from __future__ import annotations

import json

import pytest
from conftest import load_records, run_cli, run_main


def test_threads_cli_writes_pairs(tmp_path, models, ranked):
    out = tmp_path / "pairs"
    run_cli("-m", "threads", ranked, out, "--base_model", models["chat"], "--instruction_prompt", "Wees kort.",
            "--preference", "--val_fraction", "0.2", "--thread_template", "chatml", check=True)
    ds = load_records(out)
    assert len(ds["train"]) == 8 and len(ds["validation"]) == 2
    row = ds["train"][0]
    assert row["prompt"][0] == {"role": "system", "content": "Wees kort."}
    assert row["chosen"][0]["content"].startswith("Het gaat goed")
    assert row["rejected"][0]["content"].startswith("Slecht")


@pytest.mark.parametrize("kind", ["dpo", "orpo"])
def test_preference_scripts_end_to_end(tmp_path, models, ranked, kind):
    out = tmp_path / kind
    run_cli(f"finetune_{kind}.py", out, ranked, "Antwoord in het Nederlands.", "--base_model", models["chat"],
            "--noquant", "--max_steps", "3", "--batch_size", "2", "--thread_template", "chatml", "--logging_steps", "1",
            "--val_fraction", "0.2", "--save_steps", "3", check=True, timeout=600)
    s = json.loads((out / "training_summary.json").read_text())
    assert s["steps"] == 3 and s["train_pairs"] == 8 and s["validation_pairs"] == 2
    for key in ("rewards_accuracies", "rewards_margins", "eval_rewards_accuracies", "eval_rewards_margins"):
        assert key in s, key
    card = (out / "README.md").read_text()
    assert f"{kind.upper()}" in card and "rewards_margins" in card
    assert (out / "adapter_model.safetensors").exists() and not (out / "ref").exists()


def test_dpo_from_sft_adapter_then_reload_and_generate(tmp_path, models, ranked):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sft = tmp_path / "sft"
    run_cli("finetune.py", sft, ranked, "Antwoord kort.", "--base_model", models["chat64"], "--thread_template",
            "chatml",
            "--max_steps", "2", "--batch_size", "2", "--learning_rate", "1e-2", check=True, timeout=600)
    dpo = tmp_path / "dpo"
    proc = run_cli("finetune_dpo.py", dpo, ranked, "Antwoord kort.", "--base_model", models["chat64"], "--adapter", sft,
                   "--max_steps", "2", "--batch_size", "2", "--logging_steps", "1", check=True, timeout=600)
    assert f"chat template: the one saved with {sft}" in proc.stderr  # the SFT template carries over
    s = json.loads((dpo / "training_summary.json").read_text())
    assert s["started_from_adapter"] == str(sft) and s["steps"] == 2
    # the DPO adapter continues the SFT one (same LoRA shape), and differs from it after training
    from safetensors.torch import load_file

    a, b = load_file(sft / "adapter_model.safetensors"), load_file(dpo / "adapter_model.safetensors")
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    tok = AutoTokenizer.from_pretrained(dpo)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(models["chat64"]), dpo).eval()
    enc = tok.apply_chat_template([{"role": "user", "content": "Hoe gaat het 1?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]


def test_preference_bad_input(tmp_path, models, data):
    proc = run_main("finetune_dpo.py", tmp_path / "x", data["alpaca"], "P", "--base_model", models["chat"], "--noquant")
    assert proc.returncode == 2 and "cannot build preference pairs" in proc.stderr and not (tmp_path / "x").exists()
    proc = run_main("finetune_orpo.py", tmp_path / "x", data["oasst"], "P", "--base_model", models["chat"], "--noquant",
                   "--adapter", tmp_path / "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr
