"""Loading a tuned model for chat (an adapter folder or Hub id, its base found from the adapter config, or a
full model) and answering conversations: exactly the newly generated tokens, decoded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import ModelLoadError, ModelNotFound, UsageError, first_line, log, positive_int
from l2l.config import option


@dataclass
class GenerationOptions:
    """How answers are generated (run_inference.py's flags; evaluate_model.py and generate_synthetic.py set their
    own values)."""

    max_new_tokens: int = option(512, "Most tokens generated per answer.", type=positive_int)
    temperature: float = option(0.7, "0 for greedy decoding.", type=float)
    top_p: float = option(0.9, "Nucleus sampling: the smallest set of tokens holding this much probability.",
                          type=float)
    repetition_penalty: float = option(1.0, "Above 1 discourages repeating tokens.", type=float)
    seed: int | None = option(None, "Make sampling reproducible.", type=int)

    def __post_init__(self) -> None:
        if not 0 < self.top_p <= 1:
            raise UsageError("--top_p must be in (0, 1]")

    def kwargs(self) -> dict:
        if self.temperature <= 0:
            return {"do_sample": False, "repetition_penalty": self.repetition_penalty}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p,
                "repetition_penalty": self.repetition_penalty}


def adapter_base(model_name: str) -> str | None:
    """The base model of a LoRA adapter (folder or Hub id), or None when model_name is a full model."""
    local = Path(model_name)
    if local.is_dir():
        cfg = local / "adapter_config.json"
        if not cfg.exists():
            return None
        return json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    try:
        from peft import PeftConfig

        return PeftConfig.from_pretrained(model_name).base_model_name_or_path
    except Exception:  # not an adapter (or unreachable): treated as a full model
        return None


def adapter_tokenizer(model_name: str, base: str | None, trust_remote_code: bool = False):
    """The tokenizer saved with an adapter (it carries the chat template it was trained with), else its base
    model's; a full model's own."""
    from l2l.modeling import load_tokenizer

    try:
        return load_tokenizer(model_name, trust_remote_code=trust_remote_code)
    except (ModelNotFound, ModelLoadError):
        if base is None:
            raise
        return load_tokenizer(base, trust_remote_code=trust_remote_code)


def attach_adapter(model, adapter: str, trainable: bool = False):
    """A LoRA adapter on its base model; an adapter that cannot be read is one line, exit 2."""
    from peft import PeftModel

    from l2l.modeling import check_model_files

    check_model_files(adapter)
    try:
        return PeftModel.from_pretrained(model, adapter, is_trainable=trainable)
    except (RuntimeError, KeyError, AttributeError) as e:  # size mismatch, modules the base does not have
        given = getattr(model, "name_or_path", None) or "the given base model"
        raise UsageError(f"adapter {adapter} does not fit {given}: it was trained on {adapter_base(adapter)} "
                         f"({first_line(e)[:160]})") from e
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot load adapter {adapter}: {first_line(e)}") from e


class ChatModel:
    def __init__(self, model_name: str, *, cpu: bool = False, quant4: bool = False, thread_template: str | None = None,
                 base_model: str | None = None, trust_remote_code: bool = False, chat_template: str | None = None):
        import transformers

        from l2l import templates
        from l2l.modeling import check_model_files, device_for, load_model

        self.device = device_for(cpu)
        check_model_files(model_name)
        base = base_model or adapter_base(model_name)
        self.is_adapter = base is not None
        self.tokenizer = adapter_tokenizer(model_name, base, trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = load_model(transformers.AutoModelForCausalLM, base or model_name, device=self.device, quant4=quant4,
                           trust_remote_code=trust_remote_code)
        if self.is_adapter:
            model = attach_adapter(model, model_name).eval()
        self.model = model
        if chat_template:
            self.template = chat_template
        elif thread_template:
            self.template = templates.load(thread_template, self.tokenizer)
        elif getattr(self.tokenizer, "chat_template", None):
            self.template = self.tokenizer.chat_template
        else:
            log("note: the model has no chat template; using llama3 (choose with --thread_template)")
            self.template = templates.load("llama3")
        self.stop_ids = templates.stop_token_ids(self.template, self.tokenizer)
        saved = Path(model_name) / "generation_config.json"
        if saved.exists():  # finetune.py saves the stop tokens it trained
            eos = json.loads(saved.read_text()).get("eos_token_id")
            for i in eos if isinstance(eos, list) else [eos]:
                if i is not None and i not in self.stop_ids:
                    self.stop_ids.append(i)

    def encode(self, conversations: list[list[dict]]):
        prompts = [self.tokenizer.apply_chat_template(c, chat_template=self.template, tokenize=False,
                                                      add_generation_prompt=True) for c in conversations]
        return self.tokenizer(prompts, return_tensors="pt", padding=True,
                              add_special_tokens=False).to(self.model.device)

    def answer(self, conversations: list[list[dict]], options: GenerationOptions, streamer=None) -> list[str]:
        """One answer per conversation: the new tokens only, decoded whole (no prompt echo, no cut words)."""
        import torch
        from transformers import set_seed

        if options.seed is not None:
            set_seed(options.seed)
        enc = self.encode(conversations)
        with torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=options.max_new_tokens, eos_token_id=self.stop_ids,
                                      pad_token_id=self.tokenizer.pad_token_id, streamer=streamer, **options.kwargs())
        new = out[:, enc["input_ids"].shape[1] :]
        return [self.tokenizer.decode(row, skip_special_tokens=True) for row in new]

    def streamer(self):
        from transformers import TextStreamer

        return TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
