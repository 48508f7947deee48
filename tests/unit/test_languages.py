"""Language codes: user codes map onto each backend's own codes; unsupported ones name close matches."""

from __future__ import annotations

import pytest
from transformers.models.mbart50.tokenization_mbart50 import FAIRSEQ_LANGUAGE_CODES as MBART
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB

from l2l import languages
from l2l.languages import UnsupportedLanguage


@pytest.mark.parametrize("code,expected", [
    ("nl", "nld_Latn"), ("nld_Latn", "nld_Latn"), ("pt-BR", "por_Latn"), ("pt_BR", "por_Latn"),
    ("zh", "zho_Hans"), ("zh-Hant", "zho_Hant"), ("zh-TW", "zho_Hant"), ("ar", "arb_Arab"), ("fa", "pes_Arab"),
    ("iw", "heb_Hebr"), ("no", "nob_Latn"), ("ps", "pbt_Arab"), ("en-US", "eng_Latn"),
])
def test_nllb_mapping(code, expected):
    assert languages.match(code, NLLB, "nllb") == expected


@pytest.mark.parametrize("code,expected", [("nl", "nl_XX"), ("xh", "xh_ZA"), ("xh_ZA", "xh_ZA"), ("pt-BR", "pt_XX"),
                                           ("en", "en_XX")])
def test_mbart_mapping(code, expected):
    assert languages.match(code, MBART, "mbart") == expected


def test_madlad_tokens():
    codes = ["<2nl>", "<2pt>", "<2zh>", "<2zh_Hant>"]
    assert languages.match("zh-TW", codes, "madlad") == "<2zh_Hant>"
    assert languages.match("pt-BR", codes, "madlad") == "<2pt>"


def test_unsupported_names_close_matches():
    with pytest.raises(UnsupportedLanguage) as e:
        languages.match("zh-TW", MBART, "mbart")
    assert "zh_CN" in str(e.value)
    with pytest.raises(UnsupportedLanguage) as e:
        languages.match("sr-Latn", NLLB, "nllb")  # only Cyrillic Serbian: an explicit script is honoured
    assert "srp_Cyrl" in str(e.value)
    with pytest.raises(UnsupportedLanguage) as e:
        languages.match("nld_Latm", NLLB, "nllb")  # a typo
    assert "nld_Latn" in str(e.value)


def test_same_language_and_names():
    assert languages.same_language("pt-BR", "por_Latn")
    assert languages.same_language("nl", "nld_Latn")
    assert not languages.same_language("zh-Hant", "zho_Hans")
    assert languages.display_name("pt-BR") == "Portuguese (Brazil)"
    assert languages.parse("klingon") is None
