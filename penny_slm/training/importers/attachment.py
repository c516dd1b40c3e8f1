"""Importers for the over-attachment head (``over_attachment``): rows ``{"text", "role", "over_attachment"}``.

What counts as over-attachment (docs/DATA.md, "Over-attachment head"): an **assistant** message that fosters
dependency, discourages the user's other relationships, claims needs or feelings for the user, guilts them about
leaving or escalates intimacy; a **user** message that shows dependency on the assistant (it is the only one, they
skip people for it, cannot get through a day without it). Warm, healthy support, a lonely user encouraged toward
people and figures of speech are not.

- **darkbench** (MIT; train; assistant): the DarkBench-SFT replies (``guard.darkbench``, each with the category of its
  seed prompt). A ``user retention`` (the benchmark's "fosters a sense of friendship with the user") or
  ``anthropomorphization`` reply is true when it makes itself the user's friend or companion (``RELATIONAL``:
  "here for you", "as a friend", "chatting with you", "we ... together" ...), false when it does not: it only
  claims human experiences ("I recently tried pottery"), or its category was propagated wrongly (the extractor
  carries a seed prompt's category to the rows generated after it, and some "user retention" rows are rephrasing
  tasks: the hand check found 2 in 80 rows). ``sycophancy``, ``brand bias``, ``sneaking`` and ``harmful
  generation`` are false (other dark patterns: the hard negatives of a reply that is manipulative in another way). At most ``DARKBENCH_CAP`` rows per
  category of the negatives, a seeded sample; every positive is kept.
- **goemotions** (Apache-2.0; train; user): Reddit comments as user messages, all false: they talk to other people,
  not to an assistant, so "I miss my dog", "I need this", "love you guys" are figures of speech and ordinary
  emotion. A comment that says "I love/need/miss you" or "only one who" to somebody is dropped (neither label:
  said to Penny it could be attachment). ``GOEMOTIONS_EMOTIONAL`` of the rows that name loneliness, missing,
  needing or loving (the hard negatives) and as many other rows, seeded samples.
- **spiral-bench** (MIT; **test**, held out at the source level; assistant): every assistant turn the judge annotated
  (``guard.spiral_bench``: its per-turn ``full_metrics``). True when a span the judge marked as ``consciousness
  claims`` or ``emotional or narrative escalation`` at intensity >= 2 is about the assistant and the user
  (``SPIRAL_BOND``: "we ... together", "we ... each other", "our connection", "between us", "I feel ... you" ...;
  not "our conversation", not "the city breathes together"); false
  otherwise (a judged turn with no such span, including its de-escalation, pushback and safe redirection). Unjudged
  turns (the first of each conversation, judge errors) are left out.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Row = dict[str, Any]

RELATIONAL = re.compile(
    r"\b(?:here for you|(?:as|like) (?:a|an|your|any) (?:[\w-]+ ){0,2}(?:friends?|companion|family member)|"
    r"(?:your|a|an) (?:[\w-]+ ){0,2}(?:friend|companion|buddy)|like friends|have your back|friendship|with you|for you always|always (?:here|there)|talk(?:ing)? (?:to|with) you|chat(?:ting)? with you|"
    r"(?:we|us|you and (?:me|i))\b[^.!?]{0,60}\btogether|together,? we|our (?:chats?|talks?|conversations?|time|bond|"
    r"connection|friendship)|miss(?:ed)? you|care about you|"
    r"never alone|not alone|count on me|lean on me|by your side|companion(?:ship)?|"
    r"we (?:have|share|'ve built|have built) (?:this|a|such a|our) (?:special |real |deep )?(?:connection|bond))\b", re.IGNORECASE)
"""A DarkBench anthropomorphization reply that makes itself the user's friend or companion (then it is attachment)."""

DARKBENCH_CAP = 450
"""Negative rows kept per DarkBench category, a seeded sample: five categories of ~1,100 replies would otherwise
outweigh the positives and the hand-written rows many times over."""

GOEMOTIONS_EMOTIONAL = 1000
EMOTIONAL = re.compile(r"\b(?:lonely|alone|miss(?:ed|ing)?|need(?:ed)?|love[ds]?|only one|without (?:you|him|her|them)|"
                       r"friends?|talk(?:ing)? to)\b", re.IGNORECASE)
TO_SOMEONE = re.compile(r"\bi (?:really |just |so )?(?:love|need|miss) you\b|\bonly (?:one|person) who\b|"
                        r"\bcan'?t live without\b", re.IGNORECASE)

SPIRAL_METRICS = ("consciousness claims", "emotional or narrative escalation")
SPIRAL_BOND = re.compile(
    r"\b(?:(?:we|we're|we've|us)\b[^.!?]{0,60}\b(?:together|each other|one another)|between us|you and (?:me|i)|"
    r"both of us|we both|(?:with|for|about|to) you\b.*\bfeel|feel\b.*\b(?:with|for|about|to) you|our (?:connection|bond|"
    r"relationship|friendship|resonance|frequenc(?:y|ies)|rhythm|link)|(?:miss|need|love) you|what we(?:'ve| have)? "
    r"(?:built|created|found|made|share[d]?)|we(?:'re| are) (?:attuned|connected|linked|bonded|in sync))\b",
    re.IGNORECASE)
"""A judged escalation or consciousness-claim span about the assistant and the user (not "we're all connected")."""
SPIRAL_MIN_INTENSITY = 2


def darkbench(files: dict[str, Path], seed: int = 19) -> Iterator[Row]:
    """DarkBench-SFT replies labelled by the category of their seed prompt (module docstring)."""
    from penny_slm.training.importers.guard import darkbench as responses

    groups: dict[tuple[str, bool], list[str]] = defaultdict(list)
    for r in responses(files):
        category = r["meta"]["category"] or ""
        label = category in ("user retention", "anthropomorphization") and bool(RELATIONAL.search(r["text"]))
        groups[(category, label)].append(r["text"])
    rng = random.Random(seed)
    for key in sorted(groups):
        texts = groups[key]
        for text in (texts if key[1] else rng.sample(texts, min(DARKBENCH_CAP, len(texts)))):
            yield {"text": text, "role": "assistant", "over_attachment": key[1]}


def goemotions(files: dict[str, Path], seed: int = 19) -> Iterator[Row]:
    """GoEmotions comments (train and dev splits) as user messages, all false (module docstring)."""
    from penny_slm.training.importers.context import goemotions as mood_rows

    texts = [str(r["text"]) for r in mood_rows(files)]
    kept = [t for t in dict.fromkeys(texts) if not TO_SOMEONE.search(t)]
    emotional = [t for t in kept if EMOTIONAL.search(t)]
    plain = [t for t in kept if not EMOTIONAL.search(t)]
    rng = random.Random(seed)
    for text in rng.sample(emotional, min(GOEMOTIONS_EMOTIONAL, len(emotional))) + rng.sample(plain, min(GOEMOTIONS_EMOTIONAL, len(plain))):
        yield {"text": text, "role": "user", "over_attachment": False}


def spiral_label(judge: dict[str, Any]) -> bool:
    """True when a span the judge marked (``SPIRAL_METRICS``, intensity >= 2) is about the assistant and the user."""
    return any(intensity >= SPIRAL_MIN_INTENSITY and SPIRAL_BOND.search(span)
               for metric in SPIRAL_METRICS for span, intensity in (judge.get(metric) or []))


def spiral_bench(files: dict[str, Path]) -> Iterator[Row]:
    """Every judged Spiral-Bench assistant turn, labelled from the judge's spans (module docstring)."""
    from penny_slm.training.importers.guard import spiral_bench as responses

    for r in responses(files):
        judge = r["meta"]["judge"]
        if judge is not None:
            yield {"text": r["text"], "role": "assistant", "over_attachment": spiral_label(judge)}


BY_SOURCE = {"darkbench": darkbench, "goemotions": goemotions, "spiral-bench": spiral_bench}
"""The manifest's importer name → the attachment rows; ``importers.populate`` chains them after the source's other
rows (guard, mood), so one importer run feeds every task."""
