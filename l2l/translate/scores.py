"""Model-based scores of translated text, opt-in beside the checks of quality.py: a round trip (the output
translated back with any backend, chrF against the source) and quality estimation (a CometKiwi model scoring
source and output, through unbabel-comet's `comet-score` command). Each scorer gives every (source language,
pair) a score in [0, 1] or None (nothing to score), caches what it computed per piece in a folder, so that a
rerun computes only what is new, and flags the pairs under its threshold with its check name."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from l2l.cli import UsageError, first_line, log
from l2l.io import atomic_write_json
from l2l.translate.quality import Pair

WINDOW = 512  # texts per round-trip or QE step; the cache is saved between steps (every SAVE_SECONDS at most)
SAVE_SECONDS = 30
QE_LICENCE = ("CometKiwi (Unbabel/wmt22-cometkiwi-da, wmt23-cometkiwi-da-xl) is licensed CC BY-NC-SA 4.0: "
              "non-commercial use only")


def scorable(pair: Pair) -> bool:
    """A real source and output to score (not empty; not the stand-in pair of a conversation that lost turns)."""
    return bool(pair.source.strip() and pair.output.strip()) and not pair.stand_in


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


class PieceCache:
    """A JSON object on disk, {key: value}, read once and written whole (atomically) after each step."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict = {}
        self.saved = time.monotonic()
        if path.is_file():
            try:
                self.data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log(f"note: {path} could not be read; its scores are computed again")
            if not isinstance(self.data, dict):
                self.data = {}

    def save(self, final: bool = True) -> None:
        """Written whole: at the end, and between steps at most every SAVE_SECONDS (a large cache is not
        rewritten after every step)."""
        if not final and time.monotonic() - self.saved < SAVE_SECONDS:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, self.data)
        self.saved = time.monotonic()


class RoundTrip:
    """Each output translated back into its source's language with a translation backend, piece by piece
    (translate.py's segmentation and batching), scored by chrF against the source (0-1)."""

    name = "round_trip"

    def __init__(self, translator, target: str, cache_dir: Path, threshold: float):
        self.translator, self.target, self.threshold = translator, target, threshold
        key = _digest(translator.name, translator.model_id, target)
        self.cache = PieceCache(cache_dir / f"round_trip-{translator.name}-{key}.json")

    def codes(self, source_langs: set[str]) -> dict[str, tuple[str, str]]:
        """{source language: (backend code of the target, backend code of that source)}; a one-line refusal
        for a pair the backend cannot translate back. Called before the backend's model loads."""
        from l2l.translate.translators.base import PairUnavailable

        what = f"--round_trip {self.translator.name}"
        out, missing = {}, {}
        for lang in sorted(source_langs):
            try:
                pair = self.translator.source_code(self.target), self.translator.target_code(lang)
                self.translator.check_pair(*pair)
            except (PairUnavailable, UsageError) as e:
                missing[lang] = first_line(e)
                continue
            out[lang] = pair
        if missing and not out:
            lang, why = next(iter(missing.items()))
            raise UsageError(f"{what} cannot translate {self.target} back into {lang}: {why}")
        if missing:
            log(f"note: {what} cannot translate {self.target} back into {', '.join(missing)}: those texts are not "
                "scored")
        return out

    def score(self, items: list[tuple[str, Pair]]) -> list[float | None]:
        import sacrebleu
        from tqdm import tqdm

        from l2l.translate.pieces import PieceTranslator

        codes = self.codes({lang for lang, p in items if scorable(p)})
        scores: list[float | None] = [None] * len(items)
        self.translator.load()
        for lang, (src, tgt) in codes.items():
            mover = PieceTranslator(self.translator, tgt)
            mover.cache = {(src, k): v for k, v in self.cache.data.get(f"{src}>{tgt}", {}).items()}
            todo = [i for i, (lg, p) in enumerate(items) if lg == lang and scorable(p)]
            with tqdm(total=len(todo), desc=f"round trip {self.target}->{lang}", unit="text", leave=False) as bar:
                for start in range(0, len(todo), WINDOW):
                    window = todo[start:start + WINDOW]
                    backs = mover.translate_texts([items[i][1].output for i in window], src)
                    for i, back in zip(window, backs):
                        scores[i] = sacrebleu.sentence_chrf(back, [items[i][1].source]).score / 100
                    self.cache.data[f"{src}>{tgt}"] = {k: v for (s, k), v in mover.cache.items() if s == src}
                    self.cache.save(final=start + WINDOW >= len(todo))
                    bar.update(len(window))
        return scores


class QualityEstimate:
    """A CometKiwi model from a local folder (hparams.yaml, checkpoints/model.ckpt) run by unbabel-comet's
    `comet-score`, which lives in its own environment (it needs transformers 4); scores cached per pair."""

    name = "qe"

    def __init__(self, model: str, command: str, cache_dir: Path, threshold: float, gpus: int = 0,
                 batch_size: int = 16):
        self.checkpoint = self.find_checkpoint(model)
        self.command = self.find_command(command)
        self.threshold, self.gpus, self.batch_size = threshold, gpus, batch_size
        stat = self.checkpoint.stat()  # another checkpoint at the same path: other scores
        key = _digest(str(self.checkpoint), str(stat.st_size), str(stat.st_mtime_ns))
        self.cache = PieceCache(cache_dir / f"qe-{key}.json")

    @staticmethod
    def find_checkpoint(model: str) -> Path:
        path = Path(model).expanduser().resolve()
        ckpt = path if path.suffix == ".ckpt" else path / "checkpoints" / "model.ckpt"
        if not ckpt.is_file() or not (ckpt.parents[1] / "hparams.yaml").is_file():
            raise UsageError(f"--qe_model {model}: not a COMET model folder (it needs hparams.yaml and "
                             "checkpoints/model.ckpt, as in a download of Unbabel/wmt22-cometkiwi-da)")
        return ckpt

    @staticmethod
    def find_command(command: str) -> str:
        found = shutil.which(command)
        if found is None:
            raise UsageError(f"--qe_command {command}: not found. unbabel-comet needs transformers 4, so install it "
                             "in its own environment (python -m venv comet && comet/bin/pip install "
                             "unbabel-comet==2.2.7) and pass --qe_command comet/bin/comet-score")
        return found

    def score(self, items: list[tuple[str, Pair]]) -> list[float | None]:
        keys = [_digest(p.source, p.output) if scorable(p) else None for _, p in items]
        todo = {k: p for k, (_, p) in zip(keys, items) if k is not None and k not in self.cache.data}
        if todo:
            log(f"quality estimation: {len(todo)} pairs through {self.checkpoint}")
            order = list(todo)
            step = max(WINDOW, len(order) // 20)  # comet-score loads the model once per step
            for start in range(0, len(order), step):
                window = order[start:start + step]
                self.cache.data.update(zip(window, self._run([todo[k] for k in window])))
                self.cache.save(final=start + step >= len(order))
        return [None if k is None else self.cache.data[k] for k in keys]

    def _run(self, pairs: list[Pair]) -> list[float]:
        def line(text: str) -> str:  # comet-score reads one segment per line
            return " ".join(text.split())

        with tempfile.TemporaryDirectory(prefix="l2l-qe-") as tmp:
            src, mt, out = Path(tmp, "src.txt"), Path(tmp, "mt.txt"), Path(tmp, "scores.json")
            src.write_text("".join(line(p.source) + "\n" for p in pairs), encoding="utf-8")
            mt.write_text("".join(line(p.output) + "\n" for p in pairs), encoding="utf-8")
            done = subprocess.run([self.command, "-s", str(src), "-t", str(mt), "--model", str(self.checkpoint),
                                   "--gpus", str(self.gpus), "--batch_size", str(self.batch_size),
                                   "--to_json", str(out), "--quiet"], capture_output=True, text=True)
            if done.returncode or not out.is_file():
                raise UsageError(f"--qe_model {self.checkpoint.parents[1]} did not load or run in "
                                 f"{self.command}: {_cause(done)}")
            rows = next(iter(json.loads(out.read_text(encoding="utf-8")).values()))
        return [float(r["COMET"]) for r in rows]


def _cause(done: subprocess.CompletedProcess) -> str:
    """The exception a failed command ended with (its last `SomethingError: ...` line, cut short), else its
    last line of output."""
    lines = [ln.strip() for ln in (done.stderr + "\n" + done.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
    cause = (errors or lines or [f"exit {done.returncode}"])[-1]
    return cause if len(cause) <= 200 else cause[:197] + "..."


def apply(scorers: list, items: list[tuple[str, Pair]]) -> dict[str, list[float | None]]:
    """Each scorer's score per item; pairs under a scorer's threshold get its check name as a flag."""
    out = {}
    for scorer in scorers:
        out[scorer.name] = scorer.score(items)
        for (_, pair), s in zip(items, out[scorer.name]):
            if s is not None and s < scorer.threshold and scorer.name not in pair.flags:
                pair.flags.append(scorer.name)
    return out
