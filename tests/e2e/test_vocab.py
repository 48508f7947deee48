"""extend_tokenizer.py, training an extended model (its new rows too), continued pretraining on raw text."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from conftest import run_cli, run_in_process, write_jsonl

PORTUGUESE = [
    "A cidade acordou cedo e as padarias abriram as portas antes do nascer do sol.",
    "Os moradores da região reclamam da falta de transporte público durante a noite.",
    "Minha avó sempre dizia que a paciência é a mãe de todas as virtudes.",
    "O governo anunciou novas medidas para a educação das crianças nas escolas públicas.",
    "Depois da chuva, o rio transbordou e inundou as ruas próximas da estação.",
    "Na semana passada, visitamos o museu e aprendemos muito sobre a história do país.",
    "A construção da nova ponte vai facilitar a ligação entre as duas margens do rio.",
    "Os estudantes organizaram uma exposição com fotografias das comunidades do interior.",
    "É importante beber água e descansar bem quando a temperatura está muito alta.",
    "A biblioteca municipal recebeu doações de livros de vários escritores brasileiros.",
    "As eleições acontecem em outubro, e a população discute as propostas dos candidatos.",
    "O médico explicou que a prevenção continua sendo a melhor forma de cuidar da saúde.",
    "Nas férias, a família viajou para o litoral e passou os dias na praia.",
    "A professora pediu que cada aluno escrevesse uma redação sobre a sua cidade natal.",
    "Os trabalhadores da fábrica conseguiram um acordo depois de muitas negociações.",
    "O festival de música reuniu artistas de todas as regiões e atraiu milhares de pessoas.",
]


def extended(tmp_path, chat, n: int = 20):
    data = write_jsonl(tmp_path / "pt.jsonl", [{"instruction": q, "output": a, "lang": "pt-BR"}
                                               for q, a in zip(PORTUGUESE[::2], PORTUGUESE[1::2])])
    out = tmp_path / "ext"
    proc = run_cli("extend_tokenizer.py", chat, data, out, "--num_new_tokens", str(n), check=True)
    assert proc.stdout.strip() == str(out)
    return data, out


def test_extended_tokenizer_cuts_as_the_base_then_joins(tmp_path, models):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, out = extended(tmp_path, models["chat"])
    base, ext = AutoTokenizer.from_pretrained(models["chat"]), AutoTokenizer.from_pretrained(out)
    info = json.loads((out / "l2l_vocab_extension.json").read_text())
    new = info["new_token_ids"]
    assert len(ext) == len(base) + 20 and new == list(range(len(base), len(base) + 20))
    assert ext.convert_ids_to_tokens(list(range(len(base)))) == base.convert_ids_to_tokens(list(range(len(base))))
    held = ["O rio da cidade é grande e as crianças brincam na praia.", "Quanto custa? 123 reais, não é?"]
    fewer = 0
    for text in PORTUGUESE + held:
        b, e = base(text)["input_ids"], ext(text)["input_ids"]
        assert ext.decode(e) == text == base.decode(b)  # lossless
        assert "".join(ext.convert_ids_to_tokens(e)) == "".join(base.convert_ids_to_tokens(b))
        expanded = [p for i in e for p in (info["pieces"][str(i)] if i >= len(base) else [i])]
        assert expanded == b  # the base's cut, joined
        fewer += len(e) < len(b)
    assert fewer >= len(PORTUGUESE) - 2
    assert info["tokens_per_word"]["after"] < info["tokens_per_word"]["before"]
    model = AutoModelForCausalLM.from_pretrained(out)
    rows = model.get_input_embeddings().weight
    basew = AutoModelForCausalLM.from_pretrained(models["chat"]).get_input_embeddings().weight
    assert rows.shape[0] == len(ext) and torch.equal(rows[: len(base)], basew[: len(base)])
    out_rows = model.get_output_embeddings().weight
    base_out = AutoModelForCausalLM.from_pretrained(models["chat"]).get_output_embeddings().weight
    for i in new:
        assert torch.allclose(rows[i], basew[info["pieces"][str(i)]].mean(0))
        assert torch.equal(out_rows[i], base_out[info["pieces"][str(i)][0]])  # output side: its first piece
        assert ext.convert_ids_to_tokens(i) == "".join(base.convert_ids_to_tokens(info["pieces"][str(i)]))


def test_a_tied_model_untied_so_its_new_output_rows_start_from_their_first_piece(tmp_path, models):
    import torch
    from test_training_modes import tied_copy
    from transformers import AutoModelForCausalLM

    tied = tied_copy(models["chat"], tmp_path / "tied")
    data = write_jsonl(tmp_path / "pt.jsonl", [{"text": t, "lang": "pt-BR"} for t in PORTUGUESE])
    kept = run_cli("extend_tokenizer.py", tied, data, tmp_path / "kept", "--num_new_tokens", "10", check=True)
    assert "output rows: tied to the input rows" in kept.stderr and "--untie_embeddings gives" in kept.stderr
    assert json.loads((tmp_path / "kept" / "l2l_vocab_extension.json").read_text())["output_rows"].startswith("tied")
    proc = run_cli("extend_tokenizer.py", tied, data, tmp_path / "ext", "--num_new_tokens", "10",
                   "--untie_embeddings", check=True)
    assert "output rows: the first piece's output row" in proc.stderr
    info = json.loads((tmp_path / "ext" / "l2l_vocab_extension.json").read_text())
    assert info["output_rows"] == "the first piece's output row"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ext")
    assert not model.config.tie_word_embeddings
    inp, out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    base = AutoModelForCausalLM.from_pretrained(tied).get_input_embeddings().weight
    assert torch.equal(out[: len(base)], base) and torch.equal(inp[: len(base)], base)
    for i in info["new_token_ids"]:
        parts = info["pieces"][str(i)]
        assert torch.equal(out[i], base[parts[0]]) and torch.allclose(inp[i], base[parts].mean(0))


def test_two_stages_new_rows_alone_then_everything(tmp_path, models):
    """EEVE's recipe: --new_rows_only trains the extended vocabulary's rows with every other weight frozen
    (continued pretraining, a TrainableTokens adapter), merged; then the merged model trained with its
    embeddings and LoRA."""
    import torch
    from test_training_modes import weights

    _, ext = extended(tmp_path, models["chat"])
    text = tmp_path / "corpus_pt.txt"
    text.write_text("\n".join(PORTUGUESE * 3) + "\n", encoding="utf-8")
    stage1, merged1 = tmp_path / "stage1", tmp_path / "merged1"
    proc = run_cli("pretrain.py", stage1, text, "--base_model", ext, "--new_rows_only", "--noquant", "--max_steps",
                   "4", "--batch_size", "2", "--max_seq_length", "64", "--learning_rate", "1e-2", "--save_steps",
                   "1000", check=True)
    assert "the 20 new rows of embed_tokens, lm_head trained, every other weight frozen" in proc.stderr
    config = json.loads((stage1 / "adapter_config.json").read_text())
    assert config["r"] == 1 and set(config["trainable_token_indices"]) == {"embed_tokens", "lm_head"}
    assert "its new vocabulary rows only" in (stage1 / "README.md").read_text()
    run_cli("merge_adapter.py", stage1, merged1, "--cpu", check=True)
    new = json.loads((ext / "l2l_vocab_extension.json").read_text())["new_token_ids"]
    before, after = weights(ext), weights(merged1)
    old = [i for i in range(after["model.embed_tokens.weight"].shape[0]) if i not in new]
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        assert torch.equal(after[name][old], before[name][old]), name  # the base's rows untouched
        assert (after[name][new] - before[name][new]).abs().max() > 1e-3, name  # the new rows trained
    assert all(torch.equal(after[k], before[k]) for k in before if "embed_tokens" not in k and "lm_head" not in k)
    data = write_jsonl(tmp_path / "sft.jsonl", [{"instruction": q, "output": a, "lang": "pt-BR"}
                                                for q, a in zip(PORTUGUESE[::2], PORTUGUESE[1::2])])
    stage2 = tmp_path / "stage2"
    run_cli("finetune.py", stage2, data, "Responda em português.", "--base_model", merged1, "--noquant",
            "--train_embeddings", "--thread_template", "chatml", "--max_steps", "2", "--batch_size", "2",
            "--save_steps", "1000", check=True)
    assert json.loads((stage2 / "adapter_config.json").read_text())["modules_to_save"] == ["embed_tokens", "lm_head"]
    refused = run_in_process("pretrain.py", tmp_path / "x", text, "--base_model", models["chat"], "--new_rows_only",
                             "--noquant")
    assert refused.returncode == 2 and "has no new vocabulary rows" in refused.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("script,quant,tied", [("finetune_dpo.py", [], False),
                                               ("finetune_orpo.py", ["--noquant"], True)])
def test_preference_training_of_the_new_rows_alone(tmp_path, models, script, quant, tied):
    """--new_rows_only in DPO (on a 4-bit base, an untied head: both sides) and ORPO (a tied model, as SmolLM2):
    only the extended vocabulary's rows move, trained in float32; every other weight of the merged model is the
    base's, and a tied model stays tied."""
    import torch
    from conftest import oasst_msg
    from safetensors.torch import load_file
    from test_training_modes import tied_copy, weights

    _, ext = extended(tmp_path, tied_copy(models["chat"], tmp_path / "tied") if tied else models["chat"])
    rows = []
    for t, (q, a) in enumerate(zip(PORTUGUESE[::2], PORTUGUESE[1::2])):
        rows += [oasst_msg(f"q{t}", None, "prompter", q, lang="pt-BR"),
                 oasst_msg(f"a{t}", f"q{t}", "assistant", a, 0, lang="pt-BR"),
                 oasst_msg(f"b{t}", f"q{t}", "assistant", "Não sei.", 1, lang="pt-BR")]
    ranked = write_jsonl(tmp_path / "ranked_pt.jsonl", rows)
    out, merged = tmp_path / "pref", tmp_path / "merged"
    proc = run_cli(script, out, ranked, "Responda em português.", "--base_model", ext, *quant,
                   "--new_rows_only", "--thread_template", "chatml", "--max_steps", "3", "--batch_size", "2",
                   "--learning_rate", "1e-2", "--save_steps", "1000", check=True, timeout=600)
    sides = ["embed_tokens"] if tied else ["embed_tokens", "lm_head"]
    assert f"new rows of {', '.join(sides)} trained, every other weight frozen" in proc.stderr
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 1
    assert "lora_r" not in (out / "README.md").read_text()  # the card lists no LoRA settings that did not apply
    deltas = [v for k, v in load_file(out / "adapter_model.safetensors").items() if "trainable_tokens_delta" in k]
    assert deltas and all(d.dtype == torch.float32 for d in deltas)
    run_cli("merge_adapter.py", out, merged, "--cpu", check=True)
    new = json.loads((ext / "l2l_vocab_extension.json").read_text())["new_token_ids"]
    before, after = weights(ext), weights(merged)
    assert ("lm_head.weight" in after) is not tied
    old = [i for i in range(after["model.embed_tokens.weight"].shape[0]) if i not in new]
    for name in [f"model.{sides[0]}.weight", *[f"{s}.weight" for s in sides[1:]]]:
        assert torch.equal(after[name][old], before[name][old]), name
        assert (after[name][new] - before[name][new]).abs().max() > 1e-4, name
    assert all(torch.equal(after[k], before[k]) for k in before if "embed_tokens" not in k and "lm_head" not in k)
    if tied and importlib.util.find_spec("lm_eval"):  # lm-eval ties the embeddings again: the new rows wrapped
        from test_training_modes import evaluated_with_lm_eval

        assert "lm_eval:leitura:acc" in evaluated_with_lm_eval(tmp_path, ext, out)["tuned"]


def test_finetune_trains_the_new_rows_and_merge_carries_them(tmp_path, models):
    """finetune.py on an extended model trains its new embedding rows (a small adapter: the rows, not the
    matrix); merge_adapter.py writes them into a model with the extended vocabulary."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data, ext = extended(tmp_path, models["chat"])
    adapter, merged = tmp_path / "tuned", tmp_path / "merged"
    proc = run_cli("finetune.py", adapter, data, "Responda em português.", "--base_model", ext, "--noquant",
                   "--thread_template", "chatml", "--max_steps", "4", "--batch_size", "2", "--learning_rate", "1e-2",
                   "--save_steps", "1000", check=True)
    assert "20 new embedding rows are trained too" in proc.stderr
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    new = json.loads((ext / "l2l_vocab_extension.json").read_text())["new_token_ids"]
    assert cfg["trainable_token_indices"] == {"embed_tokens": new, "lm_head": new}  # an untied head: both sides
    weights = load_file(adapter / "adapter_model.safetensors")
    deltas = {k.split(".token_adapter")[0].rsplit(".", 1)[-1]: v for k, v in weights.items()
              if "trainable_tokens_delta" in k}
    assert set(deltas) == {"embed_tokens", "lm_head"} and all(d.shape[0] == len(new) for d in deltas.values())
    start = AutoModelForCausalLM.from_pretrained(ext)
    before = {"embed_tokens": start.get_input_embeddings().weight[new],
              "lm_head": start.get_output_embeddings().weight[new]}
    assert all(not torch.allclose(deltas[k], before[k]) for k in deltas)  # the rows moved, on both sides
    run_cli("merge_adapter.py", adapter, merged, "--cpu", check=True)
    model = AutoModelForCausalLM.from_pretrained(merged)
    assert torch.allclose(model.get_input_embeddings().weight[new], deltas["embed_tokens"], atol=1e-6)
    assert torch.allclose(model.get_output_embeddings().weight[new], deltas["lm_head"], atol=1e-6)
    assert len(AutoTokenizer.from_pretrained(merged)) == model.get_input_embeddings().weight.shape[0]
    assert (merged / "l2l_vocab_extension.json").is_file()


def test_continued_pretraining_on_plain_text(tmp_path, models):
    """pretrain.py: plain text, packed, a held-out share; finetune.py --raw_text (the earlier spelling) runs the
    same code, says so, and refuses a dataset without text in the same line."""
    text = tmp_path / "corpus_pt.txt"
    text.write_text("\n".join(PORTUGUESE * 3) + "\n", encoding="utf-8")
    out = tmp_path / "cpt"
    proc = run_cli("pretrain.py", out, text, "--base_model", models["chat"], "--noquant",
                   "--max_steps", "3", "--batch_size", "2", "--max_seq_length", "64", "--val_fraction", "0.1",
                   "--save_steps", "1000", check=True)
    assert "continued pretraining on 43 passages, 5 held out" in proc.stderr
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["kind"] == "pretrain" and summary["steps"] == 3 and summary["train_passages"] > 0
    assert summary["train_loss"] > 0 and summary["validation_loss"] > 0
    assert "instruction_prompt" not in (out / "README.md").read_text().split("## Use")[0]
    alpaca = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "output": "b"}])
    for cmd in (["pretrain.py", tmp_path / "x", alpaca], ["finetune.py", tmp_path / "x", alpaca, "", "--raw_text"]):
        bad = run_in_process(*cmd, "--base_model", models["chat"], "--noquant")
        errors = [line for line in bad.stderr.splitlines() if "error" in line]
        assert bad.returncode == 2 and len(errors) == 1 and "has no column 'text'" in errors[0], bad.stderr
        assert not (tmp_path / "x").exists()
    assert "python pretrain.py" in bad.stderr  # finetune.py --raw_text points to the new script


def test_continued_pretraining_streams_a_mix_and_resumes(tmp_path, models):
    """pretrain.py --mix: two text files read as streams, mixed by share, the first passages of each held out;
    an interrupted run (here: a shorter --max_steps) goes on from its checkpoint."""
    pt, en = tmp_path / "pt.txt", tmp_path / "en.txt"
    pt.write_text("\n".join(PORTUGUESE * 3) + "\n", encoding="utf-8")
    en.write_text("\n".join(f"The library opens at {h} in the morning." for h in range(7, 12)) + "\n")
    out = tmp_path / "cpt"
    args = ["pretrain.py", out, pt, "--base_model", models["chat"], "--noquant", "--mix", f"{pt}=0.8,{en}=0.2",
            "--val_passages", "2", "--batch_size", "2", "--max_seq_length", "64", "--save_steps", "2"]
    first = run_cli(*args, "--max_steps", "2", check=True)
    assert f"a stream of {pt} (80%), {en} (20%); 4 passages held out" in first.stderr
    shutil.rmtree(out)  # as if killed after its checkpoint at step 2, before the adapter was written
    again = run_cli(*args, "--max_steps", "4", check=True)
    assert "resuming from" in again.stderr and "checkpoint-2" in again.stderr
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["steps"] == 4 and summary["train_passages"] == "streamed" and summary["validation_passages"] == 4


def test_a_mixed_stream_keeps_its_shares_and_its_held_out_passages(tmp_path):
    from l2l.train.config import PretrainOptions
    from l2l.train.pretrain import streamed_splits

    pt, en = tmp_path / "pt.txt", tmp_path / "en.txt"
    pt.write_text("".join(f"pt {i}\n" for i in range(3000)), encoding="utf-8")
    en.write_text("".join(f"en {i}\n" for i in range(100)), encoding="utf-8")
    cfg = PretrainOptions(tuned_model=str(tmp_path / "o"), dataset_name=str(pt), mix=f"{pt}=0.75,{en}=0.25",
                          max_steps=10, val_passages=3)
    train, held = streamed_splits(cfg)
    assert held["text"] == ["pt 0", "pt 1", "pt 2", "en 0", "en 1", "en 2"]
    seen = [row["text"] for row in train.take(2000)]
    share = sum(t.startswith("en") for t in seen) / len(seen)
    assert 0.22 < share < 0.28, share  # English read again and again: its share holds
    assert not set(held["text"]) & set(seen) and len(set(seen)) > 1400  # shuffled in a window, never held out

@pytest.mark.parametrize("case", ["slow", "too_many", "english", "wrong_lang"])
def test_extend_tokenizer_bad_input(tmp_path, models, case):
    pt = tmp_path / "pt.txt"
    pt.write_text("\n".join(PORTUGUESE) + "\n", encoding="utf-8")
    en = tmp_path / "en.txt"
    en.write_text("The city woke up early and the bakeries opened before sunrise.\n"
                  "Students organised an exhibition with photographs of rural communities.\n" * 5, encoding="utf-8")
    model, data, extra, expected = {
        "slow": (models["marian"], pt, [], "no fast tokenizer"),
        "too_many": (models["chat"], pt, ["--num_new_tokens", "5000"], "the text supports only"),
        "english": (models["chat"], en, [], "mostly English"),
        "wrong_lang": (models["chat"], pt, ["--lang", "de"], "mostly in Portuguese"),
    }[case]
    args = ["--num_new_tokens", "5", *extra] if "--num_new_tokens" not in extra else extra
    proc = run_in_process("extend_tokenizer.py", model, data, tmp_path / "out", *args)
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 2 and len(errors) == 1 and expected in errors[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_second_extension_adds_to_the_first(tmp_path, models):
    """Extending an extended model: every id new against the original base stays recorded (finetune.py trains
    them all), and the second extension's ids come after the first's."""
    data, first = extended(tmp_path, models["chat"], n=10)
    more = write_jsonl(tmp_path / "more.jsonl", [{"text": t, "lang": "pt-BR"} for t in PORTUGUESE * 2])
    second = tmp_path / "ext2"
    run_cli("extend_tokenizer.py", first, more, second, "--num_new_tokens", "8", check=True)
    one = json.loads((first / "l2l_vocab_extension.json").read_text())
    two = json.loads((second / "l2l_vocab_extension.json").read_text())
    added = two["extensions"][1]["new_token_ids"]
    assert len(one["new_token_ids"]) == 10 and len(added) == 8 and min(added) > max(one["new_token_ids"])
    assert two["new_token_ids"] == sorted(one["new_token_ids"] + added)
    assert two["base_model"] == one["base_model"] == str(models["chat"])
    assert two["base_vocab_size"] == one["base_vocab_size"]
    assert [e["extended"] for e in two["extensions"]] == [str(models["chat"]), str(first)]
