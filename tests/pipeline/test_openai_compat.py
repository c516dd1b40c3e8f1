"""The OpenAI-compatible adapter against a real HTTP server on 127.0.0.1 (healthy, slow, hanging, 500, malformed)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from penny_slm.errors import ConfigError, EndpointError
from penny_slm.pipeline.adapters.base import Message
from penny_slm.pipeline.adapters.openai_compat import OpenAICompatible

HELLO = [Message("system", "Be brief."), Message("user", "Say hello.")]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour = "ok"
    failures_left = 0
    retry_after = 1
    requests: list[dict[str, object]]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        mode = self.server.behaviour
        if mode == "flaky" and self.server.failures_left > 0:
            self.server.failures_left -= 1
            return self._send(503, b'{"error": "busy"}')
        if mode == "500":
            return self._send(500, b'{"error": "boom"}')
        if mode == "hang":
            time.sleep(5)
            return self._send(200, b"{}")
        if mode == "malformed":
            return self._send(200, b'{"choices": [{"mess')
        if mode == "retry_after" and self.server.failures_left > 0:
            self.server.failures_left -= 1
            return self._send(429, b'{"error": "slow down"}', {"Retry-After": str(self.server.retry_after)})
        if mode == "trickle":  # a complete-looking reply, one byte at a time, never finishing in time
            payload = json.dumps({"choices": [{"message": {"content": "Hello." * 50}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            for byte in payload:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if mode == "trickle_stream":  # server-sent comments keep the connection busy but carry no event
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for _ in range(200):
                self.wfile.write(b": keep-alive\n")
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if not body["stream"]:
            reply = {"choices": [{"message": {"content": "Hello."}, "finish_reason": "stop"}], "usage": {"completion_tokens": 2}}
            return self._send(200, json.dumps(reply).encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        events = ["Hel", "lo", ", there."]
        if mode == "malformed_stream":
            events = ["Hel", "{broken"]
        for piece in events:
            if piece.startswith("{"):
                self.wfile.write(f"data: {piece}\n\n".encode())
            else:
                chunk = {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if mode == "slow":
                time.sleep(0.4)
        self.wfile.write(b"data: [DONE]\n\n")

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture()
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def client(srv: Server, **kwargs: object) -> OpenAICompatible:
    return OpenAICompatible(f"http://127.0.0.1:{srv.server_address[1]}/v1", "test-model", backoff_s=0.05, **kwargs)  # type: ignore[arg-type]


def test_streaming_completion(server: Server) -> None:
    result = client(server).chat(HELLO, max_tokens=20, deadline_s=5)
    assert result.text == "Hello, there." and result.stop_reason == "eos" and result.n_tokens == 3
    assert 0 < result.first_token_s <= result.seconds
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"] == {"model": "test-model", "messages": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Say hello."}], "max_tokens": 20, "temperature": 0.7, "stream": True}


def test_non_streaming_completion(server: Server) -> None:
    result = client(server, stream=False).chat(HELLO, deadline_s=5)
    assert result.text == "Hello." and result.n_tokens == 2


def test_key_comes_from_the_environment_only(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENNY_TEST_KEY", "sk-test-123")
    llm = client(server, api_key_env="PENNY_TEST_KEY")
    llm.load()
    llm.chat(HELLO, deadline_s=5)
    assert server.requests[0]["auth"] == "Bearer sk-test-123"
    monkeypatch.delenv("PENNY_TEST_KEY")
    with pytest.raises(ConfigError, match="PENNY_TEST_KEY is not set"):
        llm.load()


def test_retries_a_busy_server_then_succeeds(server: Server) -> None:
    server.behaviour, server.failures_left = "flaky", 2
    assert client(server, retries=2).chat(HELLO, deadline_s=5).text == "Hello, there."
    assert len(server.requests) == 3


def test_a_500_fails_after_the_retries_with_the_status(server: Server) -> None:
    server.behaviour = "500"
    with pytest.raises(EndpointError, match="HTTP 500") as info:
        client(server, retries=2).chat(HELLO, deadline_s=5)
    assert info.value.status == 500 and len(server.requests) == 3


def test_a_hanging_server_is_cut_off_at_the_deadline(server: Server) -> None:
    server.behaviour = "hang"
    start = time.perf_counter()
    with pytest.raises(EndpointError, match="deadline"):
        client(server, retries=3).chat(HELLO, deadline_s=0.5)
    assert time.perf_counter() - start < 1.5  # no retry outlives the deadline


def test_a_slow_stream_stops_at_the_deadline_with_what_arrived(server: Server) -> None:
    server.behaviour = "slow"
    result = client(server).chat(HELLO, deadline_s=0.6)
    assert result.stop_reason == "deadline" and result.text.startswith("Hel") and result.text != "Hello, there."


@pytest.mark.parametrize("behaviour", ["malformed", "malformed_stream"])
def test_malformed_replies_are_typed_errors(server: Server, behaviour: str) -> None:
    server.behaviour = behaviour
    with pytest.raises(EndpointError, match="malformed"):
        client(server, stream=behaviour == "malformed_stream").chat(HELLO, deadline_s=5)


def test_nothing_listening_is_an_endpoint_error() -> None:
    with pytest.raises(EndpointError, match="connection failed"):
        OpenAICompatible("http://127.0.0.1:9/v1", retries=1, backoff_s=0.01).chat(HELLO, deadline_s=2)


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        OpenAICompatible("ftp://example")


@pytest.mark.issue(24)
@pytest.mark.parametrize(("behaviour", "stream"), [("trickle", False), ("trickle_stream", True)])
def test_a_server_that_trickles_bytes_is_cut_off_at_the_total_deadline(server: Server, behaviour: str, stream: bool) -> None:
    server.behaviour = behaviour
    start = time.perf_counter()
    try:
        result = client(server, stream=stream, retries=0).chat(HELLO, deadline_s=0.8)
        assert result.stop_reason == "deadline" and result.text == ""  # a stream returns what arrived: nothing
    except EndpointError as exc:
        assert "deadline" in str(exc)
    assert time.perf_counter() - start < 1.3


@pytest.mark.issue(24)
def test_retry_after_is_honoured_when_it_fits_the_deadline(server: Server) -> None:
    server.behaviour, server.failures_left, server.retry_after = "retry_after", 1, 1
    start = time.perf_counter()
    assert client(server, retries=2).chat(HELLO, deadline_s=5).text == "Hello, there."
    assert time.perf_counter() - start >= 1.0 and len(server.requests) == 2
    server.requests.clear()
    server.failures_left, server.retry_after = 1, 30
    start = time.perf_counter()
    with pytest.raises(EndpointError, match="HTTP 429"):
        client(server, retries=2).chat(HELLO, deadline_s=2)
    assert time.perf_counter() - start < 0.5 and len(server.requests) == 1  # no pointless wait past the deadline


@pytest.mark.issue(24)
def test_an_api_key_goes_only_over_https_or_to_loopback() -> None:
    with pytest.raises(ConfigError, match="only over https or to a loopback"):
        OpenAICompatible("http://api.example.com/v1", api_key_env="PENNY_TEST_KEY")
    OpenAICompatible("https://api.example.com/v1", api_key_env="PENNY_TEST_KEY")
    OpenAICompatible("http://127.0.0.1:8000/v1", api_key_env="PENNY_TEST_KEY")
    OpenAICompatible("http://localhost:8000/v1", api_key_env="PENNY_TEST_KEY")
    OpenAICompatible("http://api.example.com/v1")  # no key, nothing to leak
