"""Live search for messages the classifier routes to research: a SearXNG JSON client, or nothing.

With no provider configured, the LLM is told plainly that its knowledge may be out of date, so it
can say so instead of presenting stale facts as current. What a search returns is web text, never
trusted: the prompt builder delimits and sanitises it (``prompt.untrusted_block``).
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
FAILED_NOTICE = "A live search was attempted but failed. Your knowledge may be out of date for this question: say so."
EMPTY_NOTICE = "A live search found nothing for this question. Your knowledge may be out of date: say so."


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result as the prompt shows it."""
    title: str
    snippet: str
    url: str


@dataclass(frozen=True, slots=True)
class ResearchNotes:
    """What a search gave: ``hits`` (web text, untrusted), ``text`` (free text from a search callable
    Penny injects, untrusted) and ``notice`` (penny-slm's own words to the LLM, trusted)."""

    hits: tuple[SearchHit, ...] = ()
    notice: str = ""
    text: str = ""

    @property
    def sources(self) -> tuple[str, ...]:
        """The addresses of the hits, in order."""
        return tuple(h.url for h in self.hits)


class ResearchProvider(Protocol):
    """Where the layer gets live search results for a message that needs them."""
    def search(self, query: str, deadline_s: float) -> ResearchNotes:
        """Search for ``query`` within ``deadline_s`` seconds."""
        ...


class NoResearchProvider:
    """The provider when no search service is configured: it searches nothing and tells the LLM its knowledge may be out of
    date."""
    def search(self, query: str, deadline_s: float) -> ResearchNotes:
        """No search: only the notice that the LLM's knowledge may be stale."""
        return ResearchNotes(notice=STALE_NOTICE)


class SearxngProvider:
    """``GET {base_url}/search?q=...&format=json`` (SearXNG with the json format enabled); top results as notes."""

    def __init__(self, base_url: str, max_results: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_results = max_results

    def search(self, query: str, deadline_s: float) -> ResearchNotes:
        """Query the SearXNG JSON API; ``EndpointError`` when it fails or answers malformed JSON.
        """
        url = f"{self.base_url}/search?{urllib.parse.urlencode({'q': query, 'format': 'json'})}"
        try:
            with urllib.request.urlopen(url, timeout=deadline_s) as response:
                data = json.loads(response.read(1 << 20))
            hits = tuple(SearchHit(str(r.get("title", "")), str(r.get("content", "")), str(r["url"]))
                         for r in data["results"][: self.max_results])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EndpointError(f"search at {self.base_url} failed: {exc}") from exc
        return ResearchNotes(hits=hits, notice="" if hits else EMPTY_NOTICE)
