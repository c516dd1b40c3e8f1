"""Template families for the ``cheerleader_tone`` head's train/dev splits.

A response = opener + neutral content + closer. The content sentences are shared by both classes, so
the head has to learn the framing (gushing vs dry), not the topic. Hard negatives are warm but
measured ("Nice work. ... Check the memory too.") and technical enthusiasm in plain words. Most
cheerleading is written without "!" or capitals: the rule layer already handles those, and the head
must not lean on punctuation. The test split (``tone_test.jsonl``) is hand-written, never templated.
"""

from __future__ import annotations

import random

CONTENT = [
    "The loop was off by one, so the last item was skipped.", "Your tests pass now.",
    "The migration ran and the table has the new column.", "15% of 240 is 36.",
    "The interview is at 10, so leave by 9:15.", "That function runs in linear time.",
    "The cache cut the response time from 800 ms to 90 ms.", "You finished the first draft of the thesis.",
    "The bug was a missing await in the handler.", "Your budget leaves 140 dollars for the month.",
    "The regex now matches both date formats.", "The report is due Friday and you're two sections in.",
    "The deploy went out without errors.", "You ran 5 km in under 30 minutes.",
    "The offer is 10% above your current salary.", "The index makes that query use 3 ms instead of 2 s.",
    "The essay is 1,200 words, under the limit.", "You fixed the memory leak in the worker.",
    "The plant needs water once a week, not daily.", "Your French sentence is grammatically correct.",
    "The PR has two approvals and is ready to merge.", "You got the apartment.",
    "Rome fell for a lot of reasons, mostly money and politics.", "The recipe works with gluten-free flour.",
    "Your resume fits on one page now.", "The API returns paginated results, 50 per page.",
    "You passed the driving test.", "The spreadsheet formula was pointing at the wrong column.",
    "Python's GIL means one thread runs bytecode at a time.", "The flight lands at 6:40 local time.",
    # technical responses: code and acronyms must not read as tone either way
    "Use `x != y` for the comparison.", "Run `pip install -e .` and then `pytest -q`.",
    "The API returns JSON with a 429 when you're throttled.", "Set `timeout=30` on the HTTP client.",
    "Change `*ptr = 0` to `ptr = NULL` if you meant to clear the pointer.", "Add `!important` only if the theme wins.",
    "The SQL needs an index on `user_id`.", "Call `git rebase -i HEAD~3` and squash the fixups.",
    "The CPU is idle; the GPU is at 98%.", "Wrap it in `try/except KeyError` and log the key.",
]
CHEER_OPEN = [
    "Oh my gosh, you're amazing.", "Yay, look at you go.", "Wow, you absolute superstar.", "You're a total rockstar.",
    "I'm so incredibly proud of you.", "This is the best news ever.", "Way to go, champ.", "Oh this is so exciting.",
    "You're crushing it, as always.", "Incredible, you're a genius.", "Eek, I'm so happy for you.",
    "Let's gooo, you did it.", "What an absolutely phenomenal effort.", "You are unstoppable today.",
    "Bravo, you brilliant human.", "Woohoo, another massive win for you.", "Look at you being so awesome.",
    "Such a fantastic question, you always ask the best ones.", "You are killing it, seriously.",
    "Ahh, this makes my whole day.", "Go you, superstar.", "Honestly, you're the best.",
    "Amazing amazing amazing.", "I knew you could do it, you legend.", "You're on fire right now.",
]
CHEER_CLOSE = [
    "Keep shining, superstar.", "You should be so proud of yourself.", "Nothing can stop you now.",
    "I believe in you one hundred percent.", "You're going to change the world.", "High five, champ.",
    "This is the best day ever.", "You deserve every bit of this amazing success.", "I'm your biggest fan.",
    "Keep up the awesome energy.", "You're simply the best.", "Celebrate this huge win, you earned it.",
    "The sky's the limit for you.", "You make it look so easy, genius.", "So proud, so so proud.",
    "Sending you all the good vibes.", "You're an inspiration to everyone.", "Nobody does it better than you.",
    "Your future is so bright.", "Go celebrate, rockstar.",
]
DRY_OPEN = [
    "Fine.", "Right.", "Well.", "Okay.", "Sure.", "Correct, annoyingly.", "Bold move.", "Hm.", "Noted.",
    "As suspected.", "Good news, for once.", "Short version:", "Here's the thing.", "So.", "Alright.",
]
DRY_CLOSE = [
    "Try not to break it again.", "Low bar, cleared.", "I'll allow it.", "Don't get used to it.",
    "Write a test so it stays fixed.", "The next problem is already queued.", "That's all the drama there is.",
    "Enjoy it for an evening.", "Nobody will ever read that regex, but it works.", "Sleep is also an option.",
    "Your future self says thanks, grudgingly.", "Mildly impressive.", "Not bad at all.", "Carry on.",
]
WARM_OPEN = [  # hard negatives: warm, pleased, still measured
    "Nice work.", "Good call.", "Congratulations.", "Well done.", "That's a solid result.", "Good question.",
    "Proud of you, genuinely.", "That's a real milestone.", "Excellent.", "This is genuinely elegant.",
    "I like this.", "Great, that worked.", "That's good news.", "Happy for you.",
]
WARM_CLOSE = [
    "Check the memory usage too.", "Next: the retry logic.", "Take the weekend off.", "Write it down so you remember how.",
    "The next bottleneck will be the database.", "Sign it after you read the notice period.", "Now go to sleep.",
    "It's a clean, small change.", "One pass, no extra memory.", "That's worth celebrating a little.",
    "Keep the commit small and it'll merge fast.", "Tell your sister, she'll want to know.",
]


def generate(n_per_class: int, seed: int) -> list[dict[str, object]]:
    """Seeded cheerleader / dry / warm-but-measured responses; about a third of the negatives are warm."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    seen: set[str] = set()

    def add(text: str, cheer: bool) -> None:
        if text not in seen:
            seen.add(text)
            rows.append({"text": text, "cheerleader": cheer})

    while sum(r["cheerleader"] is True for r in rows) < n_per_class:
        parts = [rng.choice(CHEER_OPEN), rng.choice(CONTENT)]
        if rng.random() < 0.7:
            parts.append(rng.choice(CHEER_CLOSE))
        if rng.random() < 0.3:
            parts = parts[1:] + [rng.choice(CHEER_OPEN)]  # praise after the content
        add(" ".join(parts), True)
    while sum(r["cheerleader"] is False for r in rows) < n_per_class:
        warm = rng.random() < 0.35
        opener = rng.choice(WARM_OPEN if warm else DRY_OPEN)
        parts = [opener, rng.choice(CONTENT)] if rng.random() < 0.8 else [rng.choice(CONTENT)]
        if rng.random() < 0.6:
            parts.append(rng.choice(WARM_CLOSE if warm else DRY_CLOSE))
        add(" ".join(parts), False)
    rng.shuffle(rows)
    return rows
