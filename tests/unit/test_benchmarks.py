"""The per-language benchmark presets name real lm-eval tasks; local tasks are indexed by lm-eval by name."""

from __future__ import annotations

import importlib.util

import pytest

from l2l import benchmarks

needs_lm_eval = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None,
                                   reason="lm-eval is not installed (requirements-eval.txt; make dev installs it)")


@pytest.fixture(scope="module")
def manager():
    from lm_eval.tasks import TaskManager

    return TaskManager()


@needs_lm_eval
def test_every_preset_is_a_task_of_the_installed_lm_eval(manager):
    known = set(manager.all_tasks)
    missing = [(lang, task) for lang, rows in benchmarks.PRESETS.items() for _, task, _ in rows if task not in known]
    assert not missing
    assert all(kind in benchmarks.KINDS for rows in benchmarks.PRESETS.values() for *_, kind in rows)
    assert all(any(kind == "native" for *_, kind in rows) for rows in benchmarks.PRESETS.values())


def test_presets_and_words_follow_the_language_not_the_region():
    assert benchmarks.presets("pt-BR") == benchmarks.presets("pt") and benchmarks.words("pt-BR")[1] == "Pergunta"
    assert benchmarks.words("sw") == benchmarks.WORDS["en"]  # no words known: English ones, said plainly
    assert "no benchmark presets for sw" in benchmarks.preset_table("sw")
    assert "| INCLUDE | include_base_44_hebrew | native |" in benchmarks.preset_table("he")


@needs_lm_eval
def test_a_written_choice_task_is_found_by_name_with_target_language_words(tmp_path):
    from lm_eval.tasks import TaskManager, get_task_dict

    items = [{"passage": "Het regent.", "question": "Wat doet het weer?", "choices": ["Regenen", "Sneeuwen"],
              "answer": 0}]
    benchmarks.write_choice_task(tmp_path, "lezen_nl", items, "nl")
    manager = TaskManager(include_path=str(tmp_path))
    assert "lezen_nl" in manager.all_tasks
    task = get_task_dict(["lezen_nl"], manager)["lezen_nl"]
    doc = next(iter(task.test_docs()))
    assert task.doc_to_text(doc) == "Tekst: Het regent.\nVraag: Wat doet het weer?\nAntwoord:"
    assert task.doc_to_choice(doc) == ["Regenen", "Sneeuwen"] and task.doc_to_target(doc) == 0


@pytest.mark.skipif(importlib.util.find_spec("chatterbot_corpus") is None,
                    reason="needs chatterbot-corpus (requirements.txt)")
def test_the_dialog_judge_is_every_portuguese_conversation_once(tmp_path):
    """bench/realdata.py's human dialogs: each first question once, turns alternating from the user's, all of
    them read by the thread builder evaluate_model.py --dialog_dataset uses, in the same order for a seed."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from realdata import chatterbot_dialogs

    from l2l.threads.make import ThreadOptions, build_threads

    path = chatterbot_dialogs(tmp_path / "d.jsonl")
    rows = [json.loads(line)["messages"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 250
    assert all(len(t) >= 2 and [m["role"] for m in t] == ["user", "assistant"] * (len(t) // 2) + ["user"] * (len(t) % 2)
               and all(m["content"].strip() for m in t) for t in rows)
    firsts = [t[0]["content"].casefold().rstrip("?!. ") for t in rows]
    assert len(set(firsts)) == len(firsts)
    assert chatterbot_dialogs(tmp_path / "again.jsonl").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")
    threads = build_threads(ThreadOptions(dataset=str(path), val_fraction=0.0))
    assert sum(len(v) for v in threads.values()) == len(rows)


@pytest.mark.skipif(importlib.util.find_spec("chatterbot_corpus") is None or importlib.util.find_spec("aiml") is None,
                    reason="needs chatterbot-corpus (requirements.txt) and python-aiml (requirements-nodeps.txt)")
def test_the_small_talk_shares_nothing_with_the_dialog_judge(tmp_path):
    """bench/realdata.py's ALICE small talk: questions and plain answers, seeded, and no question or answer that is
    a turn of chatterbot-corpus (whose files grew partly out of ALICE's), in English or Portuguese."""
    import json
    import sys
    from pathlib import Path

    import yaml

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from realdata import _words, alice_small_talk, package_file

    rows = [json.loads(line) for line in alice_small_talk(tmp_path / "t.jsonl", 400).read_text(
        encoding="utf-8").splitlines()]
    assert len(rows) == 400 and len({r["instruction"] for r in rows}) == 400
    assert all(r["instruction"].endswith("?") and len(r["output"].split()) >= 4 and "<" not in r["output"]
               and r["input"] == "" for r in rows)
    turns = {_words(str(t)) for f in package_file("chatterbot_corpus", "data").glob("*/*.yml")
             for conv in yaml.safe_load(f.read_text(encoding="utf-8")).get("conversations") or [] for t in conv}
    assert len(turns) > 1000 and not any(_words(r["instruction"]) in turns or _words(r["output"]) in turns
                                         for r in rows)
    assert alice_small_talk(tmp_path / "again.jsonl", 400).read_text(encoding="utf-8") == (
        tmp_path / "t.jsonl").read_text(encoding="utf-8")
