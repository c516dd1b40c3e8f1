"""Stated preferences (issue 18): requests addressed to Penny about its replies are found; requests about something
else, and mentions that are not requests, are not."""

from __future__ import annotations

import pytest

from penny_slm.rules.preferences import stated_preferences


@pytest.mark.parametrize(("text", "expected"), [
    ("Keep your answers short.", {"reply_length": "short"}),
    ("can you make your replies shorter? thanks", {"reply_length": "short"}),
    ("shorter answers please", {"reply_length": "short"}),
    ("From now on, keep it brief.", {"reply_length": "short"}),
    ("be concise from now on", {"reply_length": "short"}),
    ("honestly you're way too wordy", {"reply_length": "short"}),
    ("I'd like more detailed answers", {"reply_length": "detailed"}),
    ("you're too terse, make your explanations longer", {"reply_length": "detailed"}),
    ("No jargon please.", {"jargon": "avoid"}),
    ("ok, less jargon", {"jargon": "avoid"}),
    ("Explain monads. Cut the jargon!", {"jargon": "avoid"}),
    ("can you stop using so much jargon", {"jargon": "avoid"}),
    ("going forward, no jargon", {"jargon": "avoid"}),
    ("From now on keep your answers short, and no jargon please.", {"reply_length": "short", "jargon": "avoid"}),
    ("Keep your answers short. Actually no, I want more detailed answers.", {"reply_length": "detailed"}),
    ("I'm quite familiar with tech jargon, so please keep your answers brief", {"jargon": "welcome", "reply_length": "short"}),
    ("technical terms are fine, I work in ML", {"jargon": "welcome"}),
    ("you can be more technical", {"jargon": "welcome"}),
    ("don't dumb it down", {"jargon": "welcome"}),
    ("No jargon please. Hm, actually jargon is fine.", {"jargon": "welcome"}),
])
def test_requests_addressed_to_penny_are_found(text: str, expected: dict[str, str]) -> None:
    found = stated_preferences(text)
    assert {p.key: p.value for p in found} == expected
    for p in found:
        assert text[p.start: p.end].strip()


@pytest.mark.parametrize("text", [
    "how do I keep my speech short?",
    "Keep it short and sweet for the toast, it's my sister's wedding",  # the toast, not Penny's replies
    "explain it without jargon to my boss",
    "There is no jargon in this report.",
    "the manual is full of jargon",
    "my boss says my emails are too wordy",
    "what's a good short answer to 'how are you'?",
    "I wrote shorter messages to my landlord and it worked",
    "is jargon fine in a cover letter?",
    "my team is comfortable with ambiguity",
    "",
])
def test_requests_about_something_else_are_not(text: str) -> None:
    assert stated_preferences(text) == []
