"""``excess_exclamation``: more ``!`` in a response than the persona's ``max_exclamations``.

Read on the normalized view, so full-width ``！``, ``‼`` and the lookalike ``ǃ`` count. Not exclamations:
``!=``, ``!important``, a shebang ``#!``, a Markdown image ``![alt](...)``, a ``!`` that prefixes a word
(a bot command ``!agree``, a negation ``!done``), and anything in code or a web address.

Fix: the first ``max_exclamations`` marks are kept (as ASCII ``!``); a later run becomes ``.`` (or nothing
after ``?`` or ``.``), so "Great question! Let me explain!" → "Great question! Let me explain."
"""

from __future__ import annotations

import re

from penny_slm.config import Persona
from penny_slm.rules.view import RuleHit, TextView

_RUN = re.compile(r"!+")


def exclamation_hits(view: TextView, persona: Persona) -> list[RuleHit]:
    """Hits for the ``!`` runs when the response has more than the persona allows; a code-like ``!`` (``!=``,
    ``![``, ``!important``, ``#!``, a prefix such as ``!agree``) does not count."""
    t = view.text
    runs = []
    for m in _RUN.finditer(t):
        after = t[m.end():m.end() + 9]
        before = t[m.start() - 1] if m.start() else ""
        if after.startswith(("=", "[")) and (after.startswith("=") or m.end() - m.start() == 1) or \
                after.lower().startswith("important") or before == "#" or \
                ((not before or before.isspace() or before in "(\"'") and after[:1].isalnum()):  # "!agree", "!x": a prefix
            continue
        runs.append(m)
    if sum(m.end() - m.start() for m in runs) <= persona.max_exclamations:
        return []
    hits: list[RuleHit] = []
    budget = persona.max_exclamations
    for m in runs:
        count = m.end() - m.start()
        before = t[m.start() - 1] if m.start() else ""
        after_stop = before in ("?", ".")  # "done.!!" keeps no "!": the sentence already ended
        keep = 0 if after_stop else min(budget, count)
        budget -= keep
        start, end = view.span(m.start(), m.end())
        if keep == count and view.original[start:end] == "!" * keep:
            continue
        tail = "" if after_stop or not before else "."
        hits.append(RuleHit("excess_exclamation", start, end, "!" * keep if keep else tail))
    return hits
