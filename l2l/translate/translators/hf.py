"""Sequence-to-sequence MT models from the Hugging Face Hub (or local folders of the same architecture):
OPUS-MT (Marian), M2M100, NLLB-200, mBART-50, MADLAD-400 (T5) and SeamlessM4T-v2."""

from __future__ import annotations

import re
from collections import OrderedDict

from l2l import languages
from l2l.cli import ModelNotFound, UsageError, log
from l2l.modeling import load_model, load_tokenizer
from l2l.translate.translators.base import PairUnavailable, Translator, register


def new_token_caps(input_lengths: list[int], max_length: int | None, slack: int = 16,
                   limit: int | None = None) -> list[int]:
    """How many tokens each piece may generate: --max_length, else twice its input plus some slack.

    The batch generates up to the largest cap and each row is then cut at its own. Greedy decoding of a row
    does not depend on the other rows, so a piece translates the same whatever it is batched with: shards,
    resumed runs and batch sizes give identical output.
    """
    caps = [max_length or 2 * int(n) + slack for n in input_lengths]
    return [min(c, limit) for c in caps] if limit else caps


def position_limit(model, used: int = 0) -> int | None:
    """How many more tokens the model's (decoder) position table allows, when it has one (T5 has none)."""
    config = model.config
    for name in ("max_target_positions", "max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return max(1, value - used)
    return None


def generate_rows(model, enc, options, decoder_prefix: int, generate_kwargs: dict) -> list[list[int]]:
    """Output ids per row of a transformers model, each cut at its own cap."""
    lengths = enc["attention_mask"].sum(dim=1).tolist()
    out, caps = generate_capped(model, enc.to(model.device), lengths, options, used=decoder_prefix, **generate_kwargs)
    # rows start with the decoder prefix (not counted by the cap)
    rows = [seq[decoder_prefix:decoder_prefix + cap].tolist() for seq, cap in zip(out, caps)]
    eos = getattr(model.generation_config, "forced_eos_token_id", None)
    if eos is not None:  # alone, a row that reaches its cap gets the end token forced in its last place
        eos_ids = set(eos) if isinstance(eos, list) else {eos}
        rows = [r[:-1] if len(r) >= cap and not eos_ids & set(r) else r for r, cap in zip(rows, caps)]
    return rows


def ct2_translate(model, tokenizer, texts: list[str], encode, options, decoder_prefix: int,
                  prefix_token: str | None, skip: set[str]) -> list[str]:
    """Translations by a CTranslate2 model: tokens in, tokens out, the same caps as generate_rows."""
    from l2l.translate.translators.ct2 import detokenize, source_tokens

    rows = source_tokens(tokenizer, texts, encode)
    caps = new_token_caps([len(r) for r in rows], options.max_length, limit=position_limit(model, decoder_prefix))
    outs = model.translate_tokens(rows, caps, prefix_token, options.num_beams)
    return [detokenize(tokenizer, tokens, skip) for tokens in outs]


def generate_capped(model, enc, input_lengths: list[int], options, slack: int = 16, used: int = 1, **kwargs):
    """Greedy (or beam) generation up to the largest cap; returns the output ids and each row's cap.
    `used`: positions the output already takes (decoder prefix, or the prompt of a decoder-only model)."""
    import torch

    caps = new_token_caps(input_lengths, options.max_length, slack, position_limit(model, used))
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=max(caps), num_beams=options.num_beams, do_sample=False, **kwargs)
    return out, caps


class HFSeq2Seq(Translator):
    """Shared generation path; subclasses say where language codes live and how they steer the model."""

    sizes: dict[str, str] = {}
    default_size: str | None = None
    code_pattern: re.Pattern | None = None  # which vocabulary tokens are language codes
    sets_src_lang = False    # the tokenizer adds the source language token (tokenizer.src_lang = ...)
    forced_bos = False       # the decoder is steered by forcing the target language token first

    def __init__(self, options):
        super().__init__(options)
        self._tokenizer = None
        self._model = None
        self._codes: list[str] | None = None
        self._lang_ids: set[int] | None = None
        self._lang_tokens: set[str] | None = None

    @classmethod
    def backend_flags(cls) -> dict[str, dict]:
        sizes = {"model_size": {"default": cls.default_size, "choices": cls.size_choices(), "type": str.lower,
                                "help": f"Model size. Default {cls.default_size}."}} if cls.sizes else {}
        return {**sizes, "model_name": {"help": "A Hub id or local folder of this architecture, instead of the "
                                                "default model."}}

    @classmethod
    def size_choices(cls) -> list[str]:
        return list(cls.sizes)

    @property
    def model_id(self) -> str:
        if self.options.model_name:
            return self.options.model_name
        return self.sizes[self.options.model_size or self.default_size]

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_id, trust_remote_code=self.options.trust_remote_code)
        return self._tokenizer

    auto_class_name = "AutoModelForSeq2SeqLM"
    decoder_prefix = 1  # tokens the decoder starts from (not counted by max_new_tokens)

    supports_ct2 = True

    @property
    def engine(self) -> str:
        return self.options.engine

    def load(self) -> None:
        if self._model is None:
            self._model = self._load_one(self.model_id)

    def _load_one(self, model_id: str):
        """The model behind this backend: transformers, or CTranslate2 with --engine ctranslate2."""
        if self.engine == "ctranslate2":
            from l2l.translate.translators.ct2 import CT2Model

            return CT2Model(model_id, self.options.device, self.options.ct2_compute_type,
                            trust_remote_code=self.options.trust_remote_code)
        import transformers

        return load_model(getattr(transformers, self.auto_class_name), model_id, device=self.options.device,
                          quant4=self.options.quant4, quant8=self.options.quant8,
                          trust_remote_code=self.options.trust_remote_code)

    # languages -----------------------------------------------------------------------------------
    def language_codes(self) -> list[str]:
        """The backend's language codes, read once: reading them scans the whole vocabulary (256k for NLLB)."""
        if self._codes is None:
            self._codes = self._read_language_codes()
        return self._codes

    def _read_language_codes(self) -> list[str]:
        return sorted(t for t in self.tokenizer.get_vocab() if self.code_pattern.fullmatch(t))

    @staticmethod
    def code_to_tag(code: str):
        return languages.parse(code)

    def target_code(self, code: str) -> str:
        codes = self.language_codes()
        if not codes:
            raise UsageError(f"{self.model_id} has no language codes in its tokenizer: is it a {self.name} model?")
        return languages.match(code, codes, f"{self.name} ({self.model_id})", self.code_to_tag)

    def lang_token(self, code: str) -> str:
        """The vocabulary token of one of the backend's language codes."""
        return code

    def language_tokens(self) -> set[str]:
        """The same as tokens (what CTranslate2 returns), computed once."""
        if self._lang_tokens is None:
            self._lang_tokens = set(self.tokenizer.convert_ids_to_tokens(sorted(self.language_token_ids())))
        return self._lang_tokens

    def language_token_ids(self) -> set[int]:
        """Ids never part of a translation: special tokens and language tokens (computed once)."""
        if self._lang_ids is None:
            ids = set(self.tokenizer.all_special_ids)
            ids.update(self.tokenizer.convert_tokens_to_ids(self.lang_token(c)) for c in self.language_codes())
            self._lang_ids = ids
        return self._lang_ids

    # lengths ------------------------------------------------------------------------------------
    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    @property
    def max_input_tokens(self) -> int:
        limits = [1024]
        mml = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(mml, int) and mml < 100_000:
            limits.append(mml)
        if self._model is not None:
            mpe = getattr(self._model.config, "max_position_embeddings", None)
            if isinstance(mpe, int):
                limits.append(mpe)
        return min(limits) - 8  # room for language and end tokens

    # generation ---------------------------------------------------------------------------------
    def encode(self, texts: list[str], source: str, target: str, tensors: bool = True):
        if self.sets_src_lang:
            self.tokenizer.src_lang = source
        return self.tokenizer(texts, return_tensors="pt" if tensors else None, padding=tensors)

    def generate_kwargs(self, source: str, target: str) -> dict:
        if self.forced_bos:
            return {"forced_bos_token_id": self.tokenizer.convert_tokens_to_ids(self.lang_token(target))}
        return {}

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        self.load()
        if self.engine == "ctranslate2":
            return ct2_translate(self._model, self.tokenizer, texts,
                                 lambda t: self.encode(t, source, target, tensors=False), self.options,
                                 self.decoder_prefix, self.lang_token(target) if self.forced_bos else None,
                                 self.language_tokens())
        enc = self.encode(texts, source, target)
        rows = generate_rows(self._model, enc, self.options, self.decoder_prefix, self.generate_kwargs(source, target))
        skip = self.language_token_ids()
        return [self.tokenizer.decode([t for t in row if t not in skip], skip_special_tokens=True).strip()
                for row in rows]


@register
class Opus(HFSeq2Seq):
    name = "opus"
    help = "Helsinki-NLP OPUS-MT models, one per language pair, pivoting through English when no direct pair exists."
    cache_size = 4

    def __init__(self, options):
        super().__init__(options)
        self._loaded: OrderedDict[tuple[str, str], tuple] = OrderedDict()  # least recently used first
        self._missing: set[tuple[str, str]] = set()

    @classmethod
    def backend_flags(cls) -> dict[str, dict]:
        return {"model_name": {"help": "A model id or folder pattern with {src} and {tgt}, e.g. "
                                       "./models/opus-mt-{src}-{tgt} (default: Helsinki-NLP/opus-mt-{src}-{tgt}, then "
                                       "opus-mt-tc-big-{src}-{tgt})."}}

    @property
    def model_id(self) -> str:
        return self.options.model_name or "Helsinki-NLP/opus-mt-{src}-{tgt}"

    def target_code(self, code: str) -> str:
        return languages.validate(code, "target language").language

    def source_code(self, code: str) -> str:
        return languages.validate(code, "source language").language

    def candidates(self, src: str, tgt: str) -> list[str]:
        if self.options.model_name:
            return [self.options.model_name.format(src=src, tgt=tgt)]
        return [f"Helsinki-NLP/opus-mt-{src}-{tgt}", f"Helsinki-NLP/opus-mt-tc-big-{src}-{tgt}"]

    def _pair(self, src: str, tgt: str):
        """(name, tokenizer, model) for a direct pair, or None; keeps the few most recently used loaded."""
        key = (src, tgt)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        if key in self._missing:
            return None
        for name in self.candidates(src, tgt):
            try:
                tok = load_tokenizer(name, trust_remote_code=self.options.trust_remote_code)
                model = self._load_one(name)
            except ModelNotFound:  # another candidate may exist; a model that fails to load is the user's error
                continue
            log(f"opus: {src}->{tgt} with {name}")
            self._loaded[key] = (name, tok, model)
            if len(self._loaded) > self.cache_size:
                self._loaded.popitem(last=False)
            return self._loaded[key]
        self._missing.add(key)
        return None

    def load(self) -> None:
        """Models are per language pair and load on first use (see _pair)."""

    def check_pair(self, source: str, target: str) -> None:
        if self._pair(source, target) is not None:
            return
        if source != "en" and target != "en" and self._pair(source, "en") and self._pair("en", target):
            return
        pivot = ", and a pivot through English" if "en" not in (source, target) else ""
        raise PairUnavailable(f"no OPUS-MT model for {source}->{target} "
                              f"(tried {', '.join(self.candidates(source, target))}{pivot})")

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t) // 2 + 1 for t in texts]  # pair tokenizers differ: a safe over-estimate

    @property
    def max_input_tokens(self) -> int:
        return 504

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        pair = self._pair(source, target)
        if pair is None:
            self.check_pair(source, target)  # raises unless the English pivot exists
            return self.translate(self.translate(texts, source, "en"), "en", target)
        _, tok, model = pair
        if self.engine == "ctranslate2":
            return ct2_translate(model, tok, texts, tok, self.options, 1, None, set(tok.all_special_tokens))
        rows = generate_rows(model, tok(texts, return_tensors="pt", padding=True), self.options, 1, {})
        return [tok.decode(row, skip_special_tokens=True).strip() for row in rows]



@register
class M2M(HFSeq2Seq):
    name = "m2m"
    help = "Facebook's M2M100 many-to-many models (100 languages)."
    sizes = {"418m": "facebook/m2m100_418M", "1.2b": "facebook/m2m100_1.2B"}
    default_size = "418m"

    sets_src_lang = forced_bos = True

    def _read_language_codes(self) -> list[str]:
        tok = self.tokenizer
        codes = getattr(tok, "lang_code_to_id", None) or {}
        return sorted(codes) or sorted(t[2:-2] for t in tok.get_vocab() if re.fullmatch(r"__[a-z]{2,3}__", t))

    def lang_token(self, code: str) -> str:
        return f"__{code}__"


@register
class NLLB(HFSeq2Seq):
    name = "nllb"
    help = "Facebook's NLLB-200 models (200 languages, FLORES-200 codes such as nld_Latn)."
    sizes = {"distilled-600m": "facebook/nllb-200-distilled-600M", "1.3b": "facebook/nllb-200-1.3B",
             "distilled-1.3b": "facebook/nllb-200-distilled-1.3B", "3.3b": "facebook/nllb-200-3.3B"}
    default_size = "distilled-600m"
    code_pattern = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")
    sets_src_lang = forced_bos = True


@register
class MBart(HFSeq2Seq):
    name = "mbart"
    help = "Facebook's mBART-50 many-to-many model (codes such as nl_XX, xh_ZA)."
    sizes = {"large": "facebook/mbart-large-50-many-to-many-mmt"}
    default_size = "large"
    code_pattern = re.compile(r"[a-z]{2}_[A-Z]{2}")
    sets_src_lang = forced_bos = True


@register
class Madlad(HFSeq2Seq):
    name = "madlad"
    help = "Google's MADLAD-400 T5 models (400+ languages); the target is a <2xx> token before the text."
    sizes = {"3b": "google/madlad400-3b-mt", "7b": "google/madlad400-7b-mt", "7b-bt": "google/madlad400-7b-mt-bt",
             "10b": "google/madlad400-10b-mt"}
    default_size = "3b"
    code_pattern = re.compile(r"<2[A-Za-z_-]+>")

    @classmethod
    def size_choices(cls) -> list[str]:
        return list(cls.sizes) + ["7bbt"]  # LLaMa2lang spelled the back-translated 7B model "7bbt"

    @property
    def model_id(self) -> str:
        if self.options.model_name:
            return self.options.model_name
        size = (self.options.model_size or self.default_size).replace("7bbt", "7b-bt")
        return self.sizes[size]

    def source_code(self, code: str) -> str:  # MADLAD reads any language; only the target is steered
        return str(languages.validate(code, "source language"))

    def encode(self, texts, source, target, tensors: bool = True):
        return self.tokenizer([f"{target} {t}" for t in texts], return_tensors="pt" if tensors else None,
                              padding=tensors)


@register
class SeamlessM4Tv2(HFSeq2Seq):
    name = "seamless_m4t_v2"
    help = "Facebook's SeamlessM4T-v2 (text-to-text part; codes such as nld, cmn)."
    sizes = {"large": "facebook/seamless-m4t-v2-large"}
    default_size = "large"
    code_pattern = re.compile(r"__[a-z]{3}(?:_[A-Z][a-z]{3})?__")
    auto_class_name = "SeamlessM4Tv2ForTextToText"
    decoder_prefix = 2  # </s> and the target language
    sets_src_lang = True
    supports_ct2 = False  # CTranslate2 has no converter for SeamlessM4T-v2

    def _read_language_codes(self) -> list[str]:
        """The text targets the model's generation config maps (the tokenizer also lists speech-only ones)."""
        from transformers import GenerationConfig

        try:
            mapping = GenerationConfig.from_pretrained(self.model_id).text_decoder_lang_to_code_id
            return sorted(mapping)
        except (OSError, AttributeError, ValueError):
            return [c[2:-2] for c in super()._read_language_codes()]

    def lang_token(self, code: str) -> str:
        return f"__{code}__"

    def generate_kwargs(self, source, target):
        return {"tgt_lang": target}
