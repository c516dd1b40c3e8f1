"""``detect`` is linear in the text length (it used to rescan the text for every hit: quadratic)."""

from __future__ import annotations

import time

from penny_slm.config import load_persona
from penny_slm.rules.prohibitions import detect

PERSONA = load_persona()
PARAGRAPH = ("Sure thing, CJ. The API returns JSON; use `x != y` and `**kwargs` there. This is SO good *grins* "
             "and honestly C\u200bJ, grab a coffee. ＡＭＡＺＩＮＧ work on README.md! The GPU is the BOTTLENECK, "
             "not the CPU. *leans back in chair* Java and JavaScript are fine.\n")


def _text(n: int) -> str:
    return (PARAGRAPH * (n // len(PARAGRAPH) + 1))[:n]


def _best_of(text: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        detect(text, PERSONA)
        best = min(best, time.perf_counter() - start)
    return best


def test_detect_time_grows_linearly() -> None:
    """Four times the text takes at most about four times as long: the ratio of 40k to 10k characters stays below 8,
    where a quadratic detector gives 16. A ratio, not an absolute time: the test machines differ and are shared. (It
    was 40k against 20k below 3, against a quadratic 4: a loaded CI machine once measured 3.5 on the linear code.)"""
    small, large = _text(10_000), _text(40_000)
    _best_of(small, 1)  # warm the pattern caches
    assert _best_of(large, 5) / _best_of(small, 5) < 8


def test_a_long_line_of_capitals_is_read_in_linear_time() -> None:
    """A line of capital letters that is not a label used to send the label pattern into exponential backtracking
    (26 letters: seconds; the hypothesis test hung in CI). Doubling the line must not much more than double the time."""
    short, long = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 4 + " ok", "ABCDEFGHIJKLMNOPQRSTUVWXYZ" * 8 + " ok"
    _best_of(short, 1)
    assert _best_of(short) < 0.05 and _best_of(long) < 0.05
