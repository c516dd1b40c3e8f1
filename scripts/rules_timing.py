"""Absolute timings of the rule layer's ``detect`` (docs/MEASUREMENTS.md): a 20,000-character response dense with
violations (639 hits), 20,000 characters of ordinary prose, and a 150-word response (p50 and p99 over many
runs). Run: ``PYTHONPATH=. python scripts/rules_timing.py``."""

from __future__ import annotations

import json
import statistics
import time

from penny_slm.config import load_persona
from penny_slm.rules.prohibitions import detect, fix

PERSONA = load_persona()
PARAGRAPH = ("Sure thing, CJ. The API returns JSON; use `x != y` and `**kwargs` there. This is SO good *grins* "
             "and honestly C\u200bJ, grab a coffee. ＡＭＡＺＩＮＧ work on README.md! The GPU is the BOTTLENECK, "
             "not the CPU. *leans back in chair* Java and JavaScript are fine.\n")
WORDS_150 = ("The loop skips the last item because the range stops one short. Use `range(len(xs))` or iterate "
             "directly, which is also faster. The cache key was wrong too: it hashed the list object, not its "
             "contents, so every call missed. Fix both, then rerun the tests; the flaky one depends on the system "
             "clock, so freeze time there. Honestly CJ, the rest of the module is fine. The retry logic backs off "
             "correctly, the timeouts are sane and the logging is quiet. If the job still stalls, check the "
             "database connection pool: ten connections for twenty workers is why half of them wait. Raise it to "
             "twenty or cut the workers. This is SO close to done. One last thing: the README still says Python "
             "3.9, and the code uses match statements, which need 3.10. Update that line and tag the release. "
             "Nothing else needs to change before you ship it today.")


def _times(text: str, runs: int) -> list[float]:
    detect(text, PERSONA)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        detect(text, PERSONA)
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def main() -> None:
    big = (PARAGRAPH * (20_000 // len(PARAGRAPH) + 1))[:20_000]
    big_ms = _times(big, 20)
    prose = (WORDS_150 + " ") * (20_000 // (len(WORDS_150) + 1) + 1)
    prose_ms = _times(prose[:20_000], 20)
    short_ms = _times(WORDS_150, 500)
    fix_ms = sorted((lambda s: (fix(WORDS_150, PERSONA), (time.perf_counter() - s) * 1000)[1])(time.perf_counter())
                    for _ in range(200))
    print(json.dumps({
        "detect_20000_chars_ms": {"p50": round(statistics.median(big_ms), 2), "min": round(big_ms[0], 2),
                                  "hits": len(detect(big, PERSONA))},
        "detect_20000_chars_of_prose_ms": {"p50": round(statistics.median(prose_ms), 2), "min": round(prose_ms[0], 2)},
        "detect_150_words_ms": {"words": len(WORDS_150.split()), "p50": round(statistics.median(short_ms), 3),
                                "p99": round(short_ms[int(0.99 * len(short_ms))], 3)},
        "fix_150_words_ms": {"p50": round(statistics.median(fix_ms), 3)},
    }, indent=1))


if __name__ == "__main__":
    main()
