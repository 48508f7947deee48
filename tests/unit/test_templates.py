"""Chat templates as saved with a model: the training-only {% generation %} markers out, the same text rendered,
the marked copy kept for training; and the Ollama TEMPLATE export_gguf prints, rendered by Go's text/template."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from l2l import templates

CHATS = {
    "user": [{"role": "user", "content": "Wat is een fiets?"}],
    "system": [{"role": "system", "content": "Antwoord kort."}, {"role": "user", "content": "Wat is een fiets?"}],
    "turns": [{"role": "system", "content": "Antwoord kort."}, {"role": "user", "content": "Wat is een fiets?"},
              {"role": "assistant", "content": "Een voertuig met twee wielen."},
              {"role": "user", "content": "En een auto?"}],
    "answered": [{"role": "user", "content": "Hoi"}, {"role": "assistant", "content": "Dag! Hoe gaat het?"}],
}


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<s>", "</s>", "<unk>"] + sorted({w for c in CHATS.values() for m in c for w in m["content"].split()})
    bpe = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def render(tok, template, chat, prompt):
    return tok.apply_chat_template(chat, chat_template=template, tokenize=False, add_generation_prompt=prompt)


@pytest.mark.parametrize("name", templates.SHIPPED)
def test_saved_template_has_no_markers_and_renders_the_same(tmp_path, tokenizer, name):
    from transformers import AutoTokenizer

    marked = templates.load(name)
    assert templates.has_markers(marked)
    tokenizer.chat_template = marked
    templates.save_with(tokenizer, tmp_path)
    assert tokenizer.chat_template == marked  # the caller's tokenizer keeps training's copy
    saved = AutoTokenizer.from_pretrained(tmp_path)
    assert "{% generation" not in saved.chat_template and not templates.has_markers(saved.chat_template)
    for key, chat in CHATS.items():
        for prompt in (False, True):
            assert render(saved, saved.chat_template, chat, prompt) == render(saved, marked, chat, prompt), key
    assert (tmp_path / templates.TRAINING_FILE).read_text(encoding="utf-8") == marked
    assert templates.load("tokenizer", saved) == marked  # training and scoring from the folder get the markers
    assert templates.shipped_name(saved.chat_template) == name


def test_markers_with_whitespace_control_trim_the_same(tokenizer):
    marked = ("{%- for m in messages -%}{{ m['role'] }}:  {%- if m['role'] == 'assistant' -%}  {%- generation -%}  "
              "{{ m['content'] }}  {%- endgeneration -%}  {%- else -%} {{ m['content'] }} {%- endif -%}|"
              "{%- endfor -%}")
    plain = templates.for_inference(marked)
    assert not templates.has_markers(plain)
    for chat in CHATS.values():
        assert render(tokenizer, plain, chat, False) == render(tokenizer, marked, chat, False)
    # a marker followed by a newline, and one indented on its own line (trim_blocks, lstrip_blocks)
    for marked in ("{% for m in messages %}{{ m['role'] }}:\n{% if m['role'] == 'assistant' %}\n{% generation %}\n"
                   "{{ m['content'] }}{% endgeneration %}\n{% else %}{{ m['content'] }}{% endif %}|{% endfor %}",
                   "{% for m in messages %}{{ m['role'] }}\n    {% generation %}{{ m['content'] }}\n"
                   "    {% endgeneration %}\n{% endfor %}"):
        plain = templates.for_inference(marked)
        for chat in CHATS.values():
            assert render(tokenizer, plain, chat, False) == render(tokenizer, marked, chat, False)


def test_named_templates_are_saved_as_they_are(tmp_path, tokenizer):
    """A tokenizer with several named templates (a dict): saved untouched, nothing written beside it."""
    named = {"default": templates.load("chatml"), "tool_use": "{{ messages }}"}
    assert templates.for_inference(named) is named and not templates.has_markers(named)
    assert templates.shipped_name(named) is None and templates.ollama_template(named) is None


def test_a_template_without_markers_is_saved_alone(tmp_path, tokenizer):
    plain = templates.for_inference(templates.load("chatml"))
    tokenizer.chat_template = plain
    templates.save_with(tokenizer, tmp_path)
    assert not (tmp_path / templates.TRAINING_FILE).exists()
    assert templates.ollama_template("{{ messages }}") is None and templates.shipped_name(None) is None


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed (.ci/run installs golang-go)")
def test_ollama_templates_format_the_chat_as_the_jinja_ones(tmp_path, tokenizer):
    """Each shipped template's Modelfile TEMPLATE, rendered by Go's text/template over .Messages as Ollama does,
    gives the Jinja rendering less its leading begin-of-text token (which llama.cpp and Ollama add)."""
    cases, wanted = [], []
    for name in templates.SHIPPED:
        marked = templates.load(name)
        for chat in (c for c in CHATS.values() if c[-1]["role"] == "user"):  # Ollama renders to generate
            text = render(tokenizer, marked, chat, True)
            wanted.append((name, text[len("<s>"):] if text.startswith("<s>") else text))
            cases.append({"template": templates.ollama_template(marked), "messages": chat})
    helper = Path(__file__).resolve().parents[1] / "go" / "ollama_render.go"
    env = {**os.environ, "GOCACHE": str(tmp_path / "gocache"), "GOPATH": str(tmp_path / "gopath"),
           "GO111MODULE": "off"}
    proc = subprocess.run(["go", "run", str(helper)], input=json.dumps(cases), capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for (name, text), got in zip(wanted, json.loads(proc.stdout)):
        assert got == text, name
