"""combine_checkpoints.py end to end: a DatasetDict on disk, every record once, refusals that write nothing."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import load_records, oasst_rows, run_cli, run_in_process, run_main


@pytest.fixture()
def translated(tmp_path, models, data):
    ckpt = tmp_path / "ckpt"
    run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", ckpt, "--base_dataset", data["disk"],
                   "--checkpoint_n", "2", check=True)
    return ckpt


def test_combine_writes_dataset_dict_with_counts(tmp_path, translated):
    out = tmp_path / "deep" / "combined"
    proc = run_cli("combine_checkpoints.py", translated, out, check=True)
    assert proc.stdout.strip() == str(out)
    rows = load_records(out)
    src = oasst_rows()
    assert [r["message_id"] for r in rows["train"]] == [r["message_id"] for r in src[:6]]
    # validation holds de, de, eo (skipped: M2M100 has no Esperanto) and en
    assert [r["message_id"] for r in rows["validation"]] == ["g", "h", "j"]
    assert "train: 6 records (nl: 6)" in proc.stderr
    assert "validation: 3 records (nl: 3)" in proc.stderr
    assert (out / "dataset_dict.json").exists()


def test_duplicate_records_are_kept_once(tmp_path, translated):
    first = sorted(translated.glob("chunk-train-*.json"))[0]
    data = json.loads(first.read_text())
    copy = translated / "chunk-train-000000000-000000001-1.json"  # e.g. a shard that ran the same range again
    data["records"] = [{**r, "text": "DUPLICATE"} for r in data["records"]]
    copy.write_text(json.dumps(data))
    out = tmp_path / "out"
    proc = run_cli("combine_checkpoints.py", translated, out, check=True)
    assert "2 records appeared in more than one checkpoint" in proc.stderr
    rows = load_records(out)["train"]
    assert len(rows) == 6 and all(r["text"] != "DUPLICATE" for r in rows)


def test_corrupt_checkpoint_is_named_and_nothing_written(tmp_path, translated):
    victim = sorted(translated.glob("chunk-validation-*.json"))[0]
    victim.write_text(victim.read_text()[:-40])  # a truncated file, as a disk-full copy would leave
    out = tmp_path / "out"
    proc = run_cli("combine_checkpoints.py", translated, out)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and victim.name in proc.stderr and "corrupt" in proc.stderr
    assert not out.exists()


def test_existing_output_needs_overwrite_and_only_its_own_is_replaced(tmp_path, translated):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run_cli("combine_checkpoints.py", translated, out)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    proc = run_main("combine_checkpoints.py", translated, out, "--overwrite")  # the user's folder: never deleted
    assert proc.returncode == 2 and "holds files this toolkit did not write (such as keep.txt)" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    run_cli("combine_checkpoints.py", translated, out, check=True)
    assert (out / ".l2l_output.json").is_file()
    run_cli("combine_checkpoints.py", translated, out, "--overwrite", check=True)  # its own output: replaced
    assert len(load_records(out)["train"]) == 6


def test_the_first_written_copy_wins_whatever_the_file_names(tmp_path, translated):
    first = sorted(translated.glob("chunk-train-*.json"))[0]
    data = json.loads(first.read_text())
    # written later, under a name that sorts first
    later = {**data, "written_ns": data["written_ns"] + 1, "records": [{**r, "text": "LATER"} for r in data["records"]]}
    (translated / "chunk-train-000000000-000000000.json").write_text(json.dumps(later))
    rows = combined_rows(tmp_path, translated)
    assert len(rows) == 6 and all(r["text"] != "LATER" for r in rows)


def combined_rows(tmp_path, folder):
    out = tmp_path / "combined"
    run_in_process("combine_checkpoints.py", folder, out, "--overwrite", check=True)
    return load_records(out)["train"]


def test_a_chunk_of_another_run_is_refused_and_a_lost_manifest_rebuilt(tmp_path, models, data, translated):
    expected = combined_rows(tmp_path, translated)
    (translated / "manifest.json").unlink()  # lost: rebuilt from the chunks, which all name this translation
    sorted(translated.glob("chunk-train-*.json"))[-1].unlink()  # and some work to do again
    run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", translated, "--base_dataset",
                   data["disk"], "--checkpoint_n", "2", check=True)
    assert json.loads((translated / "manifest.json").read_text())["keep_source"] is False
    assert combined_rows(tmp_path, translated) == expected
    other = tmp_path / "other"  # another run over another dataset of the same size, into the same language
    import datasets

    rows = [{**r, "text": f"{r['text']} Anders."} for r in oasst_rows()]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:6]), "validation": datasets.Dataset.from_list(
        rows[6:])}).save_to_disk(str(tmp_path / "other_disk"))
    run_in_process("translate.py", "m2m", "--model_name", models["m2m"], "nl", other, "--base_dataset",
                   tmp_path / "other_disk", "--checkpoint_n", "2", check=True)
    stray = sorted(other.glob("chunk-train-*.json"))[-1]
    shutil.copy(stray, translated / stray.name.replace(".json", "-9.json"))
    proc = run_main("combine_checkpoints.py", translated, tmp_path / "mixed")
    assert proc.returncode == 2 and "belongs to another translation (dataset_fingerprint" in proc.stderr
    assert not (tmp_path / "mixed").exists()
    proc = run_main("translate.py", "m2m", "--model_name", models["m2m"], "nl", translated, "--base_dataset",
                    data["disk"])
    assert proc.returncode == 2 and "belongs to another translation" in proc.stderr


def test_missing_or_empty_folder(tmp_path):
    proc = run_main("combine_checkpoints.py", tmp_path / "nope", tmp_path / "out")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run_main("combine_checkpoints.py", tmp_path / "empty", tmp_path / "out")
    assert proc.returncode == 2 and "no checkpoint files" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_hub_only_when_asked_and_token_never_printed(tmp_path, translated):
    """Without --push_to_hub a missing local folder is created (LLaMa2lang pushed instead); with it, an
    unreachable Hub is one clean line that does not show the token."""
    secret = "hf_SECRETtoken1234567890"
    proc = run_cli("combine_checkpoints.py", translated, "someone/oasst1_nl", env={"HF_TOKEN": secret}, cwd=tmp_path,
                   check=True)
    assert (tmp_path / "someone" / "oasst1_nl" / "dataset_dict.json").exists()
    shutil.rmtree(tmp_path / "someone")
    proc = run_cli("combine_checkpoints.py", translated, "someone/oasst1_nl", "--push_to_hub",
                   env={"HF_TOKEN": secret}, cwd=tmp_path)
    assert proc.returncode == 2 and "cannot push to the Hub repository someone/oasst1_nl" in proc.stderr
    assert secret not in proc.stderr + proc.stdout
    assert not (tmp_path / "someone").exists()
