"""Recognised benchmarks per target language and lm-evaluation-harness runs over a loaded model.

PRESETS names, per language, the lm-eval tasks people report (Belebele, Global-MMLU, XNLI, XCOPA, PAWS-X, the
Okapi m_arc / m_hellaswag / m_mmlu, FLORES, INCLUDE and the native suites), each marked by how its data came to
be in the language: `native` (written in it: exams, native corpora), `human` (translated by people) or `machine`
(machine-translated, English prompt words and all: lm-eval #1695). `evaluate_model.py --list_benchmarks L`
prints the table; `--benchmarks native` runs the native ones whose data is here.

Local tasks: `write_choice_task` writes a multiple-choice lm-eval task (YAML over a JSONL) whose prompt words are
in the target language (WORDS); `--lm_eval_include_path DIR` runs such a folder's tasks by name.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from l2l.cli import UsageError, first_line, log

KINDS = ("native", "human", "machine")

# language -> (benchmark, lm-eval task, kind); tests/unit/test_benchmarks.py checks every task name against the
# installed lm-eval.
PRESETS: dict[str, list[tuple[str, str, str]]] = {
    "pt": [("Belebele", "belebele_por_Latn", "human"), ("Global-MMLU", "global_mmlu_full_pt", "human"),
           ("FLORES en-pt", "portuguese_bench_flores_en-pt", "human"), ("m_arc", "arc_pt", "machine"),
           ("m_hellaswag", "hellaswag_pt", "machine"), ("m_mmlu", "m_mmlu_pt", "machine"),
           ("INCLUDE", "include_base_44_portuguese", "native"), ("ASSIN entailment", "assin_entailment", "native"),
           ("ASSIN paraphrase", "assin_paraphrase", "native")],
    "nl": [("Belebele", "belebele_nld_Latn", "human"), ("Global-MMLU", "global_mmlu_full_nl", "human"),
           ("m_arc", "arc_nl", "machine"), ("m_hellaswag", "hellaswag_nl", "machine"),
           ("m_mmlu", "m_mmlu_nl", "machine"), ("INCLUDE", "include_base_44_dutch", "native"),
           ("BLiMP-NL", "blimp_nl", "native")],
    "de": [("Belebele", "belebele_deu_Latn", "human"), ("Global-MMLU", "global_mmlu_de", "human"),
           ("XNLI", "xnli_de", "human"), ("PAWS-X", "paws_de", "human"), ("m_arc", "arc_de", "machine"),
           ("m_hellaswag", "hellaswag_de", "machine"), ("INCLUDE", "include_base_44_german", "native")],
    "es": [("Belebele", "belebele_spa_Latn", "human"), ("Global-MMLU", "global_mmlu_es", "human"),
           ("XNLI", "xnli_es", "human"), ("PAWS-X", "paws_es", "human"), ("FLORES", "flores_es", "human"),
           ("m_arc", "arc_es", "machine"), ("m_hellaswag", "hellaswag_es", "machine"),
           ("INCLUDE", "include_base_44_spanish", "native")],
    "fr": [("Belebele", "belebele_fra_Latn", "human"), ("Global-MMLU", "global_mmlu_fr", "human"),
           ("XNLI", "xnli_fr", "human"), ("PAWS-X", "paws_fr", "human"), ("m_arc", "arc_fr", "machine"),
           ("m_hellaswag", "hellaswag_fr", "machine"), ("INCLUDE", "include_base_44_french", "native")],
    "it": [("Belebele", "belebele_ita_Latn", "human"), ("Global-MMLU", "global_mmlu_it", "human"),
           ("XCOPA", "xcopa_it", "human"), ("m_arc", "arc_it", "machine"), ("m_hellaswag", "hellaswag_it", "machine"),
           ("INCLUDE", "include_base_44_italian", "native")],
    "ar": [("Belebele", "belebele_arb_Arab", "human"), ("Global-MMLU", "global_mmlu_ar", "human"),
           ("XNLI", "xnli_ar", "human"), ("m_arc", "arc_ar", "machine"), ("m_hellaswag", "hellaswag_ar", "machine"),
           ("ArabicMMLU", "arabicmmlu", "native"), ("AraExams", "aexams", "native"),
           ("INCLUDE", "include_base_44_arabic", "native")],
    "he": [("Belebele", "belebele_heb_Hebr", "human"), ("Global-MMLU", "global_mmlu_full_he", "human"),
           ("INCLUDE", "include_base_44_hebrew", "native")],
    "ja": [("Belebele", "belebele_jpn_Jpan", "human"), ("Global-MMLU", "global_mmlu_ja", "human"),
           ("PAWS-X", "paws_ja", "human"), ("Japanese leaderboard", "japanese_leaderboard", "native"),
           ("INCLUDE", "include_base_44_japanese", "native")],
    "ko": [("Belebele", "belebele_kor_Hang", "human"), ("Global-MMLU", "global_mmlu_ko", "human"),
           ("PAWS-X", "paws_ko", "human"), ("KMMLU", "kmmlu", "native"), ("KoBEST", "kobest", "native"),
           ("HAE-RAE", "haerae", "native"), ("INCLUDE", "include_base_44_korean", "native")],
    "zh": [("Belebele", "belebele_zho_Hans", "human"), ("Global-MMLU", "global_mmlu_zh", "human"),
           ("XNLI", "xnli_zh", "human"), ("XCOPA", "xcopa_zh", "human"), ("PAWS-X", "paws_zh", "human"),
           ("CMMLU", "cmmlu", "native"), ("C-Eval", "ceval-valid", "native"),
           ("INCLUDE", "include_base_44_chinese", "native")],
    "tr": [("Belebele", "belebele_tur_Latn", "human"), ("Global-MMLU", "global_mmlu_full_tr", "human"),
           ("XNLI", "xnli_tr", "human"), ("XCOPA", "xcopa_tr", "human"), ("TurkishMMLU", "turkishmmlu", "native"),
           ("INCLUDE", "include_base_44_turkish", "native")],
}

# Prompt words for multiple-choice prompts in the target language: passage, question, answer.
WORDS: dict[str, tuple[str, str, str]] = {
    "en": ("Passage", "Question", "Answer"), "pt": ("Texto", "Pergunta", "Resposta"),
    "nl": ("Tekst", "Vraag", "Antwoord"), "de": ("Text", "Frage", "Antwort"),
    "es": ("Texto", "Pregunta", "Respuesta"), "fr": ("Texte", "Question", "Réponse"),
    "it": ("Testo", "Domanda", "Risposta"), "ar": ("النص", "السؤال", "الإجابة"), "he": ("קטע", "שאלה", "תשובה"),
    "ja": ("文章", "質問", "答え"), "ko": ("지문", "질문", "답"), "zh": ("文章", "问题", "答案"),
    "tr": ("Metin", "Soru", "Cevap"),
}


def language_key(code: str) -> str:
    from l2l.languages import parse

    lang = parse(code)
    return lang.language if lang is not None else code.split("-")[0].lower()


def presets(code: str) -> list[tuple[str, str, str]]:
    return PRESETS.get(language_key(code), [])


def words(code: str) -> tuple[str, str, str]:
    """Passage, question and answer words in `code`'s language (English where none is known)."""
    return WORDS.get(language_key(code), WORDS["en"])


def preset_table(code: str) -> str:
    rows = presets(code)
    if not rows:
        known = ", ".join(sorted(PRESETS))
        return (f"no benchmark presets for {code} (presets: {known}); run any lm-eval task with --lm_eval_tasks, or "
                "your own with --lm_eval_include_path")
    lines = [f"Benchmarks for {code} (lm-evaluation-harness task names; native: written in the language, human: "
             "translated by people, machine: machine-translated)", "", "| benchmark | lm-eval task | data |",
             "|---|---|---|"]
    return "\n".join(lines + [f"| {b} | {t} | {k} |" for b, t, k in rows])


@dataclass
class LmEvalPlan:
    """What lm-eval runs, checked before any model loads."""

    tasks: list[str]
    include_path: str | None = None
    batch_size: int = 1
    limit: int | None = None
    num_fewshot: int | None = None
    chat_template: bool = False
    skipped: list[str] = field(default_factory=list)

    def manager(self):
        from lm_eval.tasks import TaskManager

        return TaskManager(include_path=self.include_path) if self.include_path else TaskManager()


def require_lm_eval(what: str):
    """lm-evaluation-harness is there (a measurement asked for is never skipped)."""
    try:
        import lm_eval
    except ImportError:
        raise UsageError(f"{what} needs lm-evaluation-harness, which is not installed "
                         "(pip install -r requirements-eval.txt)") from None
    return lm_eval


def check_include_path(path: str | None) -> None:
    if path is None:
        return
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"--lm_eval_include_path {path}: no such folder")
    if not any(folder.rglob("*.yaml")):
        raise UsageError(f"--lm_eval_include_path {path} holds no task YAML files")


def loads(name: str, manager) -> str | None:
    """None when lm-eval builds the task with its data; else why not, in one line."""
    from lm_eval.tasks import get_task_dict

    try:
        get_task_dict([name], manager)
    except Exception as e:  # offline Hub data, a missing local file, a broken YAML: all mean "cannot run"
        return first_line(e)[:200] or type(e).__name__
    return None


def plan(named: str | None, selection: str | None, target: str, include_path: str | None, **options) -> LmEvalPlan:
    """The tasks to run: --lm_eval_tasks (names, or paths of task YAML files), each known to lm-eval and its data
    loadable, else exit 2; plus the presets of --benchmarks (native, human, machine or all) whose data loads here
    (the others are skipped with a note; none at all is exit 2)."""
    flag = "--lm_eval_tasks" if named else "--benchmarks"
    require_lm_eval(f"{flag} {named or selection}")
    check_include_path(include_path)
    result = LmEvalPlan(tasks=[], include_path=include_path, **options)
    manager = result.manager()
    known = set(manager.all_tasks)
    for name in [t.strip() for t in (named or "").split(",") if t.strip()]:
        if name not in known and not (name.endswith((".yaml", ".yml")) and Path(name).is_file()):
            where = f" nor in --lm_eval_include_path {include_path}" if include_path else ""
            raise UsageError(f"--lm_eval_tasks: lm-eval has no task {name!r}{where}")
        why = loads(name, manager)
        if why:
            raise UsageError(f"--lm_eval_tasks: lm-eval cannot run {name}: {why}")
        result.tasks.append(name)
    if selection:
        chosen = [t for _, t, kind in presets(target) if selection == "all" or kind == selection]
        if not chosen:
            raise UsageError(f"--benchmarks {selection}: no such presets for {target} "
                             f"(evaluate_model.py --list_benchmarks {target})")
        for name in chosen:
            why = loads(name, manager)
            (result.skipped if why else result.tasks).append(name)
            if why:
                log(f"skipping {name}: its data is not here ({why})")
        if not any(t in result.tasks for t in chosen):
            raise UsageError(f"--benchmarks {selection}: the data of none of {', '.join(chosen)} is here (offline: "
                             "download them once with lm_eval, or give local tasks with --lm_eval_include_path)")
    return result


@contextmanager
def tying_left_to_peft(model):
    """HFLM ties the model's embeddings again (model.tie_weights()). On a peft model that call can only do
    nothing or fail: the base was tied when it loaded and peft keeps the ties, but embeddings it wraps (whole
    matrices trained by finetune.py --train_embeddings, or an extended vocabulary's new rows) are no longer
    plain parameters, and tying them raises ("attribute 'weight' already exists", "... is neither a parameter,
    buffer, nor extra state"). Skip it on peft models, for that call."""
    from peft import PeftModel

    if not isinstance(model, PeftModel) or "tie_weights" in vars(model):
        yield
        return
    model.tie_weights = lambda *args, **kwargs: None
    try:
        yield
    finally:
        del model.tie_weights


def run(p: LmEvalPlan, chat) -> dict:
    """Scores of the loaded model (ChatModel) on the planned tasks: {'lm_eval:TASK:METRIC': value} (a filter
    other than none after a slash: exact_match/flexible-extract), standard errors under 'lm_eval_stderr' and the
    subtasks of a group under 'lm_eval_subtasks' (in the JSON; the table and chart show the tasks asked for)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from l2l.templates import for_inference

    chat.tokenizer.chat_template = for_inference(chat.template)  # what --lm_eval_chat_template applies
    with tying_left_to_peft(chat.model):
        lm = HFLM(pretrained=chat.model, tokenizer=chat.tokenizer, batch_size=p.batch_size)
    try:
        out = simple_evaluate(model=lm, tasks=p.tasks, task_manager=p.manager(), num_fewshot=p.num_fewshot,
                              limit=p.limit, apply_chat_template=p.chat_template, log_samples=False,
                              bootstrap_iters=0)
    except Exception as e:
        raise UsageError(f"lm-evaluation-harness could not run {', '.join(p.tasks)}: {first_line(e)}") from e
    scores, errors, subtasks = {}, {}, {}
    asked = set(p.tasks) & set(out["results"]) or set(out["results"])  # YAML paths: every task it ran
    for task, res in out["results"].items():
        for key, value in res.items():
            metric, _, kept = key.partition(",")
            name = f"lm_eval:{task}:{metric}" + (f"/{kept}" if kept and kept != "none" else "")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                where = errors if metric.endswith("_stderr") else scores if task in asked else subtasks
                where[name] = float(value)
    return {**scores, "lm_eval_stderr": errors, "lm_eval_subtasks": subtasks}  # the table shows the asked tasks


def write_choice_task(folder: Path, name: str, items: list[dict], target: str) -> Path:
    """A local multiple-choice lm-eval task in `folder` (NAME.yaml over NAME.jsonl): items of {passage (optional),
    question, choices, answer index}, prompted with `target`'s own words ("Texto: ... Pergunta: ... Resposta:")."""
    passage, question, answer = words(target)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
    text = (f"{{% if passage %}}{passage}: {{{{passage}}}}\n{{% endif %}}{question}: {{{{question}}}}\n"
            f"{answer}:")
    config = {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
              "test_split": "test", "output_type": "multiple_choice", "doc_to_text": text,
              "doc_to_choice": "choices", "doc_to_target": "answer", "target_delimiter": " ",
              "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                              {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")  # JSON is YAML
    return path
