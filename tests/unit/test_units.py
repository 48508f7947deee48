"""Units without a model: settings generated from config classes, the piece translator and the translation job
with a fake translator, checkpoint files, the training settings record, and the shape of the code."""

from __future__ import annotations

import argparse
import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, write_jsonl

from l2l.cli import Parser, UsageError
from l2l.config import add_arguments, from_args, nested, option, to_argv
from l2l.translate import checkpoints
from l2l.translate.job import JobConfig, TranslationJob
from l2l.translate.pieces import PieceTranslator
from l2l.translate.translators.base import Translator, TranslatorOptions


# ------------------------------------------------------------------------------------------ settings
@dataclass
class Inner:
    colour: str = option("red", "A colour.", choices=["red", "blue"])


@dataclass
class Example:
    name: str = option(help="A name.", positional=True)
    size: int = option(3, "A size.", type=int)
    fast: bool = option(False, "Go fast.", exclusive="speed")
    slow: bool = option(False, "Go slow.", exclusive="speed")
    label: str | None = option(None, "A label.", flag="--the_label")
    inner: Inner = nested(Inner)
    given: str = "by the caller"

    def __post_init__(self):
        if self.size < 0:
            raise UsageError("--size must be >= 0")


def parse(argv):
    p = Parser(prog="x")
    add_arguments(p, Example)
    return p.parse_args(argv)


def test_parser_is_generated_from_the_config_class():
    cfg = from_args(Example, parse(["n", "--size", "5", "--fast", "--the_label", "L", "--colour", "blue"]))
    assert cfg == Example(name="n", size=5, fast=True, label="L", inner=Inner("blue"))
    assert from_args(Example, parse(["n"])) == Example(name="n")  # every default comes from the class
    help_text = Parser(prog="x")
    add_arguments(help_text, Example)
    assert "A size. Default 3." in " ".join(help_text.format_help().split())
    for bad in (["n", "--fast", "--slow"], ["n", "--colour", "green"], ["n", "--siz", "4"], []):
        with pytest.raises(SystemExit) as e:
            parse(bad)  # exclusive flags, a bad choice, an abbreviation, a missing positional
        assert e.value.code == 2
    with pytest.raises(UsageError, match="--size"):
        from_args(Example, parse(["n", "--size", "-1"]))  # validated once, by the class


def test_flags_rebuild_the_config():
    cfg = Example(name="n", size=7, slow=True, label="a b", inner=Inner("blue"))
    argv = to_argv(cfg)
    assert argv == ["--size", "7", "--slow", "--the_label", "a b", "--colour", "blue"]
    assert from_args(Example, parse(["n", *argv])) == cfg
    assert to_argv(Example(name="n")) == []


def test_suppressed_flags_leave_the_namespace_alone():
    p = argparse.ArgumentParser()
    add_arguments(p, Example, positionals=False, suppress=True)
    assert vars(p.parse_args([])) == {}
    assert vars(p.parse_args(["--size", "2"])) == {"size": 2}


# ------------------------------------------------------------------------------------- fake translator
class Fake(Translator):
    """Upper-cases text; optionally drops placeholders (X1...), as a model that mangles them would."""

    name = "fake"

    def __init__(self, drop_placeholders: bool = False):
        super().__init__(TranslatorOptions())
        self.calls: list[list[str]] = []
        self.drop = drop_placeholders

    @property
    def model_id(self) -> str:
        return "fake-model"

    def target_code(self, code: str) -> str:
        return code

    def translate(self, texts, source, target):
        self.calls.append(list(texts))
        out = [t.upper() for t in texts]
        return [o.replace("X1", "") for o in out] if self.drop else out


def test_piece_translator_sends_each_piece_once_in_batches():
    fake = Fake()
    pieces = PieceTranslator(fake, "nl", batch_size=2)
    texts = ["Hello there. How are you?", "How are you?", "Hello there.", "Fine."]
    assert pieces.translate_texts(texts, "en") == ["HELLO THERE. HOW ARE YOU?", "HOW ARE YOU?", "HELLO THERE.", "FINE."]
    sent = [t for call in fake.calls for t in call]
    assert sorted(sent) == ["Fine.", "Hello there.", "How are you?"]  # distinct pieces only
    assert all(len(call) <= 2 for call in fake.calls) and pieces.stats.model_calls == len(fake.calls) == 2
    assert pieces.translate_texts(["Fine. How are you?"], "en") == ["FINE. HOW ARE YOU?"]
    assert len(fake.calls) == 2  # everything came from the cache
    assert pieces.stats.pieces == 7 and pieces.stats.model_pieces == 3


def test_sentence_pieces_do_not_multiply_model_calls():
    """--batch_size N means N texts per call, as in LLaMa2lang, however many sentences the texts hold."""
    texts = [f"Sentence {i} one here. Then sentence {i} two here! And {i} three, the last one?" for i in range(40)]
    fake = Fake()
    pieces = PieceTranslator(fake, "nl", batch_size=10)
    assert pieces.translate_texts(texts, "en") == [t.upper() for t in texts]
    assert pieces.stats.model_pieces == 120  # three sentences each, all distinct
    assert pieces.stats.model_calls <= 5  # LLaMa2lang: 4 calls of 10 texts; 10 pieces a call would make 12
    assert max(len(call) for call in fake.calls) >= 25
    fixed = PieceTranslator(Fake(), "nl", batch_size=10, max_batch_tokens=40)  # an explicit budget wins
    fixed.translate_texts(texts, "en")
    assert fixed.stats.model_calls > 12


def test_piece_translator_falls_back_when_a_placeholder_is_lost():
    fake = Fake(drop_placeholders=True)
    pieces = PieceTranslator(fake, "nl")
    (out,) = pieces.translate_texts(["Run `ls -la` in the folder."], "en")
    assert "`ls -la`" in out and out.startswith("RUN") and out.rstrip(".").endswith("FOLDER")
    assert pieces.stats.fallbacks == 1


def test_translation_job_with_a_fake_translator(tmp_path):
    rows = [{"instruction": f"Say {i}.", "output": "Done. Say it.", "lang": "en"} for i in range(5)]
    rows.append({"instruction": "Al vertaald.", "output": "Ja.", "lang": "nl"})
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = JobConfig(target_lang="nl", checkpoint_dir=tmp_path / "ck", dataset=str(data),
                    text_field="instruction,output", checkpoint_n=4, keep_source=True)
    job = TranslationJob(cfg, Fake())
    plan = job.prepare()
    assert plan.total == 6 and plan.fields == ["instruction", "output"] and not cfg.checkpoint_dir.exists()
    stats = job.run(plan)
    assert stats.records == 6 and stats.chunks == 2 and stats.passthrough == 1
    chunks = checkpoints.read_all(cfg.checkpoint_dir)
    records = [r for c in chunks for r in c.records]
    assert records[0] == {"instruction": "SAY 0.", "output": "DONE. SAY IT.", "lang": "nl",
                          "instruction_source": "Say 0.", "output_source": "Done. Say it.", "source_lang": "en"}
    assert records[5]["instruction"] == "Al vertaald." and records[5]["lang"] == "nl"
    assert job.pieces.stats.model_pieces == 7  # "Say 0." .. "Say 4.", "Done.", "Say it."
    again = TranslationJob(cfg, Fake())
    assert again.prepare().total == 0  # resume: nothing left


def test_resume_with_another_dataset_is_refused(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [{"text": "One.", "lang": "en"}, {"text": "Two.", "lang": "en"}])
    other = write_jsonl(tmp_path / "b.jsonl", [{"text": "Three.", "lang": "en"}])
    ck = tmp_path / "ck"
    job = TranslationJob(JobConfig(target_lang="nl", checkpoint_dir=ck, dataset=str(first), end_index=1), Fake())
    job.run(job.prepare())
    with pytest.raises(UsageError, match="holds a translation of .*a.jsonl, not .*b.jsonl"):
        TranslationJob(JobConfig(target_lang="nl", checkpoint_dir=ck, dataset=str(other)), Fake()).prepare()
    write_jsonl(first, [{"text": "One.", "lang": "en"}, {"text": "Two.", "lang": "en"}, {"text": "3", "lang": "en"}])
    with pytest.raises(UsageError, match="has changed since .* had 2 records, now 3"):
        TranslationJob(JobConfig(target_lang="nl", checkpoint_dir=ck, dataset=str(first)), Fake()).prepare()


def test_one_split_at_a_time_into_one_folder_then_all(tmp_path):
    """--split train, then --split validation, then every split: each run adds its split to the manifest and
    continues; nothing is refused as another dataset, nothing is translated twice."""
    import datasets

    from l2l.translate.combine import combine

    folder = tmp_path / "ds"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": f"One {i}.", "lang": "en"} for i in range(3)]),
                          "validation": datasets.Dataset.from_list([{"text": "Two.", "lang": "en"}])}
                         ).save_to_disk(str(folder))
    ck = tmp_path / "ck"

    def run(split):
        job = TranslationJob(JobConfig(target_lang="nl", checkpoint_dir=ck, dataset=str(folder), split=split), Fake())
        plan = job.prepare()
        job.run(plan)
        return plan.total

    assert [run("train"), run("validation"), run(None)] == [3, 1, 0]
    manifest = checkpoints.read_manifest(ck)
    assert manifest["split_sizes"] == {"train": 3, "validation": 1} and set(manifest["split_fingerprints"]) == {
        "train", "validation"}
    before = combine(ck).splits
    assert [r["text"] for r in before["validation"]] == ["TWO."]
    (ck / "manifest.json").unlink()  # lost: rebuilt from the chunks of both runs
    rebuilt = checkpoints.manifest_from_chunks(checkpoints.read_all(ck), ck)
    assert rebuilt["split_fingerprints"] == manifest["split_fingerprints"] and rebuilt["split_sizes"] == {
        "train": 3, "validation": 1}
    assert run(None) == 0 and combine(ck).splits == before


def test_conversation_columns_stored_as_large_lists_are_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from l2l.data import load_any
    from l2l.shapes import check_text_columns

    turn = pa.struct([("role", pa.string()), ("content", pa.string())])
    table = pa.table({"messages": pa.array([[{"role": "user", "content": "Hi."}]], type=pa.large_list(turn))})
    pq.write_table(table, tmp_path / "m.parquet")
    check_text_columns(load_any(str(tmp_path / "m.parquet")), ["messages"], "m.parquet")  # no refusal


def test_job_settings_are_validated_once():
    with pytest.raises(UsageError, match="--shard_index"):
        JobConfig(target_lang="nl", checkpoint_dir="x", num_shards=2, shard_index=2)
    with pytest.raises(UsageError, match="--end_index"):
        JobConfig(target_lang="nl", checkpoint_dir="x", start_index=5, end_index=5)
    with pytest.raises(UsageError, match="--ct2_compute_type needs --engine ctranslate2"):
        TranslatorOptions(ct2_compute_type="int8")
    with pytest.raises(UsageError, match="--engine ctranslate2 does not support fake"):
        Translator.__init__(Fake.__new__(Fake), TranslatorOptions(engine="ctranslate2"))


# -------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_chunks_round_trip_and_refuse_corruption(tmp_path):
    checkpoints.write_chunk(tmp_path, "train", [0, 1], [{"a": 1}, {"a": 2}], {"translator": "fake"})
    second = checkpoints.write_chunk(tmp_path, "train", [0, 1], [{"a": 3}, {"a": 4}], {})
    assert second.name != "chunk-train-000000000-000000001.json"  # finished work is never overwritten
    assert checkpoints.covered(checkpoints.read_all(tmp_path)) == {"train": {0, 1}}
    second.write_text(json.dumps({"format": checkpoints.FORMAT, "indices": [0], "records": [], "count": 0}))
    with pytest.raises(checkpoints.CorruptCheckpoint, match=second.name):
        checkpoints.read_all(tmp_path)
    second.unlink()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a checkpoint: notes.txt"):
        checkpoints.scan(tmp_path)


# ---------------------------------------------------------------------------------------- training settings
def test_training_settings_are_recorded_and_checked_on_resume(tmp_path):
    from l2l.train.config import SETTINGS_FILE, SFTOptions, check_checkpoints, flat_settings, record_checkpoints

    def prepare_checkpoints(cfg, settings):
        check_checkpoints(cfg, settings)
        record_checkpoints(cfg, settings)

    def cfg(**kw):
        return SFTOptions(tuned_model=str(tmp_path / "out"), dataset_name="d", instruction_prompt="p", **kw)

    with pytest.raises(UsageError, match="--learning_rate"):
        cfg(learning_rate=-1)
    first = cfg(lora_r=8)
    prepare_checkpoints(first, flat_settings(first))
    folder = Path(first.checkpoints_dir)
    assert json.loads((folder / SETTINGS_FILE).read_text())["lora_r"] == 8
    (folder / "checkpoint-2").mkdir()
    longer = cfg(lora_r=8, max_steps=10, logging_steps=1)
    prepare_checkpoints(longer, flat_settings(longer))  # running longer or logging more often is a resume
    changed = cfg(lora_r=16, learning_rate=1e-3)
    with pytest.raises(UsageError, match=r"--learning_rate \(0.0002 -> 0.001\), --lora_r \(8 -> 16\).*--overwrite"):
        prepare_checkpoints(changed, flat_settings(changed))
    assert (folder / "checkpoint-2").is_dir()
    fresh = cfg(lora_r=16, learning_rate=1e-3, overwrite=True)
    prepare_checkpoints(fresh, flat_settings(fresh))
    assert not (folder / "checkpoint-2").exists()
    assert json.loads((folder / SETTINGS_FILE).read_text())["lora_r"] == 16


# ------------------------------------------------------------------------------------------------ code shape
def python_files():
    for pattern in ("*.py", "l2l/**/*.py", "threads/*.py", "bench/*.py"):
        yield from sorted(ROOT.glob(pattern))


def test_no_function_over_60_lines_and_no_class_over_200():
    too_long = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                limit = 200 if isinstance(node, ast.ClassDef) else 60
                if node.end_lineno - node.lineno + 1 > limit:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert too_long == []


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


# What each layer of l2l/ may import from the package: the ground floor (l2l/*.py) no stage folder; translation
# and thread building nothing of each other or of training; training the threads it trains on.
LAYERS = {"l2l": (), "l2l.translate": (), "l2l.threads": (), "l2l.train": ("l2l.threads",)}
STAGES = ("l2l.translate", "l2l.threads", "l2l.train")


def test_the_package_imports_one_way():
    """Nothing under l2l/ imports a script or the `threads` command; the stage folders stand on the ground floor
    and never on each other, except training on thread building."""
    scripts = {p.stem for p in ROOT.glob("*.py")}
    for path in sorted((ROOT / "l2l").rglob("*.py")):
        rel = path.relative_to(ROOT)
        layer = ".".join(rel.parts[:2]) if len(rel.parts) > 2 else "l2l"
        for module in imported_modules(path):
            top = module.split(".")[0]
            assert top not in scripts and top != "threads", f"{rel} imports {module}"
            stage = next((s for s in STAGES if module == s or module.startswith(s + ".")), None)
            assert stage is None or stage == layer or stage in LAYERS[layer], f"{rel} ({layer}) imports {module}"


def test_answers_that_do_not_answer_are_named():
    from l2l.answers import answer_fault

    q = "Como posso renovar a minha licença de obras na câmara municipal?"
    assert answer_fault(q, "Pode renovar a licença no balcão de atendimento, com o formulário preenchido.") is None
    assert answer_fault(q, "") == "empty" and answer_fault(q, " Sim. ") == "empty"
    assert answer_fault(q, q) == "echo" and answer_fault(q, "Como posso renovar a minha licença de obras?") == "echo"
    assert answer_fault(q, "O que é o que é o que é o que é o que é o que é") == "loop"
    started_well = "A licença é renovada no balcão com o formulário e a taxa paga. " + "e a taxa e a taxa " * 8
    assert answer_fault(q, started_well) == "loop"
    long_real = ("Primeiro reúna os documentos da obra, depois preencha o pedido de renovação no portal, pague a "
                 "taxa indicada e aguarde a resposta dos serviços técnicos, que costuma chegar em duas semanas.")
    assert answer_fault(q, long_real) is None


def test_translation_checks_name_each_fault():
    from l2l.translate.quality import Pair, check_pairs, check_splits, record_result, text_flags

    src = "Use `pip install l2l` and see https://example.org/docs for the 3 steps:\n- one\n- two\n- three"
    good = "Use `pip install l2l` e veja https://example.org/docs para os 3 passos:\n- um\n- dois\n- três"
    assert text_flags(src, good) == []
    assert text_flags(src, good.replace("https://example.org/docs", "o site")) == ["structure"]
    assert text_flags(src, good.replace("`pip install l2l`", "pip")) == ["structure"]
    assert text_flags(src, good.replace("3", "três")) == ["structure"]
    assert text_flags(src, good.replace("\n- dois", " dois")) == ["structure"]
    assert text_flags("It costs 1,000.50 euros.", "Custa 1.000,50 euros.") == []  # numbers written the local way
    assert text_flags("How are you today, my friend?", "How are you today, my friend?") == ["untranslated"]
    assert text_flags("Paris", "Paris") == [] and text_flags("", "") == []  # a name; nothing to translate
    assert text_flags("Say hello to everyone in the room.", "  ") == ["empty"]
    # numbers grouped the local way, in another script, a URL at the end of a sentence: all kept
    assert text_flags("It costs 1,000.50 euros at 10:30.", "Il coûte 1 000,50 euros à 10.30.") == []
    assert text_flags("I have 25 apples.", "لدي ٢٥ تفاحة.") == []
    assert text_flags("See https://example.com.", "Zie https://example.com voor meer.") == []
    assert text_flags("brick 1,200-2,200 SEK", "tijolo 1,200 SEK") == ["structure"]  # a real MT fault
    for same in ("Barack Obama", "The Great Gatsby", "SELECT name FROM users WHERE id = 3;",
                 "def add(a, b): return a + b"):
        assert text_flags(same, same) == [], same  # names, titles and code are the same in every language
    turns = [{"role": "user", "content": "Hi there, how are you?"}, {"role": "assistant", "content": "Fine."}]
    lost = check_splits({"train": [{"messages": turns[:1], "messages_source": turns}]}, ["messages"], "en")[0]
    assert lost["train"] == [(["structure"], 0.6)]  # a turn lost in translation
    few = [Pair("The building has four floors and a large garden.", "建筑有四层楼和一个大花园。") for _ in range(2)]
    check_pairs(few, "zh")
    assert [p.flags for p in few] == [[], []]  # too few texts to learn the en->zh length ratio: not judged
    assert record_result([Pair("a", "b", ["loop"]), Pair("a", "b", ["empty", "structure"])]) == (
        ["empty", "loop", "structure"], 0.0)
    base = "O edifício tem quatro andares e um jardim grande atrás da casa, perto do rio."
    pairs = [Pair("The building has four floors and a large garden behind the house, near the river.",
                  base) for _ in range(8)]
    pairs.append(Pair(pairs[0].source, base[:20] + "."))
    pairs.append(Pair(pairs[0].source, base + " " + base + " E mais uma coisa sobre a cidade inteira."))
    check_pairs(pairs, "pt")
    assert [p.flags for p in pairs[:8]] == [[]] * 8 and pairs[8].flags == ["length"] and pairs[9].flags == ["length"]
    rows = [{"text": "Olá a todos, bom dia.", "text_source": "Olá a todos, bom dia.", "source_lang": "pt"},
            {"text": "Hello everyone, good morning.", "text_source": "Hello everyone, good morning.",
             "source_lang": "en"}]
    results, report = check_splits({"train": rows}, ["text"], "pt-BR")
    assert results["train"] == [([], 1.0), (["untranslated"], 0.1)]  # the first was already Portuguese
    assert report.per_check["untranslated"] == 1 and report.flagged == 1
