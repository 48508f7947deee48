"""Language codes: users give ISO 639-1 / BCP-47 codes (nl, pt-BR, zh-Hant) or a model's own codes
(nld_Latn, <2nl>, nl_XX, __nl__); each backend maps them onto the codes it supports with CLDR language
matching (the `langcodes` package), and an unsupported code is refused naming the closest supported ones."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable

from langcodes import Language, closest_supported_match

from l2l.cli import UsageError

# Codes CLDR does not relate to the individual languages some models use.
_ALIASES = {"ps": "pbt-Arab", "pus": "pbt-Arab"}


def parse(code: str) -> Language | None:
    """Parse a code in any of the usual spellings; None when it is no language code."""
    raw = code.strip()
    if raw.startswith("<2") and raw.endswith(">"):  # MADLAD / T5 target tokens
        raw = raw[2:-1]
    if raw.startswith("__") and raw.endswith("__"):  # M2M100 / Seamless tokens
        raw = raw[2:-2]
    raw = raw.strip(">").strip("<")
    raw = _ALIASES.get(raw.lower(), raw)
    try:
        lang = Language.get(raw)
    except Exception:  # langcodes raises several error types for garbage
        return None
    if not lang.language or not lang.is_valid():
        return None
    if lang.territory == "XX":  # mBART's "no region" marker
        lang = Language.make(language=lang.language, script=lang.script)
    return lang


def tag(code: str) -> str:
    """The canonical BCP-47 tag of a code, or the code itself when it cannot be parsed."""
    lang = parse(code)
    return str(lang) if lang else code


def same_language(a: str, b: str) -> bool:
    """True when two codes name the same language and script (pt-BR and por_Latn, zh and zho_Hans)."""
    la, lb = parse(a), parse(b)
    if la is None or lb is None:
        return a == b
    ma, mb = la.maximize(), lb.maximize()
    return ma.language == mb.language and ma.script == mb.script


def display_name(code: str) -> str:
    """English name of a language for prompts: 'Portuguese (Brazil)', 'Dutch'."""
    lang = parse(code)
    if lang is None:
        return code
    try:
        return lang.display_name()
    except Exception:
        return str(lang)


class InvalidLanguageCode(UsageError):
    """Not a language code at all."""


class UnsupportedLanguage(UsageError):
    """A language code the backend has no code for."""


def validate(code: str, what: str = "language") -> Language:
    lang = parse(code)
    if lang is None:
        raise InvalidLanguageCode(
            f"{what} {code!r} is not a language code (use ISO 639-1 / BCP-47 such as nl, pt-BR, zh-Hant)"
        )
    return lang


def match(code: str, supported: Iterable[str], backend: str, to_tag: Callable[[str], Language | None] = parse,
          max_distance: int = 10) -> str:
    """Map a user's code onto one of `supported` (a backend's own codes) or raise UnsupportedLanguage."""
    supported = list(dict.fromkeys(supported))
    if code in supported:
        return code
    wanted = parse(code)
    if wanted is not None:
        by_tag: dict[str, str] = {}
        for s in supported:
            lang = to_tag(s)
            if lang is not None:
                by_tag.setdefault(str(lang), s)
        best = closest_supported_match(str(wanted), list(by_tag), max_distance=max_distance) if by_tag else None
        if best is not None:
            found = by_tag[best]
            # An explicitly requested script must be honoured (sr-Latn is not sr-Cyrl).
            if not wanted.script or (to_tag(found) or wanted).maximize().script == wanted.script:
                return found
    raise UnsupportedLanguage(
        f"{backend} does not support language {code!r}; "
        f"close matches: {', '.join(close_matches(code, supported, to_tag)) or 'none'}"
    )


def close_matches(code: str, supported: list[str], to_tag: Callable[[str], Language | None] = parse,
                  n: int = 6) -> list[str]:
    wanted = parse(code)
    same = []
    if wanted is not None:
        same = [s for s in supported if (t := to_tag(s)) is not None and t.language == wanted.language]
    fuzzy = difflib.get_close_matches(code, supported, n=n, cutoff=0.5)
    return list(dict.fromkeys(same + fuzzy))[:n]


@functools.cache
def _detector():
    """lingua's detector over every language, built once per process (it loads its models)."""
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()


def detected_languages(texts: list[str], target: str) -> tuple[list[str | None], str]:
    """The ISO 639-1 code an offline language identifier sees in each text (None when unsure), and the
    target's code."""
    from lingua import IsoCode639_1

    code = validate(target).language
    try:
        IsoCode639_1.from_str(code)
    except (ValueError, AttributeError):
        raise UsageError(f"the language identifier does not know {target!r}") from None
    detector = _detector()
    found = [detector.detect_language_of(t) if t.strip() else None for t in texts]
    return [lang.iso_code_639_1.name.lower() if lang is not None else None for lang in found], code


@functools.cache
def _quick_detector():
    """lingua in its low-accuracy mode (trigram models only: about a second and 90 MB to load, against 25 s and
    1.3 GB), good on texts of a few sentences: what checking every translated record can afford."""
    from lingua import LanguageDetectorBuilder

    return (LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode()
            .with_preloaded_language_models().build())


def foreign_language(texts: list[str], target: str, sure: float = 0.7, unlike: float = 0.1) -> list[str | None]:
    """For each text, the ISO 639-1 code of another language the quick identifier is sure of (its confidence at
    least `sure` and the target's below `unlike`), else None: a text in the target language, or one it cannot
    tell. Give it texts of 60 characters or more."""
    from lingua import IsoCode639_1, Language

    code = validate(target).language
    try:
        wanted = Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except (ValueError, AttributeError):
        raise UsageError(f"the language identifier does not know {target!r}") from None
    out = []
    for text in texts:
        values = _quick_detector().compute_language_confidence_values(text) if text.strip() else []
        top = values[0] if values else None
        theirs = next((v.value for v in values if v.language == wanted), 0.0)
        other = top is not None and top.language != wanted and top.value >= sure and theirs < unlike
        out.append(top.language.iso_code_639_1.name.lower() if other else None)
    return out
