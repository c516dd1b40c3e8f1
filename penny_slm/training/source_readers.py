"""Where a source's files come from: a local git mirror (``git cat-file --batch``), or HTTP(S).

Both check each file as it arrives (size, then sha256) and write it under the staging folder that
``sources.fetch`` swaps into the cache only when the whole source verifies. Failures are
``SourceFailure``: ``unreachable`` (no mirror, no commit, no file, no connection) or ``mismatch``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO

from penny_slm.training.sources import FileSpec, Reader, Source, SourceFailure, safe_relpath

ENV_RAW_BASE = "PENNY_SLM_GIT_RAW_BASE"
ENV_API_BASE = "PENNY_SLM_GITHUB_API_BASE"
RAW_BASE = "https://raw.githubusercontent.com"
API_BASE = "https://api.github.com"
HTTP_TIMEOUT_S = 60.0
HTTP_WORKERS = 8
RETRIES = 2  # after the first try, for 429/5xx, timeouts and reset connections
PROGRESS_EVERY = 1000  # files between progress lines


def reader_for(source: Source, from_dir: Path | None) -> Reader:
    """A local mirror for a git source when ``from_dir`` is given; HTTP otherwise (http sources always)."""
    if source.kind == "git" and from_dir is not None:
        return GitMirror(source, find_git_dir(from_dir, source.repo))
    return HttpReader(source)


def find_git_dir(from_dir: Path, repo: str) -> list[str]:
    """``git`` arguments that address ``from_dir/OWNER+NAME``: a bare mirror, a repository (``.git`` inside), or
    either of those in a ``repo`` subfolder. Checked by shape, never by asking git to search upwards."""
    base = from_dir / repo.replace("/", "+")
    for candidate in (base, base / "repo"):
        if (candidate / ".git").is_dir():
            return ["--git-dir", str(candidate / ".git")]
        if (candidate / ".git").is_file():  # a worktree or submodule checkout
            return ["-C", str(candidate)]
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return ["--git-dir", str(candidate)]
    raise SourceFailure("unreachable", f"no git mirror at {base} (nor {base / 'repo'})")


class _Receiver:
    """Writes one file while hashing it and checks it against its pin once complete."""

    def __init__(self, path: str, spec: FileSpec | None, into: Path) -> None:
        if not safe_relpath(path):
            raise SourceFailure("mismatch", f"refusing the path {path!r}: it leaves the source's folder")
        self.path, self.spec = path, spec
        self.dest = into / path
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.digest = hashlib.sha256()
        self.size = 0

    def write_all(self, chunks: Iterable[bytes]) -> str:
        limit = self.spec.size if self.spec else None
        with self.dest.open("wb") as fh:
            for chunk in chunks:
                self.size += len(chunk)
                if limit is not None and self.size > limit:
                    raise SourceFailure("mismatch", f"{self.path}: more than the {limit} bytes the manifest pins")
                self.digest.update(chunk)
                fh.write(chunk)
        sha = self.digest.hexdigest()
        if self.spec and (self.size != self.spec.size or sha != self.spec.sha256):
            raise SourceFailure("mismatch", f"{self.path}: got {self.size} bytes with sha256 {sha[:12]}..., "
                                            f"the manifest pins {self.spec.size} bytes with sha256 {self.spec.sha256[:12]}...")
        return sha


def _chunks(stream: IO[bytes], n: int) -> Iterator[bytes]:
    while n > 0:
        block = stream.read(min(n, 1 << 20))
        if not block:
            raise SourceFailure("unreachable", "the stream ended early")
        n -= len(block)
        yield block


class GitMirror:
    """Reads blobs at the pinned commit with one ``git cat-file --batch`` process per source."""

    def __init__(self, source: Source, git_args: list[str]) -> None:
        self.source, self.git_args = source, git_args
        self.where = git_args[-1]
        probe = subprocess.run(["git", *git_args, "cat-file", "-e", f"{source.commit}^{{commit}}"],
                               capture_output=True, check=False)
        if probe.returncode != 0:
            raise SourceFailure("unreachable", f"commit {source.commit[:12]} is not in the mirror at {self.where}")

    def list_tree(self, prefix: str) -> dict[str, str]:
        """Every file under ``prefix`` at the pinned commit with its blob id, read from the local mirror."""
        listed = subprocess.run(["git", *self.git_args, "ls-tree", "-r", "-z", self.source.commit, "--", prefix],
                                capture_output=True, check=False)
        if listed.returncode != 0:
            raise SourceFailure("unreachable", f"git ls-tree failed in {self.where}: {listed.stderr.decode(errors='replace').strip()}")
        blobs = {}
        for entry in listed.stdout.split(b"\0"):
            if entry:
                meta, path = entry.decode("utf-8").split("\t", 1)
                _mode, kind, oid = meta.split()
                if kind == "blob":
                    blobs[path] = oid
        return blobs

    def read(self, wanted: dict[str, FileSpec | None], into: Path, log: Callable[[str], None]) -> dict[str, str]:
        """Copy the wanted files at the pinned commit from the mirror into ``into`` (one ``git cat-file --batch``),
        checking each file's size and sha256; returns each file's sha256."""
        shas: dict[str, str] = {}
        proc = subprocess.Popen(["git", *self.git_args, "cat-file", "--batch"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ask, answer = proc.stdin, proc.stdout
        if ask is None or answer is None:
            raise RuntimeError("git cat-file started without pipes")
        try:
            for n, (path, spec) in enumerate(wanted.items(), 1):
                receiver = _Receiver(path, spec, into)  # checks the path before it reaches git
                ask.write(f"{self.source.commit}:{path}\n".encode())
                ask.flush()
                header = answer.readline().decode("utf-8", "replace").split()
                if len(header) != 3 or header[1] != "blob":
                    raise SourceFailure("unreachable", f"{path} is not in the mirror at {self.source.commit[:12]}")
                shas[path] = receiver.write_all(_chunks(answer, int(header[2])))
                answer.read(1)  # the newline after each object
                if n % PROGRESS_EVERY == 0:
                    log(f"{self.source.name}: {n}/{len(wanted)} files")
        except BrokenPipeError as exc:
            raise SourceFailure("unreachable", f"git cat-file stopped reading {self.where}") from exc
        finally:
            ask.close()
            proc.kill()
            proc.wait()
            answer.close()
        return shas


class HttpReader:
    """git sources from ``$PENNY_SLM_GIT_RAW_BASE/OWNER/NAME/COMMIT/PATH`` (tree listings from the GitHub API,
    ``$PENNY_SLM_GITHUB_API_BASE``); http sources from each file's URL. A few downloads at a time."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.raw_base = (os.environ.get(ENV_RAW_BASE) or RAW_BASE).rstrip("/")
        self.where = f"{self.raw_base}/{source.repo}/{source.commit[:12]}..." if source.kind == "git" else "its URLs"
        self._urls = {f.path: f.url for f in source.files if f.url}

    def url(self, path: str) -> str:
        """Where one file is downloaded from: its own URL for http sources, else the raw-file address at the pinned commit.
        """
        if self.source.kind == "http":
            return self._urls[path]
        return f"{self.raw_base}/{self.source.repo}/{self.source.commit}/{urllib.parse.quote(path)}"

    def list_tree(self, prefix: str) -> dict[str, str]:
        """Every file under ``prefix`` at the pinned commit, from GitHub's tree API (a truncated listing is refused)."""
        api = (os.environ.get(ENV_API_BASE) or API_BASE).rstrip("/")
        url = f"{api}/repos/{self.source.repo}/git/trees/{self.source.commit}?recursive=1"
        with _open(url) as response:
            listing = json.loads(response.read())
        if listing.get("truncated"):
            raise SourceFailure("unreachable", f"the tree listing at {url} is truncated")
        return {e["path"]: str(e.get("sha", "")) for e in listing.get("tree", [])
                if e.get("type") == "blob" and e["path"].startswith(prefix)}

    def read(self, wanted: dict[str, FileSpec | None], into: Path, log: Callable[[str], None]) -> dict[str, str]:
        """Download the wanted files into ``into`` in parallel, checking size and sha256 as each arrives; returns each
        file's sha256."""
        shas: dict[str, str] = {}
        stop = threading.Event()
        done = 0
        lock = threading.Lock()

        def one(path: str, spec: FileSpec | None) -> None:
            nonlocal done
            if stop.is_set():
                return
            receiver = _Receiver(path, spec, into)
            url = self.url(path)
            with _open(url) as response:
                sha = receiver.write_all(_body(response, url))
            with lock:
                shas[path] = sha
                done += 1
                if done % PROGRESS_EVERY == 0:
                    log(f"{self.source.name}: {done}/{len(wanted)} files")

        with ThreadPoolExecutor(max_workers=HTTP_WORKERS) as pool:
            futures = [pool.submit(one, path, spec) for path, spec in wanted.items()]
            finished, _pending = wait(futures, return_when=FIRST_EXCEPTION)
            errors = [exc for exc in (f.exception() for f in finished) if exc is not None]
            if errors:
                stop.set()
                for future in futures:
                    future.cancel()
                raise errors[0]
        return shas


def _body(response: IO[bytes], url: str) -> Iterator[bytes]:
    """The response in blocks; a connection lost half-way is ``unreachable``, not a crash."""
    while True:
        try:
            block = response.read(1 << 20)
        except (OSError, http.client.HTTPException) as exc:
            raise SourceFailure("unreachable", f"{url}: the download broke off ({exc})") from exc
        if not block:
            return
        yield block


def _open(url: str) -> IO[bytes]:
    """GET with retries for transient failures (429, 5xx, timeouts, reset connections); anything else is ``unreachable``."""
    request = urllib.request.Request(url, headers={"User-Agent": "penny-slm data fetch"})
    attempt = 0
    while True:
        try:
            response: IO[bytes] = urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S)
            return response
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code not in (429, 500, 502, 503, 504) or attempt == RETRIES:
                raise SourceFailure("unreachable", f"HTTP {exc.code} for {url}") from exc
        except (TimeoutError, ConnectionResetError) as exc:
            if attempt == RETRIES:
                raise SourceFailure("unreachable", f"{url}: {exc}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise SourceFailure("unreachable", f"{url}: {getattr(exc, 'reason', exc)}") from exc
        time.sleep(0.5 * 2 ** attempt)
        attempt += 1
