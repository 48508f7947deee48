"""Thread building in-process: best-ranked paths through crafted trees, every format, templates and their
answer masks, English retention, bilingual tasks, splits."""

from __future__ import annotations

import functools

import pytest
from conftest import oasst_msg, translated_oasst

from l2l import templates
from l2l.shapes import Fields, conversations, oasst_threads
from l2l.threads.make import ThreadOptions, build_threads

msg = functools.partial(oasst_msg, lang="nl")


def paths(rows):
    return [[m["content"] for m in t["messages"]] for t in oasst_threads(rows, Fields())]


def test_best_ranked_path_ranks_missing_ties_deleted():
    rows = [
        msg("r1", None, "prompter", "Q1"),
        msg("a1", "r1", "assistant", "A1 rank 1", rank=1),
        msg("a0", "r1", "assistant", "A1 rank 0", rank=0),       # lower rank wins
        msg("an", "r1", "assistant", "A1 unranked"),              # missing rank counts as worst
        msg("q2", "a0", "prompter", "Q2"),
        msg("b0", "q2", "assistant", "A2 first tie", rank=0),     # tie: earliest in dataset order
        msg("b0x", "q2", "assistant", "A2 second tie", rank=0),
        msg("q3", "b0", "prompter", "Q3 without reply"),           # trailing user turn is cut
        msg("r2", None, "prompter", "Q alone"),                    # a root without reply gives nothing
        msg("r3", None, "prompter", "Q deleted best"),
        msg("c0", "r3", "assistant", "deleted", rank=0, deleted=True),
        msg("c1", "r3", "assistant", "failed review", rank=1, review_result=False),
        msg("c2", "r3", "assistant", "kept", rank=2),
        msg("c3", "c0", "prompter", "child of a deleted message"),
    ]
    assert paths(rows) == [["Q1", "A1 rank 0", "Q2", "A2 first tie"], ["Q deleted best", "kept"]]


def test_deep_tree_and_only_unranked_replies():
    rows = [msg("r", None, "prompter", "Q0")]
    parent = "r"
    for depth in range(1, 41):  # 40 levels below the root
        role = "assistant" if depth % 2 else "prompter"
        rows.append(msg(f"m{depth}", parent, role, f"T{depth}"))
        rows.append(msg(f"x{depth}", parent, role, f"other{depth}"))  # unranked siblings: the earliest wins
        parent = f"m{depth}"
    (thread,) = paths(rows)
    assert thread == ["Q0"] + [f"T{d}" for d in range(1, 40)]  # ends on the assistant turn T39
    roles = [m["role"] for m in oasst_threads(rows, Fields())[0]["messages"]]
    assert roles == ["user", "assistant"] * 20


def test_custom_field_names_and_formats(tmp_path):
    rows = [{"id": "1", "pid": None, "who": "prompter", "body": "Hallo?", "score": None},
            {"id": "2", "pid": "1", "who": "assistant", "body": "Hoi!", "score": 0}]
    f = Fields(text="body", rank="score", id="id", parent="pid", role="who")
    assert [m["content"] for m in oasst_threads(rows, f)[0]["messages"]] == ["Hallo?", "Hoi!"]
    alpaca = [{"instruction": "Vat samen.", "input": "Een tekst.", "output": "Kort."},
              {"instruction": "Leeg", "input": "", "output": ""}]
    (t,) = conversations(alpaca, ["instruction", "input", "output"], Fields())
    assert t["messages"] == [{"role": "user", "content": "Vat samen.\n\nEen tekst."}, {"role": "assistant",
                                                                                       "content": "Kort."}]
    dolly = [{"instruction": "Wat?", "context": "", "response": "Dit."}]
    assert conversations(dolly, ["instruction", "context", "response"], Fields())[0]["messages"][0]["content"] == "Wat?"
    share = [{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "H1"},
                                {"from": "gpt", "value": "G1"}, {"from": "human", "value": "H2"}]}]
    assert conversations(share, ["conversations"], Fields())[0]["messages"] == [
        {"role": "user", "content": "H1"}, {"role": "assistant", "content": "G1"}]


@pytest.mark.parametrize("name", ["llama3", "llama2", "chatml", "phi3"])
def test_template_masks_cover_exactly_the_answers(models, name):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models["chat"])
    template = templates.load(name)
    msgs = [{"role": "system", "content": "Wees kort."}, {"role": "user", "content": "Hoe gaat het?"},
            {"role": "assistant", "content": "Goed, dank je."}, {"role": "user", "content": "En jij?"},
            {"role": "assistant", "content": "Ook goed."}]
    enc = tok.apply_chat_template(msgs, chat_template=template, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    end = templates.end_of_turn(template, tok)
    answered = tok.decode([i for i, m in zip(ids, mask) if m])
    pad = " " if name == "llama2" else ""
    assert answered.replace(" ", "") == f"{pad}Goed, dank je.{pad}{end}{pad}Ook goed.{pad}{end}".replace(" ", "")
    assert ids.count(tok.bos_token_id) == (2 if name == "llama2" else 1 if name == "llama3" else 0)  # no double BOS
    prompt = tok.apply_chat_template(msgs[:2], chat_template=template, tokenize=False, add_generation_prompt=True)
    assert "Hoe gaat het?" in prompt and "Goed" not in prompt


def test_english_retention_and_translation_tasks(tmp_path):
    data = translated_oasst(tmp_path)
    opts = ThreadOptions(dataset=str(data), instruction_prompt="Antwoord in het Nederlands.", english_fraction=0.2,
                         translation_task_fraction=0.4, seed=1)
    threads = build_threads(opts)["train"]
    by_origin = {}
    for t in threads:
        by_origin.setdefault(t["origin"], []).append(t)
    assert len(by_origin["translated"]) == 10
    assert len(by_origin["english"]) == 3  # 20 % of the final mix (before tasks): 0.25 x 10 = 2.5, rounded up
    assert len(by_origin["translation_task"]) == 4
    for t in by_origin["english"]:
        assert t["messages"][0]["role"] == "user" and t["messages"][0]["content"].startswith("Question")
    for t in by_origin["translated"]:
        assert t["messages"][0] == {"role": "system", "content": "Antwoord in het Nederlands."}
    directions = set()
    for t in by_origin["translation_task"]:
        user, answer = t["messages"][1]["content"], t["messages"][2]["content"]
        if "from English to Dutch" in user:
            directions.add("en->nl")
            assert answer.startswith(("Vraag", "Antwoord")) and user.endswith(answer.replace("Vraag", "Question")
                                                                                 .replace("Antwoord", "Answer"))
        else:
            assert "from Dutch to English" in user
            directions.add("nl->en")
            assert answer.startswith(("Question", "Answer"))
    assert directions == {"en->nl", "nl->en"}
    assert build_threads(opts) == build_threads(opts)  # seeded: the same every time


def test_splits_and_max_samples(tmp_path):
    data = translated_oasst(tmp_path)
    opts = ThreadOptions(dataset=str(data), instruction_prompt=None, val_fraction=0.2, test_fraction=0.1, max_samples=5)
    result = build_threads(opts)
    assert len(result["validation"]) == 2 and len(result["test"]) == 1 and len(result["train"]) == 5
    ids = [t["id"] for split in result.values() for t in split]
    assert len(ids) == len(set(ids))  # no thread in two splits
