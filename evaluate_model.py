#!/usr/bin/env python
"""The base model and the tuned adapter side by side (the Arabic BARKA project's table): held-out perplexity
of target-language threads, the share of answers in the target language, and multiple-choice accuracy.

    python evaluate_model.py NousResearch/Meta-Llama-3-8B-Instruct ./llama3-nl --dataset ./oasst1_nl --target_lang nl
    python evaluate_model.py ./base ./tuned --dataset ./threads --target_lang pt-BR --choices_file mc_pt.jsonl

- perplexity: exp of the mean loss on the answer tokens of held-out threads (the validation or test split, or
  --eval_fraction of train), both models scored with the same chat template (the tuned model's);
- fidelity: answers are generated for the first question of --n_prompts held-out threads; the share that an
  offline language identifier (lingua) finds in --target_lang and that answer (not empty, not the question
  repeated, not a loop of the same words); in_language counts language alone, and empty/echo/loop the faults;
  answer_chrf: chrF (0-1) of those answers against the held-out threads' own answers;
- dialogs (--dialog_dataset): human conversations in the target language that nothing trained on, asked with
  no system prompt: the same fidelity on their first questions, and the perplexity of the human replies;
- multiple choice: JSONL files of {passage (optional), question, choices, answer (index or letter)}: the
  choice with the highest log-likelihood as the answer, accuracy against the key (a passage is shown with the
  target language's prompt words: "Texto: ... Pergunta: ...");
- lm-evaluation-harness tasks with --lm_eval_tasks (named, YAML files, or from --lm_eval_include_path) and
  the per-language presets with --benchmarks (--list_benchmarks L shows them): lm-eval and the tasks' data must
  be there; a task that cannot run is an error before any model loads, never a silent gap in the table.
Results: a printed table, results.md, results.json and chart.png in --output_dir.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

from l2l.cli import TRUST_REMOTE_CODE_HELP, Parser, UsageError, log, non_negative_int, positive_int, run
from l2l.config import add_arguments, from_args, option


@dataclass(kw_only=True)
class EvaluationOptions:
    """evaluate_model.py's settings."""

    base_model: str = option(help="The base model (Hub id or folder).", positional=True)
    tuned_model: str = option(help="The tuned adapter (or a full tuned model).", positional=True)
    dataset: str = option(help="Target-language data: translated dataset or threads.")
    target_lang: str = option(help="The language answers should be in (nl, pt-BR...).")
    instruction_prompt: str | None = option(None, "System prompt for every thread.")
    eval_fraction: float = option(
        0.1,
        "Held-out share of train records when the dataset has no validation/test split: give "
        "finetune.py's --val_fraction (and --seed) to score exactly its validation records; 1: all "
        "of it, for a dataset kept apart from training. Default 0.1.",
        type=float,
    )
    n_threads: int = option(200, "Held-out threads for perplexity. Default 200.", type=positive_int)
    n_prompts: int = option(50, "Questions answered for fidelity. Default 50.", type=positive_int)
    max_new_tokens: int = option(128, "Default 128.", type=positive_int)
    max_seq_length: int = option(1024, "Longest scored thread. Default 1024.", type=positive_int)
    choices_file: list[str] | None = option(None, "Multiple-choice JSONL (repeatable).", append=True)
    retention_dataset: str | None = option(
        None,
        "Held-out threads in the source language (e.g. English): their answer perplexity shows "
        "what the model kept (split as --dataset is).",
    )
    dialog_dataset: str | None = option(
        None,
        "Human conversations in the target language that nothing trained on (messages or ShareGPT JSONL, or "
        "any dataset --dataset takes), all of it, asked as a user asks: no system prompt. The first question of "
        "--n_prompts of them answered (dialog_fidelity, with its faults) and the perplexity of the human replies "
        "(dialog_perplexity).",
    )
    text_file: str | None = option(
        None,
        "Plain text in the target language, one passage a line, that nothing trained on (e.g. "
        "human-written prose): its perplexity, over all tokens.",
    )
    retention_text_file: str | None = option(
        None,
        "Plain text in the source language (e.g. general English prose), one passage a line: its "
        "perplexity shows what the model kept beyond the training domain.",
    )
    lm_eval_tasks: str | None = option(
        None, "Comma-separated lm-evaluation-harness tasks: names, or paths of task YAML files (needs "
        "requirements-eval.txt; a task that cannot run here, unknown or without its data, is exit 2 before any "
        "model loads).")
    lm_eval_include_path: str | None = option(
        None, "A folder of lm-eval task YAML files (lm_eval's --include_path): its tasks run by name, e.g. a "
        "local task with dataset_path: json over your own JSONL.")
    benchmarks: str | None = option(
        None, "Also run the --target_lang presets of this kind whose data is here (see --list_benchmarks): "
        "native (written in the language), human (translated by people), machine, or all.",
        choices=["native", "human", "machine", "all"])
    lm_eval_batch_size: int = option(1, "lm-eval batch size. Default 1.", type=positive_int)
    lm_eval_limit: int | None = option(None, "At most N examples per lm-eval task (lm_eval's --limit).",
                                       type=positive_int)
    lm_eval_num_fewshot: int | None = option(None, "Few-shot examples per lm-eval prompt (default: each task's own).",
                                             type=non_negative_int)
    lm_eval_chat_template: bool = option(False, "Format lm-eval prompts with the chat template (lm_eval's "
                                                "--apply_chat_template), as the tuned model is prompted.")
    thread_template: str | None = option(None, "Chat template for both models (default: the tuned one's).")
    output_dir: str = option("evaluation_results", "Default evaluation_results.")
    overwrite: bool = option(False, "Replace the results of an earlier evaluation in --output_dir.")
    seed: int = option(42, "Default 42.", type=int)
    quant4: bool = option(False, "Load the models in 4 bits.")
    cpu: bool = option(False, "Use the CPU even when a GPU is available.")
    trust_remote_code: bool = option(False, TRUST_REMOTE_CODE_HELP)


def build_parser() -> Parser:
    p = Parser(prog="evaluate_model.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, EvaluationOptions)
    p.add_argument("--list_benchmarks", action=ListBenchmarks, metavar="L",
                   help="Print the recognised benchmarks of language L (lm-eval task names, native or translated) "
                        "and exit.")
    return p


class ListBenchmarks(argparse.Action):
    """--list_benchmarks L answers at once, like --help: no positional arguments needed."""

    def __call__(self, parser, namespace, values, option_string=None):
        from l2l import benchmarks, languages

        try:
            languages.validate(values, "--list_benchmarks")
        except UsageError as e:
            parser.error(str(e))
        print(benchmarks.preset_table(values))
        parser.exit(0)


def choice_item(row, where: str) -> dict:
    """One multiple-choice question: its text, its choices, the index of the right one (given as an index, a
    letter, or the choice's text)."""
    if not isinstance(row, dict) or not all(k in row for k in ("question", "choices", "answer")):
        raise UsageError(f"{where}: expected question, choices and answer (index or letter)")
    question, choices, answer = row["question"], row["choices"], row["answer"]
    if not isinstance(question, str) or not isinstance(choices, list) or len(choices) < 2:
        raise UsageError(f"{where}: question must be a text and choices a list of at least two")
    if isinstance(answer, str):
        letter = answer.strip().upper()
        if len(letter) == 1 and letter.isalpha():
            answer = ord(letter) - ord("A")
        elif answer in choices:
            answer = choices.index(answer)
        else:
            raise UsageError(f"{where}: the answer {row['answer']!r} is neither a letter nor one of the choices")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise UsageError(f"{where}: the answer {row['answer']!r} is out of range for {len(choices)} choices "
                         f"(0-{len(choices) - 1}, or A-{chr(ord('A') + len(choices) - 1)})")
    passage = row.get("passage") or ""
    if not isinstance(passage, str):
        raise UsageError(f"{where}: passage must be a text")
    return {"passage": passage, "question": question, "choices": [str(c) for c in choices], "answer": answer}


def read_choices(path: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--choices_file {path}: no such file")
    from l2l.data import read_jsonl

    items = [choice_item(row, f"--choices_file {path}, line {n}") for n, row in read_jsonl(p, "--choices_file")]
    if not items:
        raise UsageError(f"--choices_file {path} is empty")
    return items


def held_out(cfg, dataset: str) -> list[list[dict]]:
    """The validation (or test) threads of `dataset`; else the --eval_fraction of its train records that
    `python -m threads`/finetune.py --val_fraction F --seed S set apart (same F and S: the same records); with
    --eval_fraction 1, all of it. Only the dataset's own threads: no English or translation-task mix."""
    from l2l.threads.make import ThreadOptions, build_threads

    whole = cfg.eval_fraction >= 1
    opts = ThreadOptions(dataset=dataset, instruction_prompt=cfg.instruction_prompt, seed=cfg.seed,
                         trust_remote_code=cfg.trust_remote_code, val_fraction=0.0 if whole else cfg.eval_fraction)
    splits = build_threads(opts)
    names = ["train"] if whole else ["validation", "test"]
    held = next((splits[n] for n in names if splits.get(n)), [])
    return [t["messages"] for t in held if t["origin"] == "translated"][: cfg.n_threads]


def dialogs(cfg) -> list[list[dict]]:
    """--dialog_dataset's conversations, all of them (nothing set apart: nothing trained on them), without a
    system prompt."""
    if not cfg.dialog_dataset:
        return []
    from l2l.threads.make import ThreadOptions, build_threads

    opts = ThreadOptions(dataset=cfg.dialog_dataset, instruction_prompt=None, seed=cfg.seed,
                         trust_remote_code=cfg.trust_remote_code, val_fraction=0.0)
    found = [t["messages"] for threads in build_threads(opts).values() for t in threads][: cfg.n_threads]
    if not found:
        raise UsageError(f"--dialog_dataset {cfg.dialog_dataset}: no conversation with a question and a reply")
    return found


def first_questions(threads: list[list[dict]], n: int) -> list[list[dict]]:
    """The first n threads cut after their first question (their system prompt kept)."""
    return [[m for m in t if m["role"] == "system"] + [next(m for m in t if m["role"] == "user")] for t in threads[:n]]


def token_logprobs(chat, ids: list[int]):
    """The log-probability the model gives each token of `ids` after the first."""
    import torch

    x = torch.tensor([ids], device=chat.model.device)
    with torch.inference_mode():
        logits = chat.model(x).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(1, x[0, 1:, None])[:, 0]


def answer_logprob(chat, messages: list[dict], max_len: int) -> tuple[float, int]:
    """Sum of log-probabilities of the assistant tokens of a conversation, and their count."""
    import torch

    enc = chat.tokenizer.apply_chat_template(messages, chat_template=chat.template, tokenize=True, return_dict=True,
                                             return_assistant_tokens_mask=True)
    ids, mask = enc["input_ids"][:max_len], enc["assistant_masks"][:max_len]
    if not any(mask):  # a template without generation markers: score everything after the first turn
        mask = [1] * len(ids)
    logp = token_logprobs(chat, ids)
    m = torch.tensor(mask[1:], device=logp.device, dtype=torch.bool)
    return float(logp[m].sum()), int(m.sum())


def perplexity(chat, threads, max_len: int) -> float | None:
    total, n = 0.0, 0
    for t in threads:
        lp, k = answer_logprob(chat, t, max_len)
        total, n = total + lp, n + k
    return math.exp(-total / n) if n else None


def text_perplexity(chat, passages: list[str], max_len: int) -> float | None:
    """exp of the mean loss over every token of plain passages (each cut at max_len tokens)."""
    total, n = 0.0, 0
    for text in passages:
        ids = chat.tokenizer(text, add_special_tokens=False)["input_ids"][:max_len]
        if len(ids) < 2:
            continue
        total += float(token_logprobs(chat, ids).sum())
        n += len(ids) - 1
    return math.exp(-total / n) if n else None


def fidelity(questions: list[str], answers: list[str], target: str) -> dict:
    """Of the answers: the share an offline language identifier recognises as `target` (in_language), and the
    share of those that also answer (fidelity): not cut to nothing, not the question again, not a loop; with the
    count of each fault."""
    from l2l.answers import FAULTS, answer_fault

    if not answers:
        return {"fidelity": 0.0, "in_language": 0.0, **{f: 0 for f in FAULTS}}
    from l2l.languages import detected_languages

    found, code = detected_languages(answers, target)
    faults = [answer_fault(q, a) for q, a in zip(questions, answers)]
    return {"fidelity": sum(f == code and not fault for f, fault in zip(found, faults)) / len(answers),
            "in_language": sum(f == code for f in found) / len(answers),
            **{kind: sum(fault == kind for fault in faults) for kind in FAULTS}}


def answer_chrf(answers: list[str], references: list[str]) -> float | None:
    """chrF (0-1) of the answers against the held-out threads' own answers, both in the target language."""
    pairs = [(a, r) for a, r in zip(answers, references) if r.strip()]
    if not pairs:
        return None
    import sacrebleu

    return sacrebleu.corpus_chrf([a for a, _ in pairs], [[r for _, r in pairs]]).score / 100


def reference_answer(thread: list[dict]) -> str:
    """The answer a held-out thread gives to its first question."""
    after = thread[next(i for i, m in enumerate(thread) if m["role"] == "user") + 1:]
    return next((m["content"] for m in after if m["role"] == "assistant"), "")


def warn_if_prompts_elsewhere(prompts: list[list[dict]], target: str) -> None:
    """Fidelity asks whether answers come in the target language; say so when the questions are not in it."""
    from collections import Counter

    from l2l.languages import detected_languages

    found, code = detected_languages([p[-1]["content"] for p in prompts], target)
    share = sum(f == code for f in found) / max(1, len(found))
    if share < 0.5:
        top = Counter(f for f in found if f).most_common(1)
        log(f"warning: {share:.0%} of the held-out questions are in {target}"
            + (f" (most are in {top[0][0]})" if top else "")
            + f": the fidelity score then says whether the models answer in {target} to questions in another "
              "language; is --dataset the translated one?")


def choice_prompt(item: dict, target: str) -> str:
    """A question as asked: alone, or after its passage with the prompt words of the target language."""
    if not item["passage"]:
        return item["question"]
    from l2l.benchmarks import words

    passage, question, _ = words(target)
    return f"{passage}: {item['passage']}\n{question}: {item['question']}"


def multiple_choice(chat, items: list[dict], system: str | None, max_len: int, target: str) -> float:
    correct = 0
    for it in items:
        prompt = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": choice_prompt(it, target)}]
        scores = [answer_logprob(chat, prompt + [{"role": "assistant", "content": c}],
                                 max_len)[0] for c in it["choices"]]
        correct += max(range(len(scores)), key=scores.__getitem__) == it["answer"]
    return correct / len(items)


def generate(chat, prompts: list[list[dict]], cfg) -> list[str]:
    """Greedy answers, 8 prompts a batch."""
    from l2l.inference import GenerationOptions

    answers, opts = [], GenerationOptions(max_new_tokens=cfg.max_new_tokens, temperature=0, seed=cfg.seed)
    for b in range(0, len(prompts), 8):
        answers += chat.answer(prompts[b:b + 8], opts)
    return answers


def dialog_scores(chat, threads: list[list[dict]], cfg) -> dict:
    """On human dialogs: the perplexity of the human replies, and the first questions of --n_prompts of them
    answered (fidelity and its faults, each key prefixed dialog_; the questions and answers as dialog_questions and
    dialog_answers)."""
    prompts = first_questions(threads, cfg.n_prompts)
    answers = generate(chat, prompts, cfg)
    scores = fidelity([p[-1]["content"] for p in prompts], answers, cfg.target_lang)
    return {"dialog_perplexity": perplexity(chat, threads, cfg.max_seq_length),
            **{f"dialog_{k}": v for k, v in scores.items()}, "dialog_questions": [p[-1]["content"] for p in prompts],
            "dialog_answers": answers}


def evaluate(name: str, model: str, cfg, template: str | None, inputs: dict, base: str | None,
             lm_eval_plan=None):
    from l2l.inference import ChatModel

    log(f"== {name}: {model}")
    chat = ChatModel(model, cpu=cfg.cpu, quant4=cfg.quant4, chat_template=template,
                     thread_template=None if template else cfg.thread_template, base_model=base,
                     trust_remote_code=cfg.trust_remote_code)
    prompts, choice_sets = inputs["prompts"], inputs["choice_sets"]
    row = {"model": name, "path": model, "perplexity": perplexity(chat, inputs["threads"], cfg.max_seq_length)}
    if inputs["retention"]:
        row["retention_perplexity"] = perplexity(chat, inputs["retention"], cfg.max_seq_length)
    for key, passages in inputs["passages"].items():
        row[key] = text_perplexity(chat, passages, cfg.max_seq_length)
    answers = generate(chat, prompts, cfg)
    row.update(fidelity([p[-1]["content"] for p in prompts], answers, cfg.target_lang))
    row["answer_chrf"] = answer_chrf(answers, inputs["references"])
    row["answers"] = answers
    if inputs["dialogs"]:
        row.update(dialog_scores(chat, inputs["dialogs"], cfg))
    for path, items in choice_sets.items():
        row[f"mc:{Path(path).name}"] = multiple_choice(chat, items, cfg.instruction_prompt, cfg.max_seq_length,
                                                          cfg.target_lang)
    if lm_eval_plan is not None:
        from l2l import benchmarks

        row.update(benchmarks.run(lm_eval_plan, chat))
    del chat
    return row


def lm_eval_plan(cfg):
    """The lm-eval tasks to run, checked (known, data loadable) before any model loads; None when none asked."""
    if not (cfg.lm_eval_tasks or cfg.benchmarks):
        return None
    from l2l import benchmarks

    return benchmarks.plan(cfg.lm_eval_tasks, cfg.benchmarks, cfg.target_lang, cfg.lm_eval_include_path,
                           batch_size=cfg.lm_eval_batch_size, limit=cfg.lm_eval_limit,
                           num_fewshot=cfg.lm_eval_num_fewshot, chat_template=cfg.lm_eval_chat_template)


def main(argv: list[str] | None = None) -> int:
    cfg = from_args(EvaluationOptions, build_parser().parse_args(argv))
    from l2l import languages
    from l2l.inference import adapter_base

    languages.validate(cfg.target_lang, "--target_lang")
    from l2l.io import check_output_free

    check_output_free(cfg.output_dir, cfg.overwrite, flag="--output_dir", inputs=(
        cfg.dataset, cfg.base_model, cfg.tuned_model, cfg.retention_dataset, cfg.dialog_dataset, cfg.text_file,
        cfg.retention_text_file, cfg.thread_template, *(cfg.choices_file or [])))
    from l2l.io import same_path

    if same_path(cfg.base_model, cfg.tuned_model):
        raise UsageError(f"the base and the tuned model are the same ({cfg.tuned_model}): give the tuned model "
                         "(an adapter folder or a merged model) second")
    if cfg.lm_eval_include_path and not (cfg.lm_eval_tasks or cfg.benchmarks):
        raise UsageError("--lm_eval_include_path needs --lm_eval_tasks naming the tasks to run from it")
    if not 0 < cfg.eval_fraction <= 1:
        raise UsageError("--eval_fraction must be in (0, 1]")
    choice_sets = {path: read_choices(path) for path in cfg.choices_file or []}
    plan = lm_eval_plan(cfg)
    from l2l.data import read_lines

    passages = {key: read_lines(path, flag) for key, path, flag in (
        ("text_perplexity", cfg.text_file, "--text_file"),
        ("retention_text_perplexity", cfg.retention_text_file, "--retention_text_file")) if path}
    threads = held_out(cfg, cfg.dataset)
    if not threads:
        raise UsageError(f"no held-out threads in {cfg.dataset}")
    retention = held_out(cfg, cfg.retention_dataset) if cfg.retention_dataset else []
    prompts = first_questions(threads, cfg.n_prompts)
    warn_if_prompts_elsewhere(prompts, cfg.target_lang)
    dialog_threads = dialogs(cfg)
    from l2l import templates

    template = None  # with --thread_template each model loads it by name
    if not cfg.thread_template:
        from l2l.modeling import load_tokenizer

        tok = load_tokenizer(cfg.tuned_model, trust_remote_code=cfg.trust_remote_code)
        template = (templates.load("tokenizer", tok) if tok.chat_template else None) or templates.load("llama3")
    rows = []
    base_of_tuned = adapter_base(cfg.tuned_model)
    inputs = {"threads": threads, "prompts": prompts, "choice_sets": choice_sets, "retention": retention,
              "dialogs": dialog_threads,
              "passages": passages, "references": [reference_answer(t) for t in threads[: cfg.n_prompts]]}
    for name, model, base in (("base", cfg.base_model, None), ("tuned", cfg.tuned_model,
                                                                  cfg.base_model if base_of_tuned else None)):
        rows.append(evaluate(name, model, cfg, template, inputs, base, plan))
    write_results(rows, cfg, len(threads), len(prompts))
    return 0


def write_results(rows: list[dict], cfg, n_threads: int, n_prompts: int) -> None:
    """The table printed, and results.md, results.json, chart.png in --output_dir, written whole."""
    from l2l.io import building

    metrics = [k for k in rows[0] if k not in ("model", "path") and all(
        r.get(k) is None or isinstance(r.get(k), (int, float)) for r in rows)]
    lines = [f"Evaluation on {cfg.dataset} ({n_threads} held-out threads, {n_prompts} prompts), "
             f"target {cfg.target_lang}",
             "", "| metric | base | tuned | tuned / base |", "|---|---|---|---|"]
    for k in metrics:
        vals = [r.get(k) for r in rows]
        ratio = f"{vals[1] / vals[0]:.3f}" if all(isinstance(v, float) for v in vals) and vals[0] else ""
        lines.append(f"| {k} | " + " | ".join("" if v is None else f"{v:.4f}" for v in vals) + f" | {ratio} |")
    text = "\n".join(lines)
    print(text)
    with building(cfg.output_dir, "evaluation") as out:
        (out / "results.md").write_text(text + "\n", encoding="utf-8")
        (out / "results.json").write_text(json.dumps({"dataset": cfg.dataset, "target_lang": cfg.target_lang,
                                                      "results": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
        chart(rows, metrics, out / "chart.png")
    log(f"results in {cfg.output_dir}/ (results.md, results.json, chart.png)")


def chart(rows: list[dict], metrics: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [k for k in metrics if all(isinstance(r.get(k), float) for r in rows)]
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(3.2 * max(1, len(shown)), 3.5))
    for ax, k in zip(axes if len(shown) > 1 else [axes], shown):
        ax.bar([r["model"] for r in rows], [r[k] for r in rows], color=["#999999", "#3366cc"])
        ax.set_title(k, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    run(main)
