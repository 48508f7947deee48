"""Preference pairs from OASST ranks at every depth and branch, and prompts fitted to a length."""

from __future__ import annotations

from conftest import oasst_msg as msg

from l2l.shapes import Fields
from l2l.threads.preference import fit_prompt, oasst_pairs


def summary(pairs):
    return [([m["content"] for m in p["prompt"]], p["chosen"][0]["content"],
             p["rejected"][0]["content"]) for p in pairs]


def test_pairs_at_every_depth_and_branch():
    rows = [
        msg("r", None, "prompter", "Q"),
        msg("a1", "r", "assistant", "rank 1", 1),
        msg("a0", "r", "assistant", "rank 0", 0),              # lower rank is better (LLaMa2lang had it backwards)
        msg("a2", "r", "assistant", "rank 2", 2),
        msg("au", "r", "assistant", "unranked"),               # unranked: no part
        msg("ad", "r", "assistant", "deleted", 3, deleted=True),
        msg("ar", "r", "assistant", "failed review", 4, review_result=False),
        msg("q2", "a1", "prompter", "Q2 under the worse answer"),  # any branch, not only the best path
        msg("b0", "q2", "assistant", "B0", 0),
        msg("b1", "q2", "assistant", "B1", 1),
        msg("q3", "b0", "prompter", "Q3 deep"),
        msg("c0", "q3", "assistant", "C0", 0),
        msg("c0b", "q3", "assistant", "C0 tie", 0),            # a tie states no preference
        msg("c5", "q3", "assistant", "C5", 5),
        msg("s", None, "prompter", "single"),
        msg("s0", "s", "assistant", "only one ranked", 0),     # one ranked reply: no pair
        msg("s1", "s", "assistant", "unranked too"),
    ]
    assert summary(oasst_pairs(rows, Fields())) == [
        (["Q"], "rank 0", "rank 1"),
        (["Q"], "rank 0", "rank 2"),
        (["Q", "rank 1", "Q2 under the worse answer"], "B0", "B1"),
        (["Q", "rank 1", "Q2 under the worse answer", "B0", "Q3 deep"], "C0", "C5"),
    ]
    roles = [m["role"] for m in oasst_pairs(rows, Fields())[-1]["prompt"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]


def test_prompt_fitting_drops_oldest_turns():
    pair = {"prompt": [{"role": "system", "content": "S"}] + [{"role": r, "content": f"{r}{i}"} for i in range(3)
                                                               for r in ("user", "assistant")][:-1],
            "chosen": [], "rejected": []}
    count = len  # one token a message, for the test
    fitted = fit_prompt(pair, count, 4)
    assert [m["content"] for m in fitted["prompt"]] == ["S", "user1", "assistant1", "user2"]
    assert fit_prompt(pair, count, 1) is None  # even the last question does not fit
