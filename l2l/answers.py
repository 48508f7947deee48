"""Whether a generated answer answers: an answer cut to nothing, one that repeats the question, or one that loops
(the same words over and over) is no answer, whatever language it is in (evaluate_model.py's fidelity)."""

from __future__ import annotations

import re

FAULTS = ("empty", "echo", "loop")


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def loops(tokens: list[str], n: int = 4, least: int = 12) -> bool:
    """The same n-grams over and over: under half of the answer's n-grams (or of its second half's, where a
    generation that started well ends in a loop) are distinct."""
    for part in (tokens, tokens[len(tokens) // 2:]):
        grams = _ngrams(part, n)
        if len(part) >= least and len(set(grams)) < 0.5 * len(grams):
            return True
    return False


def echoes(question: list[str], answer: list[str]) -> bool:
    """The answer is mostly the question again: half of its word trigrams are the question's (or, for a short
    question or answer, it is the question's words)."""
    if len(question) < 3 or len(answer) < 3:
        return bool(answer) and set(answer) <= set(question)
    asked = set(_ngrams(question, 3))
    grams = _ngrams(answer, 3)
    return sum(g in asked for g in grams) >= 0.5 * len(grams)


def answer_fault(question: str, answer: str) -> str | None:
    """'empty', 'echo', 'loop', or None for an answer that answers."""
    a = words(answer)
    if len(a) < 2:
        return "empty"
    if echoes(words(question), a):
        return "echo"
    if loops(a):
        return "loop"
    return None
