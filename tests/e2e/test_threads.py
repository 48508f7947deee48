"""`python -m threads` end to end, and held-out records kept out of training in every form (the thread
building itself is tests/unit/test_thread_building.py)."""

from __future__ import annotations

from conftest import load_records, run_cli, run_in_process, translated_oasst, write_jsonl


def test_held_out_records_reach_training_in_no_form(tmp_path, models):
    """--val_fraction sets whole records apart before English threads and translation tasks are mixed in:
    no held-out question reaches train in Dutch, in English or as a task, and evaluate_model.py's
    --eval_fraction with the same seed scores exactly those records."""
    import argparse

    from evaluate_model import held_out

    data = translated_oasst(tmp_path)
    out = tmp_path / "threads"
    run_cli("-m", "threads", data, out, "--base_model", models["chat"], "--thread_template", "chatml",
            "--english_fraction", "0.3", "--translation_task_fraction", "0.5", "--val_fraction", "0.3",
            "--seed", "7", check=True)
    ds = load_records(out)
    held = {r["messages"][0]["content"].split()[-1] for r in ds["validation"] if r["origin"] == "translated"}
    assert len(held) == 3  # 3 of the 10 trees: "Vraag 4?" -> "4?"
    train_text = " ".join(m["content"] for r in ds["train"] for m in r["messages"])
    for number in held:
        assert f"Vraag {number}" not in train_text and f"Question {number}" not in train_text
    assert {r["origin"] for r in ds["train"]} == {"translated", "english", "translation_task"}
    args = argparse.Namespace(instruction_prompt=None, seed=7, trust_remote_code=False, eval_fraction=0.3,
                              n_threads=100)
    scored = {t[0]["content"].split()[-1] for t in held_out(args, str(data))}
    assert scored == held


def test_threads_cli_end_to_end(tmp_path, models):
    data = translated_oasst(tmp_path)
    out = tmp_path / "threads"
    proc = run_cli("-m", "threads", data, out, "--base_model", models["chat"], "--instruction_prompt", "Antwoord kort.",
                   "--thread_template", "chatml", "--english_fraction", "0.2", "--val_fraction", "0.2", check=True)
    assert "train:" in proc.stderr and "validation:" in proc.stderr
    ds = load_records(out)
    assert sorted(ds) == ["train", "validation"] and len(ds["train"]) + len(ds["validation"]) == 13
    row = next(r for r in ds["train"] if r["origin"] == "translated")
    assert row["text"].startswith("<|im_start|>system\nAntwoord kort.<|im_end|>\n<|im_start|>user\nVraag")
    assert row["messages"][-1]["role"] == "assistant"
    bad = run_in_process("-m", "threads", data, tmp_path / "x", "--base_model", models["chat"], "--thread_template",
                         "nope")
    assert bad.returncode == 2 and "--thread_template 'nope'" in bad.stderr and not (tmp_path / "x").exists()
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"instruction": "a", "output": "b"}])
    bad = run_in_process("-m", "threads", plain, tmp_path / "x", "--base_model", models["chat"], "--english_fraction",
                         "0.1")
    assert bad.returncode == 2 and "--keep_source" in bad.stderr
    bad = run_in_process("-m", "threads", data, tmp_path / "x", "--base_model", models["chat"], "--val_fraction", "1.5")
    assert bad.returncode == 2 and "--val_fraction" in bad.stderr
