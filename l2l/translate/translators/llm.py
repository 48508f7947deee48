"""Chat LLMs prompted to translate: any chat model (`llm`), and Unbabel's TowerInstruct."""

from __future__ import annotations

from l2l import languages
from l2l.cli import UsageError
from l2l.modeling import load_model, load_tokenizer
from l2l.translate.translators.base import Translator, register
from l2l.translate.translators.hf import generate_capped, new_token_caps, position_limit

DEFAULT_PROMPT = ("Translate the following text from {source_lang} into {target_lang}. Keep the formatting. "
                  "Reply with the translation only.\n\n{text}")


@register
class ChatLLM(Translator):
    name = "llm"
    help = "Any chat model prompted to translate (--model_name required; --prompt to change the instruction)."
    sentence_level = False
    default_model: str | None = None
    default_prompt = DEFAULT_PROMPT
    sizes: dict[str, str] = {}
    supports_ct2 = True  # ctranslate2.Generator runs Llama, Mistral, Qwen, Gemma, ... models

    def __init__(self, options):
        super().__init__(options)
        self._tokenizer = None
        self._model = None
        self.prompt = options.prompt or self.default_prompt
        self.system_prompt = options.system_prompt
        if "{text}" not in self.prompt:
            raise UsageError("--prompt must contain {text} (and may use {source_lang}, {target_lang})")

    @classmethod
    def backend_flags(cls) -> dict[str, dict]:
        sizes = {"model_size": {"default": next(iter(cls.sizes)), "choices": list(cls.sizes), "type": str.lower,
                                "help": "Model size."}} if cls.sizes else {}
        return {**sizes,
                "model_name": {"default": cls.default_model, "required": cls.default_model is None and not cls.sizes,
                               "help": "The chat model: a Hub id or a local folder."},
                "prompt": {"help": "User message template with {text}, {source_lang}, {target_lang} "
                                   f"(default: {cls.default_prompt!r})."},
                "system_prompt": {"help": "Optional system message."}}

    @property
    def model_id(self) -> str:
        if self.options.model_name:
            return self.options.model_name
        return self.sizes.get(self.options.model_size or "", self.default_model)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            tok = load_tokenizer(self.model_id, trust_remote_code=self.options.trust_remote_code)
            tok.padding_side = "left"  # decoder-only models continue from the right edge
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            self._tokenizer = tok
        return self._tokenizer

    supported: tuple[str, ...] = ()

    def target_code(self, code: str) -> str:
        lang = languages.validate(code)
        if self.supported:
            return languages.match(code, self.supported, f"{self.name} ({self.model_id})")
        return str(lang)

    def source_code(self, code: str) -> str:
        return str(languages.validate(code, "source language"))

    def load(self) -> None:
        if self._model is None:
            from transformers import AutoModelForCausalLM

            self.tokenizer  # noqa: B018 - load it first for its errors
            if self.options.engine == "ctranslate2":
                from l2l.translate.translators.ct2 import CT2Generator

                self._model = CT2Generator(self.model_id, self.options.device, self.options.ct2_compute_type,
                                           trust_remote_code=self.options.trust_remote_code)
                return
            self._model = load_model(AutoModelForCausalLM, self.model_id, device=self.options.device,
                                     quant4=self.options.quant4, quant8=self.options.quant8,
                                     trust_remote_code=self.options.trust_remote_code)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    @property
    def max_input_tokens(self) -> int:
        ctx = 4096
        if self._model is not None:
            ctx = getattr(self._model.config, "max_position_embeddings", ctx) or ctx
        return max(32, min(1024, ctx // 3))

    def render(self, text: str, source: str, target: str) -> str:
        user = self.prompt.format(text=text, source_lang=languages.display_name(source),
                                  target_lang=languages.display_name(target))
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages.append({"role": "user", "content": user})
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return user + "\n"

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        self.load()
        prompts = [self.render(t, source, target) for t in texts]
        if self.options.engine == "ctranslate2":
            return self._ct2_translate(prompts, texts)
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True,
                             add_special_tokens=False).to(self._model.device)
        out, caps = generate_capped(self._model, enc, self.count_tokens(texts), self.options, slack=32,
                                    used=enc["input_ids"].shape[1], pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, enc["input_ids"].shape[1] :]
        return [self.tokenizer.decode(seq[:cap], skip_special_tokens=True).strip() for seq, cap in zip(new, caps)]

    def _ct2_translate(self, prompts: list[str], texts: list[str]) -> list[str]:
        """The transformers path's output from CTranslate2: the same prompt tokens, caps and end tokens."""
        from l2l.translate.translators.ct2 import detokenize

        tok = self.tokenizer
        rows = [tok.convert_ids_to_tokens(ids) for ids in tok(prompts, add_special_tokens=False)["input_ids"]]
        caps = new_token_caps(self.count_tokens(texts), self.options.max_length, 32,
                              position_limit(self._model, max(map(len, rows))))
        outs = self._model.generate_tokens(rows, caps, self._model.end_tokens(tok), self.options.num_beams)
        skip = set(tok.all_special_tokens)
        return [detokenize(tok, tokens, skip) for tokens in outs]


@register
class TowerInstruct(ChatLLM):
    name = "towerinstruct"
    help = "Unbabel's TowerInstruct (10 languages: en de fr nl it es pt ko ru zh); can also fix spelling."
    sizes = {"7b": "Unbabel/TowerInstruct-7B-v0.2", "13b": "Unbabel/TowerInstruct-13B-v0.1"}
    default_prompt = (
        "Translate the following text from {source_lang} into {target_lang}.\n{source_lang}: {text}\n{target_lang}:"
    )
    supported = ("en", "de", "fr", "nl", "it", "es", "pt", "ko", "ru", "zh")
