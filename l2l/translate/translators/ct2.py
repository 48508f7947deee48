"""CTranslate2: the seq2seq backends' models, and the chat models of the LLM translators, converted once
(cached) and run by CTranslate2's engine (int8 on CPU, int8_float16 on GPU by default). Each compute type
has its own converted copy, stored already quantized: an int8 copy is a quarter of the float32 one on disk,
and float16 targets are converted from weights loaded in float16, which halves the memory conversion needs.
Greedy output equals the transformers path: the same tokenizer, the same target prefix or prompt, the same
per-row caps and end tokens, and transformers' forced end token at the cap."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from l2l.cli import ModelLoadError, ModelNotFound, UsageError, first_line, log
from l2l.translate.translators.base import COMPUTE_TYPES  # noqa: F401 - one list, declared with the flag


def cache_root() -> Path:
    from l2l.assets import cache_dir

    return cache_dir() / "ct2"


def converted(model_id: str, compute_type: str = "float32", trust_remote_code: bool = False) -> Path:
    """The CTranslate2 folder of a Hub id or local model folder for one compute type, converted on first use."""
    try:
        import ctranslate2  # noqa: F401
        from ctranslate2.converters import TransformersConverter
    except ImportError as e:
        raise UsageError("--engine ctranslate2 needs its package: pip install ctranslate2==4.8.5") from e
    local = Path(model_id)
    if local.is_dir():
        config = local / "config.json"
        stamp = f"{local.resolve()}:{config.stat().st_mtime_ns if config.exists() else 0}"
        slug = f"{local.name}-{hashlib.sha1(stamp.encode()).hexdigest()[:10]}"
    else:
        slug = model_id.replace("/", "--")
    out = cache_root() / f"{slug}-{compute_type}"
    if (out / "model.bin").exists():
        return out
    from l2l.io import exclusive

    with exclusive(out.with_name(f".{out.name}.lock")):  # --workers: one converts, the others wait for it
        if not (out / "model.bin").exists():
            _convert(TransformersConverter, model_id, compute_type, trust_remote_code, out)
    return out


def _convert(converter_class, model_id: str, compute_type: str, trust_remote_code: bool, out: Path) -> None:
    from l2l.io import replace_dir, temp_dir_beside
    from l2l.modeling import quiet_transformers

    quiet_transformers()
    _compat()
    log(f"converting {model_id} to CTranslate2 (once): {out}")
    tmp = temp_dir_beside(out)
    try:
        half = compute_type in ("float16", "int8_float16")
        converter_class(model_id, low_cpu_mem_usage=True, load_as_float16=half,
                        trust_remote_code=trust_remote_code).convert(str(tmp), quantization=compute_type, force=True)
        replace_dir(tmp, out)
    except Exception as e:
        import shutil

        from l2l.modeling import load_error

        shutil.rmtree(tmp, ignore_errors=True)
        missing = load_error("model", model_id, e)
        if isinstance(missing, ModelNotFound):
            raise missing from e  # no such model: not the converter's fault
        raise ModelLoadError(f"CTranslate2 cannot convert {model_id}: {first_line(e)}") from e


def _compat() -> None:
    """Gaps between ctranslate2 4.8's converter and transformers 5, closed here:

    - the mBART loader reads MBartConfig.normalize_before, which transformers 5 dropped: mBART is a pre-norm
      model, so the attribute is True (the Marian and M2M100 loaders set theirs);
    - the M2M100 loader builds the vocabulary from tokenizer.get_vocab() plus the additional special tokens,
      but transformers 5's M2M100Tokenizer lists neither its language tokens (when tokenizer_config.json does
      not name them, as in every folder transformers 5 saves) nor any additional special tokens, so the
      vocabulary comes out 100 entries short of the model's rows. The vocabulary is read by id instead;
    - the mBART loader writes tokenizer.bos_token into the model's config, and transformers 5's
      MBart50Tokenizer has none unless tokenizer_config.json names it (a null there makes the converted model
      unloadable): mBART-50's begin token is "<s>", its cls token."""
    from ctranslate2.converters import transformers as ct2_transformers
    from transformers import MBartConfig

    if not hasattr(MBartConfig(), "normalize_before"):
        MBartConfig.normalize_before = True
    ct2_transformers.M2M100Loader.get_vocabulary = _vocabulary_by_id
    mbart = ct2_transformers.MBartLoader
    if not getattr(mbart.set_config, "l2l_shim", False):
        original = mbart.set_config

        def set_config(loader, config, model, tokenizer):
            original(loader, config, model, tokenizer)
            config.bos_token = config.bos_token or getattr(tokenizer, "cls_token", None) or "<s>"

        set_config.l2l_shim = True
        mbart.set_config = set_config


def _vocabulary_by_id(loader, model, tokenizer) -> list[str]:
    """One token per row of the model's embedding: the tokenizer's token for that id (language tokens
    included), and fairseq's placeholder "madeupwordN" for the rows no token uses."""
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    by_id.update({i: t for t, i in getattr(tokenizer, "lang_token_to_id", {}).items()})
    tokens, madeup = [], 0
    for i in range(model.config.vocab_size):
        if i not in by_id:
            by_id[i], madeup = f"madeupword{madeup}", madeup + 1
        tokens.append(by_id[i])
    return tokens


class CT2Model:
    """A converted sequence-to-sequence model behind the small interface the translators use."""

    engine_class = "Translator"

    def __init__(self, model_id: str, device: str, compute_type: str | None, trust_remote_code: bool = False):
        import ctranslate2
        from transformers import AutoConfig

        try:
            supported = ctranslate2.get_supported_compute_types(device)
        except (RuntimeError, ValueError) as e:  # no usable CUDA driver, a device CTranslate2 lacks
            raise UsageError(f"CTranslate2 cannot use {device}: {first_line(e)}") from e
        if compute_type is None:  # the fastest type this device runs (older GPUs lack int8)
            preferred = ("int8_float16", "float16", "int8", "float32") if device == "cuda" else ("int8", "float32")
            compute_type = next((t for t in preferred if t in supported), "float32")
        if compute_type not in supported:  # before converting a copy that cannot run here
            raise UsageError(f"--ct2_compute_type {compute_type} does not run on this {device}; it supports "
                             f"{', '.join(sorted(supported))}")
        path = converted(model_id, compute_type, trust_remote_code)
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        try:
            self.engine = getattr(ctranslate2, self.engine_class)(str(path), device=device, compute_type=compute_type,
                                                                  intra_threads=threads)
        except (RuntimeError, ValueError) as e:
            reason = first_line(e)
            raise ModelLoadError(
                f"CTranslate2 cannot load {model_id} from {path}: {reason} (if the conversion is "
                "at fault, delete that folder and it is converted again)"
            ) from e
        self.config = AutoConfig.from_pretrained(model_id, trust_remote_code=trust_remote_code)
        self.forced_eos = getattr(self.config, "forced_eos_token_id", None) is not None
        self.model_id = model_id

    def translate_tokens(self, rows: list[list[str]], caps: list[int], prefix_token: str | None,
                         num_beams: int) -> list[list[str]]:
        """Output tokens per row (without decoder start), cut like transformers cuts them."""
        prefix = [[prefix_token] for _ in rows] if prefix_token else None
        results = self.engine.translate_batch(rows, target_prefix=prefix, beam_size=num_beams,
                                              max_decoding_length=max(caps), return_scores=False)
        out = []
        for res, cap in zip(results, caps):
            tokens = res.hypotheses[0][:cap]
            if self.forced_eos and len(res.hypotheses[0]) >= cap:
                tokens = tokens[: cap - 1]  # transformers forces the end token in the last place
            out.append(tokens)
        return out


class CT2Generator(CT2Model):
    """A converted decoder-only chat model (Llama, Mistral, Qwen, Gemma, ...) for the LLM translators."""

    engine_class = "Generator"
    _end: list[str] | None = None

    def end_tokens(self, tokenizer) -> list[str]:
        """The tokens transformers' generate stops at: the generation config's end ids (read once)."""
        if self._end is None:
            self._end = self._read_end_tokens(tokenizer)
        return self._end

    def _read_end_tokens(self, tokenizer) -> list[str]:
        from transformers import GenerationConfig

        try:
            ids = GenerationConfig.from_pretrained(self.model_id).eos_token_id
        except OSError:
            ids = getattr(self.config, "eos_token_id", None)
        ids = ids if isinstance(ids, list) else [ids] if ids is not None else [tokenizer.eos_token_id]
        return tokenizer.convert_ids_to_tokens(ids)

    def generate_tokens(self, prompts: list[list[str]], caps: list[int], end: list[str],
                        num_beams: int) -> list[list[str]]:
        """Greedy (or beam) continuations of token prompts, each cut at its own cap."""
        results = self.engine.generate_batch(prompts, max_length=max(caps), beam_size=num_beams, sampling_topk=1,
                                             include_prompt_in_result=False, end_token=end)
        return [res.sequences[0][:cap] for res, cap in zip(results, caps)]


def source_tokens(tokenizer, texts: list[str], encode) -> list[list[str]]:
    """The input tokens CTranslate2 takes, as the tokenizer makes them (`encode(texts)` gives unpadded ids).
    A Marian tokenizer's text goes straight to its SentencePiece model, in one C++ call, unless it holds
    something the Python tokenizer would split off first (special tokens, >>lang<< codes)."""
    spm = getattr(tokenizer, "spm_source", None)
    out: list[list[str] | None] = [None] * len(texts)
    if spm is not None and getattr(tokenizer, "current_spm", None) is spm:
        plain = [i for i, t in enumerate(texts) if "<" not in t and ">" not in t]
        for i, pieces in zip(plain, spm.encode([texts[i] for i in plain], out_type=str)):
            out[i] = pieces + [tokenizer.eos_token]
    rest = [i for i, row in enumerate(out) if row is None]
    if rest:
        for i, ids in zip(rest, encode([texts[i] for i in rest])["input_ids"]):
            out[i] = tokenizer.convert_ids_to_tokens(ids)
    return out


def detokenize(tokenizer, tokens: list[str], skip: set[str]) -> str:
    """What tokenizer.decode(ids, skip_special_tokens=True) gives, from tokens (`skip`: tokens to leave out)."""
    text = tokenizer.convert_tokens_to_string([t for t in tokens if t not in skip])
    if getattr(tokenizer, "clean_up_tokenization_spaces", False):
        text = tokenizer.clean_up_tokenization(text)
    return text.strip()
