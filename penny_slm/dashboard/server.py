"""The dashboard's HTTP side: one app object that turns a request into a response (testable without a socket), and
the standard library's HTTP server around it.

Why the standard library: the page is one HTML file, one script and a dozen JSON routes for one person on one
machine; ``http.server`` serves that with nothing to install (a framework plus an ASGI server would add several MB
and threads or an event loop for no gain). Requests are handled one at a time, so the one database connection the
server thread opens is never shared.

Safety, in the order a request meets it:

- **Bind**: loopback by default. Any other address needs a token (``--token`` or ``$PENNY_DASHBOARD_TOKEN``,
  at least 16 characters); :func:`check_bind` refuses to start without one.
- **Host**: on a loopback bind, a request whose ``Host`` is not this loopback address and port is refused (a web
  page that rebinds its own domain name to 127.0.0.1 cannot read the dashboard).
- **Token**: with a token, every request carries it: ``/?token=...`` once (it becomes an HttpOnly, SameSite=Strict
  cookie), or ``Authorization: Bearer ...``.
- **CSRF**: every state-changing request is a JSON ``POST`` with the header ``X-CSRF-Token`` equal to the token
  this process put into the page (and, if the browser sent one, an ``Origin`` of this server); others get 403.
"""

from __future__ import annotations

import hmac
import http.server
import ipaddress
import json
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from penny_slm.config import SLMConfig
from penny_slm.dashboard import data
from penny_slm.errors import InputError
from penny_slm.pipeline.controls import LearningControls
from penny_slm.pipeline.db import PersonalityDB
from penny_slm.pipeline.model_registry import ModelRegistry

log = logging.getLogger(__name__)

TOKEN_ENV = "PENNY_DASHBOARD_TOKEN"
TOKEN_COOKIE = "penny_dashboard_token"
CSRF_HEADER = "X-CSRF-Token"
MIN_TOKEN_CHARS = 16
MAX_BODY = 64 * 1024
SECURITY_HEADERS = (
    ("Content-Security-Policy", ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                 "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


def is_loopback(host: str) -> bool:
    """Whether a bind address or ``Host`` name is this machine only; a name other than ``localhost`` never counts, since it
    may resolve anywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_bind(host: str, token: str | None) -> None:
    """Refuse a bind that would expose the dashboard without a token."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise InputError(f"the dashboard token must be at least {MIN_TOKEN_CHARS} characters (e.g. python -c "
                         f"'import secrets; print(secrets.token_urlsafe())')")
    if not is_loopback(host) and not token:
        raise InputError(f"binding the dashboard to {host} exposes Penny's profile beyond this machine; give a token "
                         f"(--token, or ${TOKEN_ENV}), or bind to 127.0.0.1")


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP reply as the app builds it, independent of the server that sends it (so the app is testable without
    sockets)."""
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, obj: Any, *headers: tuple[str, str]) -> Response:
    return Response(status, json.dumps(obj, ensure_ascii=False).encode(), headers=headers)


def _error(status: int, message: str) -> Response:
    return _json(status, {"error": message})


@dataclass
class DashboardApp:
    """Routes and checks; every read goes through ``data``, every write through ``controls`` (as the CLI's)."""

    cfg: SLMConfig
    store: PersonalityDB
    controls: LearningControls
    registry: ModelRegistry
    token: str | None = None
    allowed_hosts: frozenset[str] = frozenset()  # set by serve() once the port is known; empty: any Host
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    checksums: data.Checksums = field(init=False)

    def __post_init__(self) -> None:
        self.checksums = data.Checksums(self.registry)

    # -- entry -----------------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Response:
        """Answer one request: Host and token checks, CSRF on state-changing POSTs, then the page, a JSON read or an
        action."""
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.allowed_hosts and headers.get("Host", "") not in self.allowed_hosts:
            return _error(421, "wrong Host header for this dashboard")
        if self.token and not self._authorised(headers):
            if method == "GET" and url.path == "/" and hmac.compare_digest(query.get("token", ""), self.token):
                cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                return Response(303, b"", "text/plain", (("Location", "/"), ("Set-Cookie", cookie)))
            return _error(401, "this dashboard needs its token: open /?token=... once")
        try:
            if method == "GET":
                return self._get(url.path, query)
            if method == "POST":
                refused = self._csrf_refusal(headers)
                if refused:
                    return _error(403, refused)
                payload = json.loads(body or b"{}")
                if not isinstance(payload, dict):
                    raise InputError("the request body must be a JSON object")
                return self._post(url.path, payload)
            return _error(405, f"{method} is not allowed")
        except InputError as exc:
            return _error(400, str(exc))
        except ValueError as exc:  # a malformed JSON body
            return _error(400, f"bad request: {exc}")

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        assert self.token
        cookie = SimpleCookie(headers.get("Cookie", ""))
        given = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else headers.get("Authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _csrf_refusal(self, headers: Mapping[str, str]) -> str:
        if not hmac.compare_digest(headers.get(CSRF_HEADER, "").encode(), self.csrf.encode()):
            return f"missing or wrong {CSRF_HEADER} header (reload the page)"
        origin = headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != headers.get("Host", ""):
            return f"cross-origin request from {origin} refused"
        if not headers.get("Content-Type", "").startswith("application/json"):
            return "state-changing requests are JSON (Content-Type: application/json)"
        return ""

    # -- routes ----------------------------------------------------------------------------------------------------
    def _get(self, path: str, query: dict[str, str]) -> Response:
        if path == "/":
            page = _asset("page.html").replace("{{csrf}}", self.csrf)
            return Response(200, page.encode(), "text/html; charset=utf-8")
        if path == "/page.js":
            return Response(200, _asset("page.js").encode(), "text/javascript; charset=utf-8")
        if path == "/api/stamp":
            return _json(200, {"stamp": data.stamp(self.store, self.registry)})
        if path == "/api/state":
            return _json(200, data.state(self.cfg, self.store, self.controls, self.registry, self.checksums, query.get("user")))
        if path == "/api/export":
            user = query.get("user", "")
            exported = self.controls.export(user)
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in user)
            return _json(200, exported, ("Content-Disposition", f'attachment; filename="penny-export-{name}.json"'))
        return _error(404, f"no page at {path}")

    def _post(self, path: str, p: dict[str, Any]) -> Response:
        c = self.controls
        actions: dict[str, Callable[[], Any]] = {
            "/api/approve": lambda: c.approve(p.get("user"), p.get("id")).to_dict(),  # type: ignore[arg-type]
            "/api/reject": lambda: c.reject(p.get("user"), p.get("id")).to_dict(),  # type: ignore[arg-type]
            "/api/rollback": lambda: c.rollback(p.get("user"), p.get("version")).to_dict(),  # type: ignore[arg-type]
            "/api/kill": lambda: c.kill(p.get("reason", "")).to_dict(),
            "/api/resume": lambda: c.resume(p.get("reason", "")).to_dict(),
            "/api/delete": lambda: self._delete(p),
            "/api/ack": lambda: data.acknowledge(self.store, c, p.get("alert")),  # type: ignore[arg-type]
        }
        if path not in actions:
            return _error(404, f"no action at {path}")
        return _json(200, actions[path]())

    def _delete(self, p: dict[str, Any]) -> dict[str, Any]:
        user = p.get("user")
        if not isinstance(user, str) or p.get("confirm") != user:
            raise InputError("deleting a user's data needs confirm = the user id, typed by a person")
        return self.controls.delete(user).to_dict()


def _asset(name: str) -> str:
    return resources.files("penny_slm.dashboard").joinpath(name).read_text(encoding="utf-8")


class _Handler(http.server.BaseHTTPRequestHandler):
    app: DashboardApp
    server_version = "penny-slm-dashboard"
    sys_version = ""

    def _respond(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            response = _error(413, "request body too large")
        else:
            body = self.rfile.read(length) if length else b""
            try:
                response = self.app.handle(self.command, self.path, _Headers(self.headers), body)
            except Exception as exc:  # one failed request must not stop the server
                log.exception("dashboard: %s %s failed", self.command, self.path)
                response = _error(500, f"{type(exc).__name__}: {exc}")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in (*SECURITY_HEADERS, *response.headers):
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = _respond

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("dashboard: " + format, *args)


class _Headers(dict[str, str]):
    """Case-insensitive lookup over the request's headers, as the app reads them."""

    def __init__(self, message: Any) -> None:
        super().__init__({k.lower(): v for k, v in message.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


class DashboardServer(http.server.HTTPServer):
    """One request at a time (see the module docstring)."""

    def __init__(self, app: DashboardApp, host: str, port: int) -> None:
        check_bind(host, app.token)
        handler = type("Handler", (_Handler,), {"app": app})
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), handler)
        self.port = int(self.server_address[1])
        if is_loopback(host) and not app.token:
            app.allowed_hosts = frozenset(f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]"))

    def serve_in_thread(self) -> threading.Thread:
        """Serve on a daemon thread (for tests and embedding) and return it."""
        thread = threading.Thread(target=self.serve_forever, name="penny-dashboard", daemon=True)
        thread.start()
        return thread
