"""Training that can reach the language, end to end on tiny chat models: the embeddings trained fully beside LoRA
at their own learning rate (tied embeddings kept tied), and full fine-tuning (every weight, no adapter), through
SFT, DPO, merging and inference."""

from __future__ import annotations

import importlib.util
import json

import torch
from conftest import run_cli, write_jsonl


def train(script, out, data, base, *extra):
    return run_cli(script, out, data, "Antwoord in het Nederlands.", "--base_model", base, "--thread_template",
                   "chatml", "--batch_size", "4", "--max_seq_length", "128", "--logging_steps", "1", "--save_steps",
                   "2", "--learning_rate", "5e-3", *extra, check=True, timeout=600)


def weights(folder):
    from safetensors.torch import load_file

    return {k: v.float() for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(f).items()}


def tied_copy(chat, folder):
    """The tiny chat model with its input and output embeddings tied (as SmolLM2's are)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(chat, tie_word_embeddings=True)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(chat).save_pretrained(folder)
    return folder


def test_embeddings_trained_beside_lora_at_their_own_rate_then_merged(tmp_path, models, ranked):
    out, merged = tmp_path / "emb", tmp_path / "merged"
    proc = train("finetune.py", out, ranked, models["chat"], "--noquant", "--train_embeddings",
                 "--embedding_learning_rate", "1e-3", "--max_steps", "4")
    assert json.loads((out / "adapter_config.json").read_text())["modules_to_save"] == ["embed_tokens", "lm_head"]
    assert "trained at 0.001, the rest at 0.005" in proc.stderr
    state = torch.load(sorted((tmp_path / "emb-checkpoints").glob("checkpoint-*"))[-1] / "optimizer.pt",
                       weights_only=False)
    assert [g["initial_lr"] for g in state["param_groups"]] == [5e-3, 1e-3]  # LoRA, then the embeddings
    assert "with its embeddings trained fully" in (out / "README.md").read_text()
    run_cli("merge_adapter.py", out, merged, "--cpu", check=True, timeout=600)
    base, after = weights(models["chat"]), weights(merged)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert (after[name] - base[name]).abs().max() > 1e-4, name  # trained, and merged into the model
    answer = run_cli("run_inference.py", merged, "Antwoord kort.", "Hoe gaat het?", "--temperature", "0",
                     "--max_new_tokens", "8", check=True, timeout=300)
    assert answer.stdout.strip()


def test_tied_embeddings_stay_tied(tmp_path, models, ranked):
    base = tied_copy(models["chat"], tmp_path / "tied")
    out, merged = tmp_path / "emb", tmp_path / "merged"
    train("finetune.py", out, ranked, base, "--noquant", "--train_embeddings", "--max_steps", "3")
    assert "embed_tokens" in json.loads((out / "adapter_config.json").read_text())["modules_to_save"]
    if importlib.util.find_spec("lm_eval"):  # the adapter itself scored by lm-eval, which ties embeddings again
        scores = evaluated_with_lm_eval(tmp_path, base, out)
        assert scores["base"]["lm_eval:leitura:acc"] in (0, 0.5, 1) and "lm_eval:leitura:acc" in scores["tuned"]
    run_cli("merge_adapter.py", out, merged, "--cpu", check=True, timeout=600)
    from transformers import AutoModelForCausalLM

    saved = weights(merged)  # one matrix, tied in the config (an untied pair would be two, and differ)
    assert "lm_head.weight" not in saved and json.loads((merged / "config.json").read_text())["tie_word_embeddings"]
    model = AutoModelForCausalLM.from_pretrained(merged)
    before = AutoModelForCausalLM.from_pretrained(base).get_input_embeddings().weight
    assert torch.equal(model.get_input_embeddings().weight, model.get_output_embeddings().weight)
    assert (model.get_input_embeddings().weight - before).abs().max() > 1e-4


def evaluated_with_lm_eval(tmp_path, base, adapter) -> dict:
    """evaluate_model.py base ADAPTER with a two-question local lm-eval task: {model: its results row}."""
    from l2l.benchmarks import write_choice_task

    items = [{"passage": "De kat slaapt op de bank.", "question": "Waar slaapt de kat?",
              "choices": ["Op de bank", "In de tuin"], "answer": 0},
             {"passage": "Jan koopt twee appels.", "question": "Hoeveel appels koopt Jan?",
              "choices": ["Drie", "Twee"], "answer": 1}]
    write_choice_task(tmp_path / "tasks", "leitura", items, "nl")
    held = write_jsonl(tmp_path / "held.jsonl", [{"instruction": f"Vraag {i}?", "output": f"Antwoord {i}."}
                                                 for i in range(2)])
    run_cli("evaluate_model.py", base, adapter, "--dataset", held, "--target_lang", "nl", "--eval_fraction", "1",
            "--n_prompts", "1", "--max_new_tokens", "3", "--thread_template", "chatml", "--lm_eval_include_path",
            tmp_path / "tasks", "--lm_eval_tasks", "leitura", "--output_dir", tmp_path / "eval", check=True,
            timeout=600)
    return {r["model"]: r for r in json.loads((tmp_path / "eval" / "results.json").read_text())["results"]}


def test_full_finetune_sft_then_dpo(tmp_path, models, ranked):
    sft, dpo = tmp_path / "sft", tmp_path / "dpo"
    proc = train("finetune.py", sft, ranked, models["chat"], "--full_finetune", "--max_steps", "3")
    assert "full fine-tuning: " in proc.stderr and "GiB for weights, gradients and optimizer state" in proc.stderr
    assert (sft / "config.json").exists() and not (sft / "adapter_config.json").exists()
    base, after = weights(models["chat"]), weights(sft)
    assert set(after) >= {"model.embed_tokens.weight", "lm_head.weight"}
    moved = [k for k in base if (after[k] - base[k]).abs().max() > 1e-5]
    assert len(moved) > len(base) // 2, moved  # every kind of weight, not an adapter's few
    card = (sft / "README.md").read_text()
    assert "fine-tuned in full" in card and "library_name: transformers" in card
    not_adapter = run_cli("merge_adapter.py", sft, tmp_path / "m", "--cpu")
    assert not_adapter.returncode == 2 and "not a LoRA adapter" in not_adapter.stderr
    train("finetune_dpo.py", dpo, ranked, str(sft), "--full_finetune", "--max_steps", "2", "--batch_size", "2")
    summary = json.loads((dpo / "training_summary.json").read_text())
    assert summary["steps"] == 2 and "rewards_margins" in summary
    assert (dpo / "model.safetensors").exists() and not (dpo / "adapter_config.json").exists()
    answer = run_cli("run_inference.py", dpo, "Antwoord kort.", "Hoe gaat het?", "--temperature", "0",
                     "--max_new_tokens", "8", check=True, timeout=300)
    assert answer.stdout.strip()
