"""finetune.py end to end on tiny chat models: no quantization and 4-bit QLoRA on CPU, adapter reload and
generation, resume of an interrupted run, two processes under accelerate, bad input."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import ROOT, run_cli, run_main, write_jsonl


@pytest.fixture()
def threads_data(tmp_path):
    rows = []
    for t in range(12):
        rows.append({"message_id": f"q{t}", "parent_id": None, "role": "prompter", "text": f"Hoe gaat het {t}?",
                     "rank": None, "lang": "nl"})
        rows.append({"message_id": f"a{t}", "parent_id": f"q{t}", "role": "assistant",
                     "text": f"Het gaat goed, dank je wel {t}.", "rank": 0, "lang": "nl"})
    return write_jsonl(tmp_path / "oasst_nl.jsonl", rows)


def finetune(tmp_path, data, model, *extra, name="tuned", check=True, in_process=False):
    if in_process:  # a refusal: main(argv) in this process
        return run_main("finetune.py", tmp_path / name, data, "Je antwoordt altijd in het Nederlands.",
                        "--base_model", model, "--thread_template", "chatml", *extra)
    return run_cli("finetune.py", tmp_path / name, data, "Je antwoordt altijd in het Nederlands.",
                   "--base_model", model, "--thread_template", "chatml", "--batch_size", "4", "--max_seq_length", "128",
                   "--logging_steps", "1", "--save_steps", "2", "--learning_rate", "5e-3", *extra, check=check,
                   timeout=600)


def reload_and_generate(adapter_dir, base):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter_dir).eval()
    msgs = [{"role": "system", "content": "Je antwoordt altijd in het Nederlands."}, {"role": "user",
                                                                                      "content": "Hoe gaat het 3?"}]
    enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True), model


def test_sft_noquant_end_to_end(tmp_path, models, threads_data):
    proc = finetune(tmp_path, threads_data, models["chat"], "--noquant", "--max_steps", "6", "--val_fraction", "0.25",
                    "--threads_output_name", tmp_path / "threads")
    out = tmp_path / "tuned"
    assert proc.stdout.strip().endswith(str(out))
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "README.md", "loss.png", "generation_config.json"):
        assert (out / name).exists(), name
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 6 and summary["train_threads"] == 9 and summary["validation_threads"] == 3
    assert summary["processes"] == 1
    assert len(summary["curves"]["train"]) >= 6 and summary["curves"]["validation"]
    card = (out / "README.md").read_text()
    assert str(models["chat"]) in card and f"{summary['validation_loss']:.4f}" in card and "QLoRA" not in card
    # the model learns to stop: the end-of-turn token is the generation stop token
    gen = json.loads((out / "generation_config.json").read_text())
    assert 2 in ([gen["eos_token_id"]] if isinstance(gen["eos_token_id"], int) else gen["eos_token_id"])  # <|im_end|>
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 16
    text, model = reload_and_generate(out, models["chat"])
    assert isinstance(text, str)
    assert (tmp_path / "threads" / "dataset_dict.json").exists()
    # training actually moved the weights (lr 5e-3): LoRA B matrices are no longer zero

    assert any(float(p.abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)
    first, last = summary["curves"]["train"][0][1], summary["curves"]["train"][-1][1]
    assert last < first


def test_packing(tmp_path, models, threads_data):
    finetune(tmp_path, threads_data, models["chat"], "--noquant", "--max_steps", "2", "--packing")
    summary = json.loads((tmp_path / "tuned" / "training_summary.json").read_text())
    assert summary["steps"] == 2 and summary["train_loss"] > 0


def test_answers_only_loss_masks_prompts(models):
    """With a shipped template the loss covers answers and their end-of-turn token, nothing else."""
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template  # noqa: F401 - trl is importable

    from l2l import templates

    tok = AutoTokenizer.from_pretrained(models["chat"])
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Vraag"},
            {"role": "assistant", "content": "Antwoord"}]
    enc = tok.apply_chat_template(msgs, chat_template=templates.load("chatml"), tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    labels = [i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m]
    assert tok.decode(labels) == "Antwoord<|im_end|>" and labels[-1] == tok.convert_tokens_to_ids("<|im_end|>")


def test_qlora_4bit_on_cpu(tmp_path, models, threads_data):
    finetune(tmp_path, threads_data, models["chat64"], "--max_steps", "3")
    out = tmp_path / "tuned"
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 3
    assert "4-bit NF4 (QLoRA)" in (out / "README.md").read_text()
    text, _ = reload_and_generate(out, models["chat64"])
    assert isinstance(text, str)


def test_interrupted_run_resumes(tmp_path, models, threads_data):
    ckpt = tmp_path / "ckpt"
    finetune(tmp_path, threads_data, models["chat"], "--noquant", "--max_steps", "2", "--output_dir", ckpt,
             name="first")
    assert (ckpt / "checkpoint-2").is_dir()
    proc = finetune(tmp_path, threads_data, models["chat"], "--noquant", "--max_steps", "4", "--output_dir", ckpt,
                    name="second")
    assert f"resuming from {ckpt / 'checkpoint-2'}" in proc.stderr
    summary = json.loads((tmp_path / "second" / "training_summary.json").read_text())
    assert summary["steps"] == 4
    assert [s for s, _ in summary["curves"]["train"]][0] <= 3  # history carried over from the first run
    assert {s for s, _ in summary["curves"]["train"]} >= {1, 2, 3, 4}
    refused = finetune(tmp_path, threads_data, models["chat"], "--noquant", "--max_steps", "4", "--output_dir", ckpt,
                       "--learning_rate", "1e-3", "--lora_r", "4", name="third", check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "--learning_rate (0.005 -> 0.001), --lora_r (16 -> 4)" in refused.stderr and "--overwrite" in refused.stderr
    assert not (tmp_path / "third").exists() and (ckpt / "checkpoint-4").is_dir()
    fresh = finetune(tmp_path, threads_data, models["chat"], "--noquant", "--max_steps", "2", "--output_dir", ckpt,
                     "--learning_rate", "1e-3", "--lora_r", "4", "--overwrite", name="third")
    assert fresh.returncode == 0 and "resuming" not in fresh.stderr
    assert sorted(p.name for p in ckpt.glob("checkpoint-*")) == ["checkpoint-2"]  # the old run's are gone
    assert json.loads((tmp_path / "third" / "training_summary.json").read_text())["steps"] == 2


def test_two_processes_under_accelerate(tmp_path, models, threads_data):
    import subprocess

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "finetune.py"),
           str(tmp_path / "tuned"), str(threads_data), "Antwoord in het Nederlands.", "--base_model",
           str(models["chat"]),
           "--thread_template", "chatml", "--noquant", "--cpu", "--max_steps", "2", "--batch_size", "2",
           "--max_seq_length", "64", "--logging_steps", "1"]
    import os

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "tuned" / "training_summary.json").read_text())
    assert summary["steps"] == 2 and summary["processes"] == 2  # really two ranks (gloo DDP), not one
    assert proc.stdout.count(str(tmp_path / "tuned")) == 1  # only the main process writes and prints


def test_bad_input(tmp_path, models, threads_data):
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "keep.txt").write_text("x")
    proc = finetune(tmp_path, threads_data, models["chat"], "--noquant", in_process=True)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr and proc.stderr.count("error") == 1
    proc = finetune(tmp_path, threads_data, models["chat"], "--max_steps", "0", name="new", in_process=True)
    assert proc.returncode == 2 and "--max_steps" in proc.stderr
    proc = finetune(tmp_path, threads_data, tmp_path / "no_model", name="new", in_process=True)
    assert proc.returncode == 2 and "no_model" in proc.stderr
    assert not (tmp_path / "new").exists() and not (tmp_path / "new-checkpoints").exists()
    assert sorted(p.name for p in (tmp_path / "tuned").iterdir()) == ["keep.txt"]


def test_pad_token_is_never_a_word(tmp_path, models):
    """A tokenizer without a pad token gets a reserved padding token, else its end token: never a word."""
    from transformers import AutoTokenizer

    from l2l.train.loading import load_tokenizer_for_training

    tok = AutoTokenizer.from_pretrained(models["chat"])
    tok.pad_token = None
    tok.save_pretrained(tmp_path / "nopad")
    loaded = load_tokenizer_for_training(str(tmp_path / "nopad"), "right", False)
    assert loaded.pad_token == "<pad>" and loaded.pad_token in loaded.all_special_tokens


def test_base_model_template_without_markers_trains_whole_conversations(tmp_path, models, threads_data):
    proc = finetune(tmp_path, threads_data, models["chat"], "--noquant", "--max_steps", "1", "--thread_template",
                    "tokenizer")
    assert "no {% generation %} markers: training on whole conversations" in proc.stderr
    assert json.loads((tmp_path / "tuned" / "training_summary.json").read_text())["steps"] == 1
