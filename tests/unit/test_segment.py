"""Segmentation: structure kept, protected spans never translatable, every piece within the token budget."""

from __future__ import annotations

import random

import pytest
from conftest import CODE_ANSWER

from l2l.translate.segment import Segmenter, fragments, join, restore, sentences, structure


def identity(pieces):
    return join(pieces, {p.text: p.text for p in pieces})


def marked(pieces):
    """Replace every translatable piece by a marker: what remains is exactly what the model never sees."""
    return "".join("<T>" if p.translate else p.text for p in pieces)


def test_code_urls_and_markdown_stay_verbatim():
    pieces = sentences(structure(CODE_ANSWER))
    assert identity(pieces) == CODE_ANSWER
    assert marked(pieces) == (
        "<T>\n\n```python\ndef greet(name):\n    return f\"Hello {name}. How are you?\"\n```\n\n- <T>\n- <T>\n")
    sent = [(p.text, p.slots) for p in pieces if p.translate]
    assert sent == [("Here is how you do it.", ()), ("Run it with X1 today.", ("`python greet.py`",)),
                    ("Read more at X1.", ("https://docs.python.org/3/tutorial/",))]
    assert "greet" not in " ".join(text for text, _ in sent)  # what the model sees holds no code


def test_placeholders_restore_renumber_and_fall_back():
    pieces = sentences(structure("Call `a()` and `b()`. Then open https://x.org/p, or `c`."))
    units = [p for p in pieces if p.translate]
    assert [(p.text, p.slots) for p in units] == [("Call X1 and X2.", ("`a()`", "`b()`")),
                                                  ("Then open X1, or X2.", ("https://x.org/p", "`c`"))]
    # placeholders may move (word order changes) but must each come back exactly once
    assert restore("Chame X2 e X1.", units[0].slots) == "Chame `b()` e `a()`."
    for broken in ("Chame X1.", "Chame X1 e X1.", "Chame X1, X2 e X3.", "Chame."):
        assert restore(broken, units[0].slots) is None
    # the fallback translates around the spans, which stay verbatim
    frag = fragments(units[1])
    assert [(p.text, p.translate) for p in frag] == [("Then open", True), (" https://x.org/p", False),
                                                     (", or", True), (" `c`.", False)]
    text = join(pieces, {p.text: "lost" for p in units}, {p: join(fragments(p), {q.text: q.text.upper()
                for q in fragments(p) if q.translate}) for p in units})
    assert text == "CALL `a()` AND `b()`. THEN OPEN https://x.org/p, OR `c`."


def test_words_like_placeholders_force_fragments():
    pieces = structure("Press X1 then `run`.")
    assert [(p.text, p.translate, p.slots) for p in pieces] == [
        ("Press X1 then", True, ()), (" `run`.", False, ())]


def test_tables_headings_quotes_and_numbers():
    text = ("# Title here\n> Quoted words.\n| Name | Value |\n|---|---|\n| Apple | 3 |\n1. First step.\n"
            "2) Second step.\n42\n")
    pieces = sentences(structure(text))
    assert identity(pieces) == text
    assert marked(pieces) == "# <T>\n> <T>\n| <T> | <T> |\n|---|---|\n| <T> | 3 |\n1. <T>\n2) <T>\n42\n"


def test_sentences_respect_abbreviations_and_cjk():
    pieces = sentences(structure("See e.g. the U.S. rules. Then stop! Really? 你好。再见。"))
    assert [p.text for p in pieces if p.translate] == ["See e.g. the U.S. rules.", "Then stop!", "Really?", "你好。",
                                                       "再见。"]


def test_unclosed_fence_and_tilde_fences():
    text = "Intro line.\n~~~\nraw ~~~ text\n~~~\nAfter.\n```\nnever closed. Still code.\n"
    pieces = structure(text)
    assert identity(pieces) == text
    assert marked(pieces) == "<T>\n~~~\nraw ~~~ text\n~~~\n<T>\n```\nnever closed. Still code.\n"


@pytest.mark.parametrize("sentence_level", [True, False])
def test_budget_is_respected_and_text_rebuilt(sentence_level):
    rng = random.Random(1)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    paragraph = " ".join(rng.choice(words) + (rng.choice([".", ",", ""]) if rng.random() < 0.2 else "")
                         for _ in range(400))
    text = f"{paragraph}\n\n{'x' * 90}\n\n```\ncode stays\n```\n{paragraph[:200]}"
    count = lambda texts: [len(t.split()) + len(t) // 10 for t in texts]  # noqa: E731 - a fake tokenizer
    budget = 12
    pieces = Segmenter(count, budget, sentence_level=sentence_level).segment_many([text])[0]
    assert identity(pieces) == text
    units = [p.text for p in pieces if p.translate]
    assert all(n <= budget for n in count(units)), max(count(units))
    assert "code stays" not in " ".join(units)


def test_real_tokenizer_budget(models):
    """With a real tokenizer, over-long text is cut so every piece fits: nothing is ever truncated."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models["m2m"])
    count = lambda texts: [len(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]  # noqa: E731
    text = ("The quick brown fox jumps over the lazy dog and keeps running, " * 30).strip() + "\nShort line."
    pieces = Segmenter(count, 20).segment_many([text])[0]
    assert identity(pieces) == text
    sizes = count([p.text for p in pieces if p.translate])
    assert max(sizes) <= 20 and len(sizes) > 10


def test_over_long_placeholder_piece_is_cut_around_its_spans():
    text = "Run " + " and ".join(f"`cmd{i}`" for i in range(30)) + " carefully."
    count = lambda texts: [len(t.split()) for t in texts]  # noqa: E731
    pieces = Segmenter(count, 8).segment_many([text])[0]
    assert identity(pieces) == text
    assert all(not p.slots for p in pieces) and all(n <= 8 for n in count([p.text for p in pieces if p.translate]))
    assert not any("cmd" in p.text for p in pieces if p.translate)


def test_empty_and_letterless_texts_pass_through():
    seg = Segmenter(lambda ts: [len(t) for t in ts], 50)
    for text in ["", "   ", "\n\n", "1234 5678", "---", "```\nx\n```"]:
        pieces = seg.segment_many([text])[0]
        assert identity(pieces) == text
        assert not any(p.translate for p in pieces)
