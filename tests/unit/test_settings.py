"""One settings system: every script's flags come from option() dataclasses, any of them from a run file
(`--config FILE`, YAML or JSON), the command line winning; the shipped recipes parse; a training run's recorded
settings replay it."""

from __future__ import annotations

import dataclasses
import json
import shlex

import pytest
import yaml
from conftest import ROOT, run_main

from l2l.cli import UsageError
from l2l.config import from_args, names_where

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def parser_of(script: str):
    import importlib

    if script in ("finetune_dpo.py", "finetune_orpo.py"):
        from l2l.train.preference import build_parser

        return build_parser(script, "")
    return importlib.import_module(script.removesuffix(".py")).build_parser()


def test_every_script_takes_a_run_file():
    scripts = sorted(p.name for p in ROOT.glob("*.py"))
    for script in scripts:
        assert "--config" in parser_of(script).format_help(), script


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_parse_with_their_script(recipe, monkeypatch):
    monkeypatch.chdir(ROOT)
    values = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    script = values.pop("script")
    extra = ["--base_model", "B"] if recipe.name.startswith("quickstart") else []
    args = parser_of(script).parse_args(["--config", str(recipe.relative_to(ROOT)), *extra])
    for key, value in values.items():
        dest = {"checkpoint_location": "checkpoint_dir", "base_dataset": "dataset"}.get(key, key)
        got = getattr(args, dest)
        assert (str(got) if key == "checkpoint_location" else got) == value, (recipe.name, key)


def quickstart_line(stage: str) -> list[str]:
    """The argv of one training command of scripts/quickstart.sh, with its shell variables filled in."""
    text = (ROOT / "scripts" / "quickstart.sh").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(x for x in text.splitlines() if x.startswith(f"$PY {stage} "))
    values = {"$OUT": "quickstart_output", "$BASE": "B", "$SFT_STEPS": "30", "$DPO_STEPS": "10"}
    for k, v in values.items():
        line = line.replace(f'"{k}', f'"{v}').replace(k, v)
    return shlex.split(line)[2:]


def test_the_quickstart_trains_from_its_recipe(monkeypatch):
    """scripts/quickstart.sh's SFT and DPO runs are the recipes plus the folders: the same settings as the
    explicit command lines they replaced."""
    monkeypatch.chdir(ROOT)
    prompt = "Você é um assistente prestativo que sempre responde em português do Brasil."
    explicit = {
        "finetune.py": ["quickstart_output/smollm2-pt-sft", "quickstart_output/oasst_sample_pt", prompt,
                        "--base_model", "B", "--thread_template", "chatml", "--english_fraction", "0.1",
                        "--max_steps", "30", "--batch_size", "4", "--max_seq_length", "256", "--learning_rate",
                        "2e-4", "--logging_steps", "5", "--save_steps", "1000", "--overwrite"],
        "finetune_dpo.py": ["quickstart_output/smollm2-pt-dpo", "quickstart_output/oasst_sample_pt", prompt,
                            "--base_model", "B", "--adapter", "quickstart_output/smollm2-pt-sft", "--max_steps",
                            "10", "--batch_size", "2", "--max_seq_length", "256", "--max_prompt_length", "128",
                            "--learning_rate", "5e-5", "--logging_steps", "2", "--save_steps", "1000",
                            "--overwrite"],
    }
    for script, argv in explicit.items():
        line = quickstart_line(script)
        assert "--config" in line
        assert vars(parser_of(script).parse_args(line)) | {"config": None} == vars(parser_of(script).parse_args(argv))


def test_command_line_wins_and_exclusive_flags_follow_it(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("tuned_model: T\ndataset_name: D\ninstruction_prompt: P\nquant8: true\nlora_r: 8\n"
                   "learning_rate: 1.0e-4\n", encoding="utf-8")
    args = parser_of("finetune.py").parse_args(["--config", str(run), "--noquant", "--lora_r", "4", "X"])
    assert (args.tuned_model, args.dataset_name, args.instruction_prompt) == ("X", "D", "P")
    assert args.noquant and not args.quant8 and args.lora_r == 4 and args.learning_rate == 1e-4
    args = parser_of("finetune.py").parse_args(["--config", str(run)])
    assert args.quant8 and not args.noquant and args.lora_r == 8


def test_positionals_on_the_command_line_fill_what_the_run_file_leaves_out(tmp_path):
    chat = tmp_path / "chat.yaml"
    chat.write_text("model_name: M\ninstruction_prompt: P\n", encoding="utf-8")
    args = parser_of("run_inference.py").parse_args(["--config", str(chat), "Hoe gaat het?"])
    assert (args.model_name, args.instruction_prompt, args.input) == ("M", "P", "Hoe gaat het?")
    args = parser_of("run_inference.py").parse_args(["--config", str(chat)])
    assert (args.model_name, args.instruction_prompt, args.input) == ("M", "P", None)
    args = parser_of("run_inference.py").parse_args(["--config", str(chat), "M2", "P2", "Q"])  # all given: all win
    assert (args.model_name, args.instruction_prompt, args.input) == ("M2", "P2", "Q")


def test_translate_run_file_names_the_backend_and_the_command_line_can_change_it(tmp_path):
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"backend": "nllb", "target_lang": "nl", "checkpoint_location": "ck",
                               "model_size": "1.3b", "batch_size": 5}), encoding="utf-8")
    args = parser_of("translate.py").parse_args(["--config", str(run)])
    assert (args.backend, args.target_lang, str(args.checkpoint_dir), args.model_size, args.batch_size) == (
        "nllb", "nl", "ck", "1.3b", 5)
    args = parser_of("translate.py").parse_args(["--batch_size", "7", "--config", str(run), "m2m", "de", "x",
                                                 "--model_size", "1.2b"])
    assert (args.backend, args.target_lang, args.batch_size, args.model_size) == ("m2m", "de", 7, "1.2b")
    with pytest.raises(UsageError, match="model_size: '1.3b' is not one of 418m, 1.2b"):  # nllb's size, for m2m
        parser_of("translate.py").parse_args(["--config", str(run), "m2m", "de", "x"])


def test_list_positionals_and_repeatable_flags_from_a_run_file(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("datasets: one.jsonl\ntokenizer: tok\n", encoding="utf-8")  # one item of a list flag
    assert parser_of("dataset_stats.py").parse_args(["--config", str(run)]).datasets == ["one.jsonl"]
    run.write_text("datasets: [a, b]\ntokenizer: tok\n", encoding="utf-8")
    args = parser_of("dataset_stats.py").parse_args(["--config", str(run)])
    assert (args.datasets, args.tokenizer) == (["a", "b"], "tok")
    assert parser_of("dataset_stats.py").parse_args(["--config", str(run), "c"]).datasets == ["c"]
    run.write_text("base_model: B\ntuned_model: T\ndataset: D\ntarget_lang: nl\nchoices_file: [x.jsonl, y.jsonl]\n",
                   encoding="utf-8")
    assert parser_of("evaluate_model.py").parse_args(["--config", str(run)]).choices_file == ["x.jsonl", "y.jsonl"]


def test_recorded_training_settings_replay_the_run(tmp_path):
    """l2l_training_settings.json, as a run writes it, read back as a run file gives the same settings."""
    from l2l.threads.args import thread_options
    from l2l.train.config import SFTOptions, flat_settings

    argv = ["T", "D", "P", "--lora_r", "8", "--noquant", "--english_fraction", "0.2", "--base_dataset_rank_field",
            "score", "--val_fraction", "0.1", "--push_to_hub", "--max_steps", "5"]
    args = parser_of("finetune.py").parse_args(argv)
    cfg = from_args(SFTOptions, args)
    settings = flat_settings(cfg, thread_options(args, cfg.dataset_name))
    record = tmp_path / "l2l_training_settings.json"
    record.write_text(json.dumps(settings), encoding="utf-8")
    again = parser_of("finetune.py").parse_args(["--config", str(record)])
    cfg2 = from_args(SFTOptions, again)
    assert flat_settings(cfg2, thread_options(again, cfg2.dataset_name)) == settings


def test_the_settings_record_resumes_when_replayed(tmp_path):
    """A run started with --overwrite records its settings without it: replaying the record resumes the run
    instead of deleting its checkpoints."""
    from l2l.train.config import SETTINGS_FILE, SFTOptions, record_checkpoints

    cfg = SFTOptions(tuned_model=str(tmp_path / "T"), dataset_name="D", instruction_prompt="P", overwrite=True)
    record_checkpoints(cfg, {"lora_r": 16, "overwrite": True})
    record = json.loads((tmp_path / "T-checkpoints" / SETTINGS_FILE).read_text())
    assert record == {"lora_r": 16}


@pytest.mark.parametrize("text,expected", [
    ("lora_rr: 8\n", "no flag --lora_rr in this command"),
    ("quant8: true\nnoquant: true\n", "quant8 and noquant cannot be used together"),
    ("base_model: no\n", "base_model takes one value, got true/false (quote it if it is text: 'no')"),
    ("base_model: [a, b]\n", "base_model takes one value, got a list"),
    ("lora_r: -1\n", "lora_r: expected a positive integer"),
    ("noquant: 'yes'\n", "noquant is a switch"),
    ("padding: middle\n", "'middle' is not one of left, right"),
    ("- a\n- b\n", "expected a mapping of flag names to values"),
    ("a: [\n", "not a YAML or JSON file"),
    ("script: translate.py\n", "is a run file for translate.py, not finetune.py"),
])
def test_bad_run_files_are_one_line(tmp_path, text, expected):
    run = tmp_path / "run.yaml"
    run.write_text(text, encoding="utf-8")
    proc = run_main("finetune.py", "--config", run, "T", "D", "P")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / "T").exists()
    proc = run_main("finetune.py", "--config", tmp_path / "missing.yaml", "T", "D", "P")
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_resume_and_card_lists_come_from_field_metadata():
    from l2l.train.config import PretrainOptions, SFTOptions, resumable_settings

    cfg = SFTOptions(tuned_model="T", dataset_name="D", instruction_prompt="P")
    resumable = set(resumable_settings(cfg))
    assert {"max_steps", "save_steps", "output_dir", "push_to_hub", "threads_output_name", "cpu"} <= resumable
    assert not {"lora_r", "learning_rate", "dataset_name", "base_model"} & resumable
    card = names_where(SFTOptions, "card")
    assert {"base_model", "dataset_name", "instruction_prompt", "lora_r", "learning_rate", "seed"} <= set(card)
    assert "instruction_prompt" not in names_where(PretrainOptions, "card")
    pretrain_fields = {f.name for f in dataclasses.fields(PretrainOptions)}
    assert not pretrain_fields & {"instruction_prompt", "threads_output_name"}


def test_generation_flags_are_declared_once():
    from l2l.inference import GenerationOptions

    args = parser_of("run_inference.py").parse_args(["M", "P", "--temperature", "0", "--top_p", "0.5"])
    from run_inference import InferenceOptions

    cfg = from_args(InferenceOptions, args)
    assert cfg.generation == GenerationOptions(temperature=0.0, top_p=0.5)
    with pytest.raises(UsageError, match="--top_p"):
        from_args(InferenceOptions, parser_of("run_inference.py").parse_args(["M", "P", "--top_p", "2"]))
