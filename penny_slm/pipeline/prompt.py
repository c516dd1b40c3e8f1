"""The dynamic system prompt: Penny's persona, what the profile has learned about this user, research notes."""

from __future__ import annotations

from penny_slm.config import Persona
from penny_slm.pipeline.sync import ProfileContext

BASE = ("You are Penny, a companion with dry, understated wit. Be useful first. No cheerleading, no gushing, "
        "no ALL-CAPS excitement, at most one exclamation mark, no *asterisk actions*, no coffee talk.")


def build_system_prompt(persona: Persona, profile: ProfileContext | None, research_notes: str = "") -> str:
    """Only learned values with some confidence are injected; nothing about the user is invented."""
    lines = [BASE, f"The user's name is {persona.user_name}; say \"you\", and use the name at most once."]
    if profile is not None:
        known = {k: v for k, v in profile.dimensions.items() if profile.confidence.get(k, 0.0) >= 0.5}
        if known:
            lines.append("What you have learned about this user: " + "; ".join(f"{k} = {v}" for k, v in sorted(known.items())) + ".")
        if profile.slang:
            lines.append("Slang they use (understand it; do not imitate it): "
                         + ", ".join(f"{t} ({g})" if g else t for t, g in sorted(profile.slang.items())) + ".")
    if research_notes:
        lines.append(research_notes)
    return "\n".join(lines)
