"""Public datasets by manifest: ``sources.json`` → validated dataclasses, a verified local cache, :func:`fetch`.

The project commits the manifest (repository, pinned commit, file paths, sha256, licence, the tasks each
source feeds) and the importer code, never the third-party rows (spaCy projects' ``assets``). ``fetch``
fills a git-ignored cache, ``$PENNY_SLM_CACHE`` or ``$XDG_CACHE_HOME/penny-slm``, one folder per source and
revision: ``sources/<name>/<commit or 'http'>/<path>``. A source is usable only when every file verifies;
:func:`cached` says so, using a stamp of each file's size, times and inode so that 11k files are not hashed
on every call, and hashing again whatever changed. Format and rules: docs/DATA.md.

Runtime-free: the standard library plus ``penny_slm.errors``; torch is never imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from penny_slm.errors import DataSourceError
from penny_slm.pipeline.model_registry import sha256_file

TASKS = ("research", "guard", "mood", "formality", "depth", "slang", "attachment")
"""What a source can feed: the research classifier, the guard's tone stage, and the context tracker's heads."""
ROLES = ("train", "test", "probe")
"""``train``: train and dev (split by the importer's seeded rule); ``test``: held out at the source level,
evaluation only; ``probe``: small, evaluation only. Only ``train`` rows are ever trained, tuned or calibrated on."""
LICENCES = frozenset({
    "CC0-1.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "MIT", "MIT-0", "Apache-2.0",
    "BSD-2-Clause", "BSD-3-Clause",
})
"""SPDX ids the project accepts (docs/DATA.md: permissive only). A licence is one id or ids joined by AND/OR."""
ENV_CACHE = "PENNY_SLM_CACHE"
ENV_SOURCES = "PENNY_SLM_SOURCES"

State = Literal["fetched", "cached", "unreachable", "mismatch"]

_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_SOURCE_KEYS = {"name", "title", "kind", "repo", "commit", "licence", "licence_evidence", "files", "trees", "uses",
                "importer", "notes"}
_STAMP_VERSION = 1


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One pinned file of a source: path, sha256 and size (and URL for http sources)."""
    path: str
    sha256: str
    size: int
    url: str = ""  # http sources only: where this file is downloaded from


@dataclass(frozen=True, slots=True)
class TreeSpec:
    """Every file under ``prefix`` at the pinned commit, without listing them: ``digest`` is the sha256 of the
    sorted lines ``"<path>\\t<sha256 of the file>\\n"``, so a missing, extra or changed file fails it."""

    prefix: str
    count: int
    digest: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a source's licence is stated, and the words that state it."""
    where: str  # a path in the repository at the pinned commit, or a URL
    quote: str


@dataclass(frozen=True, slots=True)
class Source:
    """One public source as the manifest pins it: where it lives, the pinned files, its licence with evidence, and its role
    per task."""
    name: str
    title: str
    kind: Literal["git", "http"]
    licence: str
    licence_evidence: tuple[Evidence, ...]
    files: tuple[FileSpec, ...]
    uses: dict[str, str] = field(default_factory=dict, hash=False)
    """task → role (see ``ROLES``)."""
    repo: str = ""  # git: "owner/name"
    commit: str = ""  # git: 40 hex digits
    trees: tuple[TreeSpec, ...] = ()
    importer: str | None = None
    notes: str = ""

    @property
    def revision(self) -> str:
        """The cache folder below ``sources/<name>/``: the pinned commit, or ``http``."""
        return self.commit if self.kind == "git" else "http"

    def role(self, task: str) -> str | None:
        """The source's role for ``task`` (``train``, ``test`` or ``probe``), or None if it does not feed it."""
        return self.uses.get(task)


@dataclass(frozen=True, slots=True)
class Manifest:
    """The validated ``sources.json``."""
    path: Path
    sources: tuple[Source, ...]

    def names(self) -> list[str]:
        """Every source name, in manifest order."""
        return [s.name for s in self.sources]

    def get(self, name: str) -> Source:
        """The source called ``name``; ``DataSourceError`` lists the known names otherwise."""
        for source in self.sources:
            if source.name == name:
                return source
        raise DataSourceError("", f"unknown source {name!r}; sources: {', '.join(self.names())}")

    def select(self, names: Sequence[str] | None) -> tuple[Source, ...]:
        """The named sources in the order given (all of them for ``None`` or empty)."""
        return tuple(self.get(n) for n in names) if names else self.sources


@dataclass(frozen=True, slots=True)
class FetchResult:
    """How fetching one source ended (``fetched``, ``cached``, ``unreachable``, ``mismatch``), with what was
    transferred."""
    name: str
    state: State
    detail: str = ""
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """The source is in the cache and verified."""
        return self.state in ("fetched", "cached")

    def line(self) -> str:
        """One line for ``penny-slm data fetch``."""
        if self.state == "fetched":
            return f"{self.name}: fetched {self.files} files ({self.bytes / 1e6:.1f} MB) in {self.seconds:.1f}s"
        if self.state == "cached":
            return f"{self.name}: cached"
        label = "checksum mismatch" if self.state == "mismatch" else "unreachable"
        return f"{self.name}: {label}: {self.detail}"


# ---------------------------------------------------------------------------------------------- manifest


def packaged_manifest_path() -> Path:
    """The ``sources.json`` shipped with the package."""
    return Path(str(resources.files("penny_slm.training"))) / "data" / "sources.json"


def load_manifest(path: str | Path | None = None) -> Manifest:
    """``path``, else ``$PENNY_SLM_SOURCES``, else the packaged ``sources.json``; validated in one place.
    A bad entry raises ``DataSourceError`` whose path names the source and field (``sources -> sgd -> commit``)."""
    where = Path(path or os.environ.get(ENV_SOURCES) or packaged_manifest_path())
    try:
        raw = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataSourceError(str(where), "manifest not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataSourceError(str(where), f"not valid JSON ({exc})") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list):
        raise DataSourceError(str(where), "expected an object with a 'sources' list")
    if raw.get("version") != 1:
        raise DataSourceError(f"{where}: version", f"unsupported manifest version {raw.get('version')!r}; expected 1")
    sources = tuple(_source(entry, i) for i, entry in enumerate(raw["sources"]))
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise DataSourceError(f"sources -> {source.name}", "duplicate name")
        seen.add(source.name)
    return Manifest(where, sources)


def _need(ok: bool, path: str, problem: str) -> None:
    if not ok:
        raise DataSourceError(path, problem)


def _str(raw: dict[str, Any], key: str, at: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    _need(isinstance(value, str) and bool(value.strip()), f"{at} -> {key}", "must be a non-empty string")
    return str(value)


def safe_relpath(path: str) -> bool:
    """A relative POSIX path that stays inside its folder (no ``..``, no absolute path, no empty segment)."""
    parts = path.split("/")
    return (bool(path) and not any(c in path for c in "\\\0\n\r") and not path.startswith("/")
            and all(p not in ("", ".", "..") for p in parts))


def _source(raw: Any, index: int) -> Source:
    _need(isinstance(raw, dict), f"sources -> {index}", "expected an object")
    name = raw.get("name")
    _need(isinstance(name, str) and bool(_NAME.fullmatch(name)), f"sources -> {index} -> name",
          "must be a short id: lowercase letters, digits, '.', '_' or '-'")
    at = f"sources -> {name}"
    unknown = sorted(set(raw) - _SOURCE_KEYS)
    _need(not unknown, f"{at} -> {unknown[0] if unknown else ''}", f"unknown key; valid keys: {', '.join(sorted(_SOURCE_KEYS))}")
    kind = raw.get("kind")
    _need(kind in ("git", "http"), f"{at} -> kind", "must be 'git' or 'http'")
    repo = commit = ""
    if kind == "git":
        repo, commit = _str(raw, "repo", at), _str(raw, "commit", at)
        _need(bool(_REPO.fullmatch(repo)), f"{at} -> repo", "must be 'owner/name'")
        _need(bool(_HEX40.fullmatch(commit)), f"{at} -> commit", "must be a full commit id (40 lowercase hex digits)")
    else:
        _need("repo" not in raw and "commit" not in raw, f"{at} -> kind", "an http source has no repo or commit")
        _need("trees" not in raw, f"{at} -> trees", "trees need a git source (an http server cannot list a folder)")
    files = _files(raw.get("files"), f"{at} -> files", kind == "http")
    trees = _trees(raw.get("trees", []), f"{at} -> trees")
    for spec in files:
        inside = [t.prefix for t in trees if spec.path.startswith(t.prefix)]
        _need(not inside, f"{at} -> files -> {spec.path}", f"lies under the tree {inside[0] if inside else ''}")
    importer = raw.get("importer")
    _need(importer is None or (isinstance(importer, str) and bool(importer)), f"{at} -> importer",
          "must be an importer name (a non-empty string) or absent")
    notes = raw.get("notes", "")
    _need(isinstance(notes, str), f"{at} -> notes", "must be a string")
    return Source(name=name, title=_str(raw, "title", at), kind=kind, licence=_licence(raw.get("licence"), at),
                  licence_evidence=_evidence(raw.get("licence_evidence"), f"{at} -> licence_evidence"), files=files,
                  uses=_uses(raw.get("uses"), f"{at} -> uses"), repo=repo, commit=commit, trees=trees, importer=importer,
                  notes=notes)


def _files(raw: Any, at: str, http: bool) -> tuple[FileSpec, ...]:
    _need(isinstance(raw, dict) and bool(raw), at, "must be a non-empty object: path -> {sha256, size}")
    out = []
    for path, spec in raw.items():
        where = f"{at} -> {path}"
        _need(safe_relpath(path), where, "must be a relative path inside the repository")
        _need(isinstance(spec, dict), where, "expected an object {sha256, size}")
        keys = {"sha256", "size", "url"} if http else {"sha256", "size"}
        unknown = sorted(set(spec) - keys)
        _need(not unknown, f"{where} -> {unknown[0] if unknown else ''}", f"unknown key; valid keys: {', '.join(sorted(keys))}")
        sha, size = spec.get("sha256"), spec.get("size")
        _need(isinstance(sha, str) and bool(_HEX64.fullmatch(sha)), f"{where} -> sha256", "must be 64 lowercase hex digits")
        _need(isinstance(size, int) and not isinstance(size, bool) and size >= 0, f"{where} -> size",
              "must be a byte count (an integer >= 0)")
        url = spec.get("url", "")
        if http:
            _need(isinstance(url, str) and url.startswith(("https://", "http://")), f"{where} -> url",
                  "an http source needs an http(s) URL per file")
        out.append(FileSpec(path, sha, size, url))
    return tuple(out)


def _trees(raw: Any, at: str) -> tuple[TreeSpec, ...]:
    _need(isinstance(raw, list), at, "must be a list of {prefix, count, digest}")
    out = []
    for i, spec in enumerate(raw):
        where = f"{at} -> {i}"
        _need(isinstance(spec, dict) and set(spec) == {"prefix", "count", "digest"}, where,
              "expected exactly the keys prefix, count, digest")
        prefix, count, digest = spec["prefix"], spec["count"], spec["digest"]
        _need(isinstance(prefix, str) and prefix.endswith("/") and safe_relpath(prefix[:-1]), f"{where} -> prefix",
              "must be a folder inside the repository, ending with '/'")
        _need(isinstance(count, int) and not isinstance(count, bool) and count >= 1, f"{where} -> count",
              "must be the number of files (>= 1)")
        _need(isinstance(digest, str) and bool(_HEX64.fullmatch(digest)), f"{where} -> digest", "must be 64 lowercase hex digits")
        out.append(TreeSpec(prefix, count, digest))
    prefixes = [t.prefix for t in out]
    for i, a in enumerate(prefixes):
        _need(not any(b.startswith(a) or a.startswith(b) for b in prefixes[i + 1:]), f"{at} -> {i} -> prefix", "trees overlap")
    return tuple(out)


def _licence(raw: Any, at: str) -> str:
    _need(isinstance(raw, str) and bool(raw), f"{at} -> licence", "must be an SPDX id")
    ids = [part for i, part in enumerate(str(raw).split(" ")) if i % 2 == 0]
    joins = [part for i, part in enumerate(str(raw).split(" ")) if i % 2 == 1]
    _need(all(j in ("AND", "OR") for j in joins) and all(i in LICENCES for i in ids), f"{at} -> licence",
          f"{raw!r} is not an accepted licence; use SPDX ids joined by AND/OR from: {', '.join(sorted(LICENCES))}")
    return str(raw)


def _evidence(raw: Any, at: str) -> tuple[Evidence, ...]:
    _need(isinstance(raw, list) and bool(raw), at, "must be a non-empty list of {path or url, quote}")
    out = []
    for i, item in enumerate(raw):
        ok = (isinstance(item, dict) and set(item) in ({"path", "quote"}, {"url", "quote"})
              and all(isinstance(v, str) and v for v in item.values()))
        _need(ok, f"{at} -> {i}", "expected {path, quote} or {url, quote} with non-empty strings")
        out.append(Evidence(item.get("path") or item["url"], item["quote"]))
    return tuple(out)


def _uses(raw: Any, at: str) -> dict[str, str]:
    _need(isinstance(raw, dict) and bool(raw), at, "must be a non-empty object: task -> role")
    for task, role in raw.items():
        _need(task in TASKS, f"{at} -> {task}", f"unknown task; tasks: {', '.join(TASKS)}")
        _need(role in ROLES, f"{at} -> {task}", f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return dict(raw)


# ------------------------------------------------------------------------------------------------ cache


def cache_dir() -> Path:
    """``$PENNY_SLM_CACHE``, else ``$XDG_CACHE_HOME/penny-slm`` (``~/.cache/penny-slm``). Never inside the repository."""
    configured = os.environ.get(ENV_CACHE)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "penny-slm"


def source_dir(source: Source) -> Path:
    """Where a source's verified files live in the cache: ``sources/<name>/<commit or 'http'>``."""
    return cache_dir() / "sources" / source.name / source.revision


def _stamp_path(source: Source) -> Path:
    return cache_dir() / "sources" / source.name / f".{source.revision}.verified.json"


def _spec_key(source: Source) -> str:
    """Changes whenever the manifest pins different files, so an old stamp never vouches for new pins."""
    spec = [[f.path, f.sha256, f.size] for f in source.files] + [[t.prefix, t.count, t.digest] for t in source.trees]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()


def tree_digest(shas: dict[str, str]) -> str:
    """sha256 over the sorted lines ``"<path>\\t<sha256>\\n"`` (paths relative to the repository root)."""
    return hashlib.sha256("".join(f"{p}\t{shas[p]}\n" for p in sorted(shas)).encode()).hexdigest()


def _fingerprint(st: os.stat_result) -> list[int]:
    # ctime and inode change on any write or replacement, even one that restores mtime and size
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _tree_files(root: Path, prefix: str) -> list[str]:
    base = root / prefix
    if not base.is_dir():
        return []
    found = []
    for folder, _dirs, names in os.walk(base):
        rel = Path(folder).relative_to(root).as_posix()
        found += [f"{rel}/{n}" for n in names]
    return found


def cached(source: Source) -> dict[str, Path] | None:
    """Every pinned file of ``source`` (tree files included), path → local file, if all are in the cache and
    verify against the manifest; else ``None``. Unchanged files are trusted from the stamp, changed ones re-hashed."""
    root = source_dir(source)
    if not root.is_dir():
        return None
    stamp = _read_stamp(source)
    paths: dict[str, Path] = {}
    known: dict[str, list[Any]] = {}
    shas: dict[str, str] = {}
    rehashed = False
    listed = [f.path for f in source.files] + [p for t in source.trees for p in _tree_files(root, t.prefix)]
    for rel in listed:
        local = root / rel
        if not local.is_file():
            return None
        fp = _fingerprint(local.stat())
        old = stamp.get(rel)
        if old is not None and old[:4] == fp:
            shas[rel] = old[4]
        else:
            shas[rel], rehashed = sha256_file(local), True
        known[rel] = [*fp, shas[rel]]
        paths[rel] = local
    for spec in source.files:
        if shas[spec.path] != spec.sha256 or known[spec.path][0] != spec.size:
            return None
    for tree in source.trees:
        inside = {p: s for p, s in shas.items() if p.startswith(tree.prefix)}
        if len(inside) != tree.count or tree_digest(inside) != tree.digest:
            return None
    if rehashed or len(stamp) != len(known):
        _write_stamp(source, known)
    return paths


def _read_stamp(source: Source) -> dict[str, list[Any]]:
    path = _stamp_path(source)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a damaged stamp only costs a re-hash
    if not isinstance(data, dict) or data.get("version") != _STAMP_VERSION or data.get("spec") != _spec_key(source):
        return {}
    files = data.get("files")
    return files if isinstance(files, dict) else {}


def _write_stamp(source: Source, known: dict[str, list[Any]]) -> None:
    path = _stamp_path(source)
    body = json.dumps({"version": _STAMP_VERSION, "spec": _spec_key(source), "files": known})
    try:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache still verifies, by hashing every time


# ------------------------------------------------------------------------------------------------ fetch


def _quiet(_message: str) -> None:
    pass


class Reader(Protocol):
    """Where a source's files come from (``source_readers``: a local git mirror, or HTTP)."""

    where: str

    def list_tree(self, prefix: str) -> dict[str, str]:
        """Every file under ``prefix`` at the pinned revision: path → git blob id (lets an unchanged file be kept)."""
        ...

    def read(self, wanted: dict[str, FileSpec | None], into: Path, log: Callable[[str], None]) -> dict[str, str]:
        """Write each wanted file under ``into`` and return path → sha256. A ``FileSpec`` is checked for size and
        sha256 as the file arrives (``SourceFailure("mismatch")``); ``None`` (a tree file) is only hashed."""
        ...


class SourceFailure(Exception):
    """One source could not be fetched (``state``: unreachable or mismatch); the others still are."""

    def __init__(self, state: State, detail: str) -> None:
        self.state = state
        super().__init__(detail)


def fetch(sources: Iterable[Source], from_dir: str | Path | None = None,
          log: Callable[[str], None] = _quiet) -> list[FetchResult]:
    """Bring each source into the cache unless it is already there and verifies.

    git sources come from ``from_dir/OWNER+NAME`` (a bare mirror, a repository, or a folder whose ``repo``
    subfolder is either) when ``from_dir`` is given, else over HTTPS from ``$PENNY_SLM_GIT_RAW_BASE``
    (``https://raw.githubusercontent.com``) ``/OWNER/NAME/COMMIT/PATH``; http sources from their URLs. Files land
    in a staging folder, each checked for size and sha256 as it arrives, and the source's folder is swapped in
    only when every file verifies: a mismatch or a failed download leaves nothing new in the cache.
    """
    from penny_slm.training.source_readers import reader_for

    results = []
    for source in sources:
        start = time.monotonic()
        if cached(source) is not None:
            results.append(FetchResult(source.name, "cached"))
            continue
        try:
            reader = reader_for(source, Path(from_dir) if from_dir else None)
            n_files, n_bytes = _fetch_one(source, reader, log)
        except SourceFailure as exc:
            results.append(FetchResult(source.name, exc.state, str(exc), seconds=time.monotonic() - start))
            continue
        results.append(FetchResult(source.name, "fetched", files=n_files, bytes=n_bytes, seconds=time.monotonic() - start))
    return results


def _fetch_one(source: Source, reader: Reader, log: Callable[[str], None]) -> tuple[int, int]:
    """Stage, verify, swap in, stamp. Returns (files fetched, bytes fetched)."""
    parent = cache_dir() / "sources" / source.name
    parent.mkdir(parents=True, exist_ok=True)
    _sweep(parent)
    final = source_dir(source)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    try:
        shas: dict[str, str] = {}
        wanted: dict[str, FileSpec | None] = {}
        for spec in source.files:
            previous = final / spec.path
            if previous.is_file() and previous.stat().st_size == spec.size and sha256_file(previous) == spec.sha256:
                _link_or_copy(previous, staging / spec.path)  # already here and still good: not fetched again
                shas[spec.path] = spec.sha256
            else:
                wanted[spec.path] = spec
        for tree in source.trees:
            listing = reader.list_tree(tree.prefix)
            if len(listing) != tree.count:
                raise SourceFailure("mismatch", f"{tree.prefix} holds {len(listing)} files, the manifest pins {tree.count}")
            for path, blob in listing.items():  # the listing is not trusted: the tree digest checks the result
                previous = final / path
                kept = _blob_and_sha256(previous) if previous.is_file() and safe_relpath(path) else None
                if kept is not None and kept[0] == blob:
                    _link_or_copy(previous, staging / path)
                    shas[path] = kept[1]
                else:
                    wanted[path] = None
        log(f"{source.name}: fetching {len(wanted)} files from {reader.where}")
        fetched = reader.read(wanted, staging, log)
        shas.update(fetched)
        for tree in source.trees:
            if tree_digest({p: s for p, s in shas.items() if p.startswith(tree.prefix)}) != tree.digest:
                raise SourceFailure("mismatch", f"the files under {tree.prefix} do not match the manifest's digest")
        n_bytes = sum((staging / p).stat().st_size for p in fetched)
        _swap_in(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_stamp(source, {p: [*_fingerprint((final / p).stat()), sha] for p, sha in shas.items()})
    return len(fetched), n_bytes


def _sweep(parent: Path, older_than_s: float = 86400.0) -> None:
    """Remove staging folders a killed fetch left behind (a day old: never one a running fetch still fills)."""
    for leftover in [*parent.glob(".staging-*"), *parent.glob(".old-*")]:
        if time.time() - leftover.stat().st_mtime > older_than_s:
            shutil.rmtree(leftover, ignore_errors=True)


def _blob_and_sha256(path: Path) -> tuple[str, str]:
    """The file's git blob id (SHA-1, as GitHub and ``git ls-tree`` list it) and its sha256, in one read."""
    body = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest(), hashlib.sha256(body).hexdigest()


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _swap_in(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging``: renames on one file system, so no reader sees a half-filled folder."""
    if final.exists():
        trash = Path(tempfile.mkdtemp(prefix=".old-", dir=final.parent))
        final.rename(trash / "old")
        staging.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(final)
