"""Loading models: one place for device choice, dtype and bitsandbytes quantization."""

from __future__ import annotations

from pathlib import Path

from l2l.cli import ModelLoadError, ModelNotFound, exception_chain, first_line

_NOT_FOUND = {"HFValidationError", "LocalEntryNotFoundError", "RepositoryNotFoundError", "EntryNotFoundError",
              "RevisionNotFoundError"}


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists() or name.count("/") > 1


def load_error(what: str, name: str, e: BaseException) -> ModelLoadError | ModelNotFound:
    """The error to report for a model or tokenizer that did not load: ModelNotFound when there is no model
    under that name (no such folder; no such Hub repository, or not cached offline), else ModelLoadError."""
    chain = {type(x).__name__ for x in exception_chain(e)}
    local = Path(name).expanduser()
    if _looks_local(name) and not local.exists():
        return ModelNotFound(f"no such folder {name} (and it is not a Hub model id)")
    offline = "connect" in str(e).lower() or "offline" in str(e).lower() or "OfflineModeIsEnabled" in chain
    if not local.exists() and offline:
        return ModelNotFound(f"no such folder {name}, and no Hub model {name} in the local cache (the Hub cannot be "
                             "reached)")
    if local.is_dir() and not what.startswith("tokenizer") and not (local / "config.json").is_file():
        if any(local.glob("adapter_model.*")):
            return ModelLoadError(f"{name} holds adapter weights but no adapter_config.json: copy the whole adapter "
                                  "folder (adapter_config.json names its base model)")
        return ModelLoadError(f"{name} is not a model folder: it has no config.json")
    patterns = ("tokenizer*", "*.model", "vocab*", "*.spm")
    if what.startswith("tokenizer") and Path(name).is_dir() and not any(any(Path(name).glob(p)) for p in patterns):
        return ModelLoadError(f"cannot load {what} {name}: the folder has no tokenizer files")
    if chain & _NOT_FOUND:
        return ModelNotFound(f"cannot load {what} {name}: {first_line(e)}")
    return ModelLoadError(f"cannot load {what} {name}: {first_line(e)}")


def check_weight_file(path: Path) -> None:
    """A safetensors file is whole: its header parses and its data reaches as far as the header says (a file cut
    short by an interrupted download or copy is named in one line, before any library maps it)."""
    import json
    import struct

    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
            header = json.loads(f.read(n)) if n is not None and 8 + n <= size else None
        if not isinstance(header, dict):
            raise ValueError
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError):
        raise ModelLoadError(f"model file {path} is not a readable safetensors file (cut short or damaged: "
                             "an interrupted download or copy?); fetch or copy it again") from None
    if 8 + n + end > size:
        raise ModelLoadError(f"model file {path} is cut short ({size} of {8 + n + end} bytes: an interrupted "
                             "download or copy?); fetch or copy it again")


def check_model_files(name: str | Path) -> None:
    """Every safetensors weight file of a local model or adapter folder is whole (Hub ids are left to the Hub)."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return
    if (any(folder.glob("adapter_model.*")) and not (folder / "adapter_config.json").is_file()
            and not (folder / "config.json").is_file()):
        raise ModelLoadError(f"{name} holds adapter weights but no adapter_config.json: copy the whole adapter "
                             "folder (adapter_config.json names its base model)")
    for path in sorted(folder.glob("*.safetensors")):
        check_weight_file(path)


def quiet_transformers() -> None:
    """Our own progress bar and log lines say what happens; transformers' per-load bars are noise."""
    import logging
    import warnings

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # "Failed to load CPU gemm_4bit..." is harmless
    import transformers

    warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")  # Marian tokenizers
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing. is deprecated")  # raised inside peft
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def device_for(cpu: bool) -> str:
    import torch

    if cpu or not torch.cuda.is_available():
        return "cpu"
    return "cuda"


def compute_dtype(device: str):
    """bf16 on GPUs that have it, fp16 on older ones (T4), fp32 on CPU."""
    import torch

    if device == "cpu":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def quantization_config(quant4: bool = False, quant8: bool = False, dtype=None):
    if not (quant4 or quant8):
        return None
    from transformers import BitsAndBytesConfig

    if quant4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=dtype)
    return BitsAndBytesConfig(load_in_8bit=True)


def load_model(auto_class, name: str, *, device: str, quant4: bool = False, quant8: bool = False,
               trust_remote_code: bool = False, dtype=None, **kwargs):
    """from_pretrained with the toolkit's conventions; a model that cannot be loaded is a UsageError."""
    quiet_transformers()
    check_model_files(name)
    dtype = dtype or compute_dtype(device)
    qconf = quantization_config(quant4, quant8, dtype)
    try:
        if qconf is not None:
            model = auto_class.from_pretrained(name, quantization_config=qconf, dtype=dtype,
                                               device_map={"": 0} if device == "cuda" else {"": "cpu"},
                                               trust_remote_code=trust_remote_code, **kwargs)
        else:
            model = auto_class.from_pretrained(name, dtype=dtype, trust_remote_code=trust_remote_code, **kwargs)
            model.to(device)
    except Exception as e:  # OSError, ValueError; safetensors' own SafetensorError
        if not isinstance(e, (OSError, ValueError)) and type(e).__name__ != "SafetensorError":
            raise
        raise load_error("model", name, e) from e
    model.eval()
    return model


def load_tokenizer(name: str, *, trust_remote_code: bool = False, **kwargs):
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError, TypeError) as e:
        raise load_error("tokenizer of", name, e) from e


def load_config(name: str, *, trust_remote_code: bool = False):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as e:
        raise load_error("model config of", name, e) from e
