"""Other people's tools: threads and pairs in the shapes axolotl, LLaMA-Factory and unsloth read, and a tuned
model exported to GGUF and run by llama.cpp itself (llama-cpp-python), next-token parity with transformers."""

from __future__ import annotations

import json

import pytest
from conftest import load_records, oasst_msg, run_cli, run_in_process, translated_oasst, write_jsonl

from l2l import templates
from l2l.templates import TRAINING_FILE

FORMATS = ("messages", "sharegpt", "alpaca")
ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_alternation(roles: list[str], ends_with: str | None) -> None:
    """LLaMA-Factory's rule: an optional system message first, then user and assistant turns in turn."""
    turns = roles[1:] if roles and roles[0] == "system" else roles
    assert "system" not in turns and turns and turns[0] == "user"
    assert all(r == ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(turns))
    if ends_with:
        assert turns[-1] == ends_with


def thread_from_row(row: dict, fmt: str) -> list[dict]:
    """Back to messages, through the documented schema of each format (a missing or stray key fails)."""
    if fmt == "messages":
        assert set(row) == {"messages"}
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in row["messages"])
        return row["messages"]
    if fmt == "sharegpt":
        assert set(row) == {"conversations"}
        assert all(set(m) == {"from", "value"} and m["from"] in ROLES for m in row["conversations"])
        return [{"role": ROLES[m["from"]], "content": m["value"]} for m in row["conversations"]]
    assert set(row) == {"instruction", "input", "output", "system", "history"} and row["input"] == ""
    assert all(isinstance(h, list) and len(h) == 2 for h in row["history"])
    msgs = [{"role": "system", "content": row["system"]}] if row["system"] else []
    for q, a in row["history"]:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return msgs + [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]


def check_dataset_info(folder, fmt: str, splits: list[str], preference: bool) -> None:
    """dataset_info.json: a LLaMA-Factory entry per split whose columns exist in the file."""
    info = json.loads((folder / "dataset_info.json").read_text())
    assert sorted(info) == sorted(f"{folder.name}_{s}" for s in splits)
    for entry in info.values():
        rows = read_jsonl(folder / entry["file_name"])
        assert entry.get("ranking", False) is preference
        assert entry.get("formatting", "alpaca") == ("alpaca" if fmt == "alpaca" else "sharegpt")
        assert all(col in rows[0] for col in entry["columns"].values())
        if fmt == "messages":
            assert entry["tags"]["role_tag"] == "role" and entry["tags"]["user_tag"] == "user"


@pytest.mark.parametrize("fmt", FORMATS)
def test_threads_in_other_trainers_formats(tmp_path, models, fmt):
    """The same threads as the datasets output, message for message, in each tool's documented shape; no
    --base_model needed."""
    data = translated_oasst(tmp_path)
    common = ["--instruction_prompt", "Antwoord kort.", "--english_fraction", "0.2", "--val_fraction", "0.2"]
    run_in_process("-m", "threads", data, tmp_path / "ref", "--base_model", models["chat"], "--thread_template",
                   "chatml", *common, check=True)
    out = tmp_path / f"th_{fmt}"
    proc = run_in_process("-m", "threads", data, out, "--output_format", fmt, *common, check=True)
    assert proc.stdout.strip() == str(out)
    ref = load_records(tmp_path / "ref")
    assert sorted(p.name for p in out.iterdir()) == [".l2l_output.json", "dataset_info.json", "train.jsonl",
                                                     "validation.jsonl"]
    for split in ("train", "validation"):
        rows = read_jsonl(out / f"{split}.jsonl")
        threads = [thread_from_row(r, fmt) for r in rows]
        for t in threads:
            check_alternation([m["role"] for m in t], ends_with="assistant")
        assert threads == [r["messages"] for r in ref[split]]
    assert any(t[0] == {"role": "system", "content": "Antwoord kort."} for t in threads)
    check_dataset_info(out, fmt, ["train", "validation"], preference=False)


def pair_from_row(row: dict, fmt: str) -> dict:
    if fmt == "messages":
        assert set(row) == {"messages", "chosen", "rejected"}
        prompt, chosen, rejected = row["messages"], row["chosen"], row["rejected"]
    elif fmt == "sharegpt":
        assert set(row) == {"conversations", "chosen", "rejected"}
        conv = [{"role": ROLES[m["from"]], "content": m["value"]} for m in row["conversations"]]
        prompt, chosen, rejected = conv, *({"role": ROLES[row[k]["from"]], "content": row[k]["value"]}
                                           for k in ("chosen", "rejected"))
    else:
        assert set(row) == {"instruction", "input", "system", "history", "chosen", "rejected"}
        prompt = [{"role": "system", "content": row["system"]}] if row["system"] else []
        for q, a in row["history"]:
            prompt += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        prompt.append({"role": "user", "content": row["instruction"]})
        chosen, rejected = ({"role": "assistant", "content": row[k]} for k in ("chosen", "rejected"))
    check_alternation([m["role"] for m in prompt], ends_with="user")
    assert chosen["role"] == rejected["role"] == "assistant"
    return {"prompt": prompt, "chosen": [chosen], "rejected": [rejected]}


@pytest.mark.parametrize("fmt", FORMATS)
def test_preference_pairs_in_other_trainers_formats(tmp_path, models, fmt):
    rows = []
    for t in range(4):  # two-turn trees: the second pair's prompt carries a history
        rows += [oasst_msg(f"q{t}", None, "prompter", f"Hoe gaat het {t}?"),
                 oasst_msg(f"a{t}", f"q{t}", "assistant", f"Het gaat goed, dank je {t}.", 0),
                 oasst_msg(f"b{t}", f"q{t}", "assistant", f"Slecht {t}.", 1),
                 oasst_msg(f"r{t}", f"a{t}", "prompter", f"Waarom {t}?"),
                 oasst_msg(f"c{t}", f"r{t}", "assistant", f"Omdat de zon schijnt {t}.", 0),
                 oasst_msg(f"d{t}", f"r{t}", "assistant", f"Geen idee {t}.", 1)]
    data = write_jsonl(tmp_path / "ranked.jsonl", rows)
    run_in_process("-m", "threads", data, tmp_path / "ref", "--base_model", models["chat"], "--preference",
                   "--instruction_prompt", "Wees kort.", check=True)
    out = tmp_path / f"pairs_{fmt}"
    run_in_process("-m", "threads", data, out, "--preference", "--output_format", fmt, "--instruction_prompt",
                   "Wees kort.", check=True)
    ref = load_records(tmp_path / "ref")["train"]
    pairs = [pair_from_row(r, fmt) for r in read_jsonl(out / "train.jsonl")]
    assert pairs == [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in ref] and len(pairs) == 8
    assert sum(len(p["prompt"]) == 4 for p in pairs) == 4  # system, question, answer, follow-up
    check_dataset_info(out, fmt, ["train"], preference=True)


def test_other_formats_refuse_what_they_cannot_do(tmp_path):
    data = translated_oasst(tmp_path)
    proc = run_in_process("-m", "threads", data, "me/threads", "--output_format", "sharegpt", "--push_to_hub")
    assert proc.returncode == 2 and "--push_to_hub takes the datasets format" in proc.stderr
    proc = run_in_process("-m", "threads", data, tmp_path / "x")
    assert proc.returncode == 2 and "--base_model is required" in proc.stderr and not (tmp_path / "x").exists()


needs_llama_cpp = pytest.mark.skipif(__import__("importlib").util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed (requirements-dev.txt)")


@pytest.fixture(scope="module")
def smollm2_adapter(tmp_path_factory, smollm2_cache):
    """A real finetune.py adapter on the real SmolLM2-135M-Instruct (a few steps, enough to move it)."""
    _, base = smollm2_cache
    tmp = tmp_path_factory.mktemp("gguf")
    adapter = tmp / "smollm2-nl"
    run_cli("finetune.py", adapter, translated_oasst(tmp), "Antwoord in het Nederlands.", "--base_model", base,
            "--noquant", "--thread_template", "chatml", "--max_steps", "4", "--batch_size", "2", "--learning_rate",
            "3e-3", "--lora_r", "8", "--max_seq_length", "128", "--save_steps", "1000", check=True, timeout=900)
    return base, adapter


def hf_logits(model_dir, adapter, ids):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    with torch.no_grad():
        return model.eval()(torch.tensor([ids])).logits[0].numpy()


@needs_llama_cpp
def test_gguf_export_runs_in_llama_cpp_like_transformers(tmp_path, smollm2_adapter):
    """export_gguf.py on a real adapter: llama.cpp reads the same tokens, the chat template, and, fed the same
    token ids, predicts the same next tokens as transformers on the merged model (f16 against float32: only
    positions where transformers' top two are nearly tied may differ)."""
    import numpy as np
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    base, adapter = smollm2_adapter
    out = tmp_path / "smollm2-nl.gguf"
    proc = run_cli("export_gguf.py", adapter, out, check=True, timeout=900)
    assert "FROM ./smollm2-nl.gguf" in proc.stdout and 'PARAMETER stop "<|im_end|>"' in proc.stdout
    assert 'SYSTEM "Antwoord in het Nederlands."' in proc.stdout and f"llama-cli -m {out}" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["smollm2-nl.gguf"]  # no work folder left behind
    tok = AutoTokenizer.from_pretrained(adapter)
    chat = [{"role": "system", "content": "Antwoord in het Nederlands."},
            {"role": "user", "content": "Vraag 3? Waarom is de lucht blauw, en hoe ver is de zon?"}]
    text = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False) + "De lucht is blauw omdat"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    llm = Llama(model_path=str(out), logits_all=True, n_ctx=256, n_threads=1, verbose=False)
    assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids
    assert llm.metadata["tokenizer.chat_template"] == tok.chat_template
    assert "{% generation" not in tok.chat_template and "{% generation" in (adapter / TRAINING_FILE).read_text()
    assert templates.shipped_name(tok.chat_template) == "chatml"  # the Modelfile formats the chat the same way
    assert f'TEMPLATE """{templates.ollama_template(tok.chat_template)}"""' in proc.stdout
    llm.eval(ids)
    ours = np.array(llm.scores[: len(ids)])
    theirs = hf_logits(base, adapter, ids)
    top2 = np.sort(theirs, axis=-1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 0.1
    assert decided.mean() > 0.8
    assert (ours.argmax(-1) == theirs.argmax(-1))[decided].all()
    assert np.corrcoef(ours[-1], theirs[-1])[0, 1] > 0.999
    moved = hf_logits(base, None, ids)  # the adapter changed the model, so the file carries the tuned weights
    assert np.abs(moved[-1] - theirs[-1]).max() > 0.5


@needs_llama_cpp
def test_gguf_quantized_with_llama_cpp_and_bad_input(tmp_path, smollm2_adapter, models):
    from llama_cpp import Llama

    base, adapter = smollm2_adapter
    out = tmp_path / "q4.gguf"
    run_cli("export_gguf.py", adapter, out, "--outtype", "q4_k_m", "--system", "Wees kort.", check=True, timeout=900)
    assert out.stat().st_size < 120 * 2**20  # f16 is ~260 MiB
    llm = Llama(model_path=str(out), n_ctx=256, n_threads=1, verbose=False)
    reply = llm.create_chat_completion([{"role": "user", "content": "What is the capital of France?"}],
                                       max_tokens=8, temperature=0)
    assert reply["choices"][0]["message"]["content"].strip()
    again = run_cli("export_gguf.py", adapter, out)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    bad = run_cli("export_gguf.py", models["marian"], tmp_path / "marian.gguf")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "cannot convert the architecture MarianMTModel" in bad.stderr and not (tmp_path / "marian.gguf").exists()
    bad = run_cli("export_gguf.py", adapter, tmp_path / "model.bin")
    assert bad.returncode == 2 and "should end in .gguf" in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q4.gguf"]


@needs_llama_cpp
def test_gguf_of_an_extended_vocabulary(tmp_path, smollm2_cache):
    """A vocabulary extended by extend_tokenizer.py reaches llama.cpp whole: it cuts Portuguese into the same
    ids as transformers, new tokens included (the converter recognises the pre-tokenizer on the base's)."""
    import numpy as np
    from llama_cpp import Llama
    from test_vocab import PORTUGUESE
    from transformers import AutoTokenizer

    _, base = smollm2_cache
    text = tmp_path / "pt.txt"
    text.write_text("\n".join(PORTUGUESE * 3) + "\n", encoding="utf-8")  # every pair seen often enough
    ext = tmp_path / "smollm2-pt"
    run_cli("extend_tokenizer.py", base, text, ext, "--num_new_tokens", "30", check=True, timeout=600)
    out = tmp_path / "ext.gguf"
    run_cli("export_gguf.py", ext, out, check=True, timeout=900)
    tok = AutoTokenizer.from_pretrained(ext)
    sentence = "Os moradores da cidade reclamam da falta de transporte público nas escolas."
    ids = tok(sentence, add_special_tokens=False)["input_ids"]
    assert any(i >= 49152 for i in ids)
    llm = Llama(model_path=str(out), logits_all=True, n_ctx=128, n_threads=1, verbose=False)
    assert llm.tokenize(sentence.encode(), add_bos=False, special=True) == ids
    assert llm.n_vocab() == len(tok)
    llm.eval(ids)
    ours, theirs = np.array(llm.scores[: len(ids)]), hf_logits(ext, None, ids)
    top2 = np.sort(theirs, axis=-1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] > 0.1
    assert (ours.argmax(-1) == theirs.argmax(-1))[decided].all()
