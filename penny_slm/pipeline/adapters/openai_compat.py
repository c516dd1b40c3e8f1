"""Any OpenAI-compatible chat endpoint (OpenAI, GPT-OSS via Ollama, vLLM, a llama.cpp server): Penny's main LLM.

Standard library only (``http.client``): streaming over server-sent events; a per-call deadline that
bounds the whole exchange, retries included (a watchdog shuts the socket at the deadline, so a server
that trickles bytes cannot hold a call past it); retries with exponential backoff on connection
errors, 429 and 5xx, honouring ``Retry-After`` when it fits the deadline (never once a stream has
started, so no text is duplicated). The API key is read from the environment variable the config
names (keys never live in config files) and is sent only over HTTPS or to a loopback address.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from penny_slm.errors import ConfigError, EndpointError
from penny_slm.pipeline.adapters.base import Generation, LogitsHook, Message, StopReason

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class OpenAICompatible:
    """``base_url`` like ``http://127.0.0.1:11434/v1``; ``model`` is the server's model name."""

    def __init__(self, base_url: str = "http://127.0.0.1:11434/v1", model: str = "gpt-oss:20b", *,
                 api_key_env: str = "", temperature: float = 0.7, retries: int = 2, backoff_s: float = 0.25,
                 stream: bool = True) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("base_url", f"{base_url!r} is not an http(s) URL")
        if api_key_env and parts.scheme != "https" and not is_loopback(parts.hostname):
            raise ConfigError("base_url", f"{base_url!r}: an API key is sent only over https or to a loopback address")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.retries = retries
        self.backoff_s = backoff_s
        self.stream = stream
        self._parts = parts

    def load(self) -> None:
        """Nothing to load; checks that a named key variable is set so a missing key fails early."""
        if self.api_key_env and not os.environ.get(self.api_key_env):
            raise ConfigError("api_key_env", f"environment variable {self.api_key_env} is not set")

    def chat(self, messages: list[Message], *, max_tokens: int = 512, deadline_s: float = 30.0,
             logits_hook: LogitsHook | None = None) -> Generation:
        """One chat completion. ``logits_hook`` is not supported by HTTP endpoints and must be None."""
        if logits_hook is not None:
            raise ConfigError("logits_hook", "an HTTP endpoint cannot apply logit masks; use a local generator")
        body = json.dumps({"model": self.model, "messages": [{"role": m.role, "content": m.content} for m in messages],
                           "max_tokens": max_tokens, "temperature": self.temperature, "stream": self.stream}).encode()
        start = time.perf_counter()
        deadline = start + deadline_s
        attempt = 0
        while True:
            try:
                return self._exchange(body, start, deadline)
            except EndpointError as exc:
                attempt += 1
                retryable = exc.status is None or exc.status in RETRY_STATUSES
                pause = max(self.backoff_s * 2 ** (attempt - 1), getattr(exc, "retry_after", 0.0))
                if getattr(exc, "stream_started", False) or not retryable or attempt > self.retries \
                        or time.perf_counter() + pause >= deadline:
                    raise
                time.sleep(pause)

    # -- one HTTP exchange ------------------------------------------------------------------
    def _connection(self, deadline: float) -> http.client.HTTPConnection:
        timeout = max(0.001, deadline - time.perf_counter())
        cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        return cls(self._parts.hostname or "", self._parts.port, timeout=timeout)

    def _exchange(self, body: bytes, start: float, deadline: float) -> Generation:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if self.stream else "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        conn = self._connection(deadline)
        response: http.client.HTTPResponse | None = None
        watchdog = _Watchdog(conn, deadline)
        try:
            conn.request("POST", f"{self._parts.path.rstrip('/')}/chat/completions", body, headers)
            watchdog.start()
            response = conn.getresponse()
            if response.status != 200:
                detail = response.read(300).decode("utf-8", "replace").strip()
                error = EndpointError(f"{self.base_url} answered HTTP {response.status}: {detail}", response.status)
                error.retry_after = _retry_after(response.getheader("Retry-After"))  # type: ignore[attr-defined]
                raise error
            if not self.stream:
                return self._parse_whole(response.read(), start)
            return self._read_stream(response, start, deadline)
        except EndpointError:
            raise
        except (TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
            if time.perf_counter() >= deadline or isinstance(exc, TimeoutError):
                raise EndpointError(f"{self.base_url} did not answer within the deadline") from exc
            raise EndpointError(f"{self.base_url} connection failed: {exc}") from exc
        finally:
            watchdog.cancel()
            if response is not None:
                response.close()
            conn.close()

    def _parse_whole(self, raw: bytes, start: float) -> Generation:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise EndpointError(f"{self.base_url} sent a malformed completion: {raw[:200]!r}", 200) from exc
        seconds = time.perf_counter() - start
        n = int((data.get("usage") or {}).get("completion_tokens") or 0)
        reason: StopReason = "max_tokens" if choice.get("finish_reason") == "length" else "eos"
        return Generation(text, n, seconds, seconds, reason, self.model)

    def _read_stream(self, response: http.client.HTTPResponse, start: float, deadline: float) -> Generation:
        pieces: list[str] = []
        first = 0.0
        reason: StopReason = "eos"
        try:
            for event in _sse_events(response):
                if time.perf_counter() > deadline:
                    reason = "deadline"
                    break
                if event == "[DONE]":
                    break
                try:
                    choice = json.loads(event)["choices"][0]
                    delta = choice.get("delta", {}).get("content") or ""
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                    error = EndpointError(f"{self.base_url} sent a malformed stream event: {event[:200]!r}", 200)
                    error.stream_started = bool(pieces)  # type: ignore[attr-defined]
                    raise error from exc
                if delta:
                    first = first or time.perf_counter() - start
                    pieces.append(delta)
                if choice.get("finish_reason") == "length":
                    reason = "max_tokens"
        except (OSError, http.client.HTTPException) as exc:
            if time.perf_counter() < deadline:  # the connection broke: not a deadline, and text may be missing
                error = EndpointError(f"{self.base_url} stream broke: {exc}")
                error.stream_started = bool(pieces)  # type: ignore[attr-defined]
                raise error from exc
            reason = "deadline"  # the watchdog shut the socket: return what arrived
        if reason == "eos" and time.perf_counter() >= deadline:
            reason = "deadline"  # the watchdog's shutdown ended the stream early (no [DONE])
        return Generation("".join(pieces), len(pieces), first, time.perf_counter() - start, reason, self.model)


class _Watchdog:
    """Shuts the connection's socket at ``deadline`` so any blocked read returns at once. The socket is taken
    when the request is sent: ``http.client`` hands it to the response and forgets it."""

    def __init__(self, conn: http.client.HTTPConnection, deadline: float) -> None:
        self._conn = conn
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(max(0.0, deadline - time.perf_counter()), self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._sock = self._conn.sock
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); 0 when absent or unreadable."""
    if not value:
        return 0.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: an API key may be sent over plain HTTP only to such a host."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _sse_events(response: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data:`` payloads of a server-sent-event stream, one per event."""
    for raw in response:
        line = raw.decode("utf-8", "replace").strip()
        if line.startswith("data:"):
            yield line[5:].strip()
