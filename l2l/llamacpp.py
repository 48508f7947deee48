"""llama.cpp's own tools, never rewritten here: its Hugging Face -> GGUF converter (convert_hf_to_gguf.py with
the gguf-py it was released with) and, through llama-cpp-python, its quantizer.

The converter comes from a llama.cpp checkout (--llama_cpp DIR or $LLAMA_CPP_DIR) or, by default, from the
source release of llama-cpp-python on PyPI, which vendors a whole llama.cpp: fetched once with pip (works
wherever pip does) and kept in the cache, at the llama-cpp-python version installed here (so the converter and
the runtime are the same llama.cpp), else CONVERTER_VERSION."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from l2l.cli import ModelLoadError, UsageError, is_disk_full, log

CONVERTER_VERSION = "0.3.36"  # llama-cpp-python release whose vendored llama.cpp converts (tested)
SCRIPT = "convert_hf_to_gguf.py"
# what the converter needs from a llama.cpp tree
PARTS = (SCRIPT, "conversion/", "gguf-py/gguf/")
# converter output types; the rest are llama.cpp quantizations made from an f16 file (needs llama-cpp-python)
CONVERT_TYPES = ("f16", "bf16", "f32", "q8_0", "auto")
QUANT_TYPES = {"q4_0": "Q4_0", "q4_1": "Q4_1", "q5_0": "Q5_0", "q5_1": "Q5_1", "q2_k": "Q2_K", "q3_k_m": "Q3_K_M",
               "q4_k_m": "Q4_K_M", "q4_k_s": "Q4_K_S", "q5_k_m": "Q5_K_M", "q5_k_s": "Q5_K_S", "q6_k": "Q6_K"}


def runtime_version() -> str | None:
    """The installed llama-cpp-python version, if any."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def find_converter(llama_cpp: str | None = None) -> Path:
    """The folder holding convert_hf_to_gguf.py (and conversion/, gguf-py/): the one given, else the cached
    copy for this llama-cpp-python version, fetched the first time."""
    given = llama_cpp or os.environ.get("LLAMA_CPP_DIR")
    if given:
        folder = Path(given).expanduser()
        if not (folder / SCRIPT).is_file():
            flag = "--llama_cpp" if llama_cpp else "$LLAMA_CPP_DIR"
            raise UsageError(f"{flag} {given}: no {SCRIPT} there (give the root of a llama.cpp checkout)")
        return folder
    from l2l.assets import cache_dir

    ver = runtime_version() or CONVERTER_VERSION
    folder = cache_dir() / f"llama.cpp-from-llama-cpp-python-{ver}"
    if not (folder / SCRIPT).is_file():
        from l2l.io import exclusive

        with exclusive(folder.parent / f".{folder.name}.lock"):  # one fetch when several exports start at once
            if not (folder / SCRIPT).is_file():
                fetch_converter(ver, folder)
    return folder


def fetch_converter(ver: str, folder: Path) -> None:
    """Download llama-cpp-python's source release and keep the converter parts of its vendored llama.cpp."""
    log(f"fetching llama.cpp's converter: the llama-cpp-python {ver} source release from PyPI (~75 MB, once; "
        f"kept in {folder})")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", f"llama-cpp-python=={ver}", "--no-deps", "--no-binary",
               ":all:", "-q", "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode or not archives:
            lines = [x.strip() for x in done.stderr.splitlines() if "error" in x.lower()] or ["no source archive"]
            reason = lines[-1]
            raise UsageError(f"cannot fetch llama.cpp's converter (pip download llama-cpp-python=={ver}: "
                             f"{reason}); give a llama.cpp checkout with --llama_cpp DIR")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            with tarfile.open(archives[0]) as tar:
                for member in tar.getmembers():
                    rel = member.name.split("/vendor/llama.cpp/", 1)[1] if "/vendor/llama.cpp/" in member.name else ""
                    if rel and member.isfile() and rel.startswith(PARTS):
                        member.name = rel
                        tar.extract(member, staging, filter="data")
            if not (staging / SCRIPT).is_file():
                raise UsageError(f"llama-cpp-python {ver}'s source has no vendored {SCRIPT}; give --llama_cpp DIR")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def supported_architectures(converter: Path) -> set[str]:
    """The Hugging Face architectures this converter knows (its own --print-supported-models list)."""
    done = subprocess.run([sys.executable, str(converter / SCRIPT), "--print-supported-models"],
                          capture_output=True, text=True, env=_env())
    text = (done.stdout + done.stderr).split("TEXT models:", 1)[-1].split("MMPROJ models:", 1)[0]
    return set(re.findall(r"^\s*-\s*(\S+)\s*$", text, flags=re.M))


def _env() -> dict:
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)  # the converter must use the gguf-py released with it
    return env


# Runs the converter unchanged, except that it identifies the BPE pre-tokenizer on the base model's tokenizer: a
# vocabulary extended by extend_tokenizer.py keeps the base's pre-tokenizer (only merges were added), but its new
# tokens change the token ids the converter hashes to recognise it.
_WITH_BASE_PRE_TOKENIZER = """
import runpy, sys
conv, base = sys.argv[1], sys.argv[2]
sys.argv = [conv + "/convert_hf_to_gguf.py"] + sys.argv[3:]
sys.path[0:0] = [conv, conv + "/gguf-py"]
from transformers import AutoTokenizer
import conversion.base as cb
base_tokenizer = AutoTokenizer.from_pretrained(base)
original = cb.TextModel.get_vocab_base_pre
cb.TextModel.get_vocab_base_pre = lambda self, tokenizer: original(self, base_tokenizer)
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def convert(converter: Path, model_dir: Path, out_file: Path, outtype: str,
            pre_tokenizer_of: str | None = None) -> None:
    """Run llama.cpp's converter on a merged model folder; its last error line when it fails. pre_tokenizer_of:
    the original base model of a vocabulary extended here."""
    args = [str(model_dir), "--outfile", str(out_file), "--outtype", outtype]
    cmd = [sys.executable, str(converter / SCRIPT), *args]
    if pre_tokenizer_of:
        cmd = [sys.executable, "-c", _WITH_BASE_PRE_TOKENIZER, str(converter), pre_tokenizer_of, *args]
    log(f"llama.cpp converter: {model_dir.name} -> GGUF ({outtype})")
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if done.returncode:
        if is_disk_full(Exception(done.stderr)):
            from l2l.io import DiskFull

            raise DiskFull(out_file)
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        err = next((line for line in reversed(lines) if "rror" in line or "not supported" in line.lower()),
                   lines[-1] if lines else f"exit {done.returncode}")
        raise ModelLoadError(f"llama.cpp's converter failed: {err.strip()[:300]}")


def require_quantizer(kind: str):
    """llama-cpp-python, which the k-quants need; one line when it is not installed."""
    try:
        import llama_cpp
    except ImportError:
        raise UsageError(f"--outtype {kind} is a llama.cpp quantization: it needs llama-cpp-python "
                         "(pip install llama-cpp-python), or use f16/bf16/q8_0") from None
    return llama_cpp


def quantize(src: Path, dst: Path, kind: str) -> None:
    """llama.cpp's own quantizer (through llama-cpp-python) from an f16 GGUF."""
    llama_cpp = require_quantizer(kind)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{QUANT_TYPES[kind]}")
    params.nthread = os.cpu_count() or 1
    log(f"llama.cpp quantizer: {kind}")
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params) != 0:
        raise ModelLoadError(f"llama.cpp could not quantize the model to {kind}")
