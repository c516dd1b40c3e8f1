"""Live search for messages the classifier routes to research: a SearXNG JSON client, or nothing.

With no provider configured, the LLM is told plainly that its knowledge may be out of date, so it
can say so instead of presenting stale facts as current.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from penny_slm.errors import EndpointError

STALE_NOTICE = ("No live search is configured. Your knowledge may be out of date for this question: "
                "say so, and do not present possibly stale facts as current.")


@dataclass(frozen=True, slots=True)
class ResearchNotes:
    text: str  # what goes into the system prompt
    sources: tuple[str, ...]  # URLs


class ResearchProvider(Protocol):
    def search(self, query: str, deadline_s: float) -> ResearchNotes: ...


class NoResearchProvider:
    def search(self, query: str, deadline_s: float) -> ResearchNotes:
        return ResearchNotes(STALE_NOTICE, ())


class SearxngProvider:
    """``GET {base_url}/search?q=...&format=json`` (SearXNG with the json format enabled); top results as notes."""

    def __init__(self, base_url: str, max_results: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_results = max_results

    def search(self, query: str, deadline_s: float) -> ResearchNotes:
        url = f"{self.base_url}/search?{urllib.parse.urlencode({'q': query, 'format': 'json'})}"
        try:
            with urllib.request.urlopen(url, timeout=deadline_s) as response:
                data = json.loads(response.read())
            results = data["results"][: self.max_results]
            lines = [f"- {r.get('title', '').strip()}: {r.get('content', '').strip()} ({r['url']})" for r in results]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EndpointError(f"search at {self.base_url} failed: {exc}") from exc
        if not lines:
            return ResearchNotes(f"A live search found nothing for this question. {STALE_NOTICE}", ())
        return ResearchNotes("Live search results (cite them, prefer them over memory):\n" + "\n".join(lines),
                             tuple(r["url"] for r in results))
