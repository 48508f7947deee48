"""CTranslate2: the seq2seq backends' models converted once (cached) and run by CTranslate2's engine
(int8 on CPU, int8_float16 on GPU by default). Greedy output equals the transformers path: the same
tokenizer, the same target prefix, the same per-row caps, and transformers' forced end token at the cap."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..cli import UsageError, log


def cache_root() -> Path:
    from ..assets import cache_dir

    return cache_dir() / "ct2"


def converted(model_id: str) -> Path:
    """The CTranslate2 folder of a Hub id or local model folder, converted on first use."""
    try:
        import ctranslate2  # noqa: F401
        from ctranslate2.converters import TransformersConverter
    except ImportError as e:
        raise UsageError("--engine ctranslate2 needs its package: pip install ctranslate2==4.8.5") from e
    local = Path(model_id)
    if local.is_dir():
        stamp = f"{local.resolve()}:{(local / 'config.json').stat().st_mtime_ns if (local / 'config.json').exists() else 0}"
        slug = f"{local.name}-{hashlib.sha1(stamp.encode()).hexdigest()[:10]}"
    else:
        slug = model_id.replace("/", "--")
    out = cache_root() / slug
    if (out / "model.bin").exists():
        return out
    from ..io import replace_dir, temp_dir_beside
    from ..modeling import quiet_transformers

    quiet_transformers()
    _compat()
    log(f"converting {model_id} to CTranslate2 (once): {out}")
    tmp = temp_dir_beside(out)
    try:
        TransformersConverter(model_id, low_cpu_mem_usage=True).convert(str(tmp), force=True)
        replace_dir(tmp, out)
    except Exception as e:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise UsageError(f"CTranslate2 cannot convert {model_id}: {(str(e).splitlines() or [type(e).__name__])[0]}") from e
    return out


def _compat() -> None:
    """ctranslate2 4.8's mBART loader reads MBartConfig.normalize_before, which transformers 5 dropped:
    mBART is a pre-norm model, so the attribute is True (the Marian and M2M100 loaders set theirs)."""
    from transformers import MBartConfig

    if not hasattr(MBartConfig(), "normalize_before"):
        MBartConfig.normalize_before = True


class CT2Model:
    """A converted model behind the small interface the translators use."""

    def __init__(self, model_id: str, device: str, compute_type: str | None):
        import ctranslate2
        from transformers import AutoConfig

        path = converted(model_id)
        compute_type = compute_type or ("int8_float16" if device == "cuda" else "int8")
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        self.translator = ctranslate2.Translator(str(path), device=device, compute_type=compute_type,
                                                 intra_threads=threads)
        self.config = AutoConfig.from_pretrained(model_id)
        self.forced_eos = getattr(self.config, "forced_eos_token_id", None) is not None

    def generate(self, tokenizer, enc, caps: list[int], prefix_token: str | None, num_beams: int) -> list[list[int]]:
        """Output ids per row (without decoder start), cut like transformers cuts them."""
        rows = []
        for ids, mask in zip(enc["input_ids"].tolist(), enc["attention_mask"].tolist()):
            rows.append(tokenizer.convert_ids_to_tokens([i for i, m in zip(ids, mask) if m]))
        prefix = [[prefix_token] for _ in rows] if prefix_token else None
        results = self.translator.translate_batch(rows, target_prefix=prefix, beam_size=num_beams,
                                                  max_decoding_length=max(caps), return_scores=False)
        out = []
        for res, cap in zip(results, caps):
            tokens = res.hypotheses[0][:cap]
            if self.forced_eos and len(res.hypotheses[0]) >= cap:
                tokens = tokens[:cap - 1]  # transformers forces the end token in the last place
            out.append(tokenizer.convert_tokens_to_ids(tokens))
        return out
