"""The personality database (peewee): SQLite in WAL mode by default, PostgreSQL by ``PENNY_DB_URL``.

Only ``sync.ContextSyncManager`` writes here. Tables: users, profile dimensions, slang lexicon, an
append-only update log with provenance, profile versions (snapshots), module runs, alerts, and the
outbox that makes queued updates durable before they are acknowledged. Schema changes are numbered
migrations run with peewee's migrator; ``schema_version`` records which have been applied.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import peewee as pw
from playhouse.migrate import SchemaMigrator, migrate

database = pw.DatabaseProxy()


def _now() -> datetime:
    return datetime.now(UTC)


class Base(pw.Model):
    class Meta:
        database = database


class User(Base):
    user_id = pw.CharField(primary_key=True)
    created = pw.DateTimeField(default=_now)


class ProfileDimension(Base):
    """One learned trait (formality, technical_depth, mood ...): current value and how sure we are."""

    user = pw.ForeignKeyField(User, backref="dimensions", on_delete="CASCADE")
    key = pw.CharField()
    value = pw.TextField()  # JSON
    confidence = pw.FloatField(default=0.0)
    evidence_count = pw.IntegerField(default=0)
    updated = pw.DateTimeField(default=_now)

    class Meta:
        indexes = ((("user", "key"), True),)


class SlangTerm(Base):
    user = pw.ForeignKeyField(User, backref="slang", on_delete="CASCADE")
    term = pw.CharField()
    gloss = pw.TextField(default="")
    first_seen = pw.DateTimeField(default=_now)
    count = pw.IntegerField(default=1)
    example = pw.TextField(default="")

    class Meta:
        indexes = ((("user", "term"), True),)


class UpdateLog(Base):
    """Append-only: every applied change, with where it came from (the transparency log's source)."""

    user = pw.ForeignKeyField(User, backref="log", on_delete="CASCADE")
    source_module = pw.CharField()
    message_id = pw.CharField(default="")
    key = pw.CharField()
    old = pw.TextField(null=True)
    new = pw.TextField(null=True)
    model_version = pw.CharField(default="")
    outbox_id = pw.IntegerField(unique=True)  # the queued update this row applied (exactly once)
    at = pw.DateTimeField(default=_now)


class ProfileVersion(Base):
    user = pw.ForeignKeyField(User, backref="versions", on_delete="CASCADE")
    version = pw.IntegerField()
    snapshot = pw.TextField()  # JSON of every dimension
    at = pw.DateTimeField(default=_now)


class ModuleRun(Base):
    module = pw.CharField()
    status = pw.CharField()
    latency_ms = pw.FloatField()
    model_version = pw.CharField(default="")
    user_id = pw.CharField(default="")  # added by migration 1
    at = pw.DateTimeField(default=_now)

    class Meta:
        table_name = "modulerun"


class _ModuleRunV0(Base):
    """``modulerun`` as first shipped; a fresh database starts here and migrates forward like an old one."""

    module = pw.CharField()
    status = pw.CharField()
    latency_ms = pw.FloatField()
    model_version = pw.CharField(default="")
    at = pw.DateTimeField(default=_now)

    class Meta:
        table_name = "modulerun"


class Alert(Base):
    user = pw.ForeignKeyField(User, backref="alerts", null=True, on_delete="CASCADE")
    kind = pw.CharField()
    severity = pw.CharField()
    detail = pw.TextField()
    at = pw.DateTimeField(default=_now)


class Outbox(Base):
    """Queued updates, persisted before ``queue_update`` returns; ``applied`` flips in the same
    transaction that applies the update, so a crash leaves each update either fully applied or pending."""

    id = pw.AutoField()  # queue order
    idempotency_key = pw.CharField(unique=True)
    source = pw.CharField()
    user_id = pw.CharField()
    payload = pw.TextField()  # JSON
    queued = pw.DateTimeField(default=_now)
    applied = pw.BooleanField(default=False, index=True)


class SchemaVersion(Base):
    version = pw.IntegerField(primary_key=True)
    at = pw.DateTimeField(default=_now)


TABLES = [User, ProfileDimension, SlangTerm, UpdateLog, ProfileVersion, ModuleRun, Alert, Outbox, SchemaVersion]

Migration = Callable[[SchemaMigrator], list[object]]
MIGRATIONS: list[Migration] = [
    # 1: module runs record which user they served (added after the first schema shipped)
    lambda m: [m.add_column("modulerun", "user_id", pw.CharField(default=""))],
]


def default_sqlite_path() -> Path:
    """``$PENNY_DATA_DIR`` or ``$XDG_DATA_HOME/penny`` (``~/.local/share/penny``): one per OS user."""
    base = os.environ.get("PENNY_DATA_DIR") or Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "penny"
    return Path(base) / "personality.db"


def connect(url: str | None = None, sqlite_path: Path | None = None) -> pw.Database:
    """Open (and migrate) the database: ``url`` or ``$PENNY_DB_URL`` (postgresql://...), else SQLite in WAL mode."""
    url = url or os.environ.get("PENNY_DB_URL")
    if url:
        from playhouse.db_url import connect as connect_url

        db: pw.Database = connect_url(url)
    else:
        path = sqlite_path or default_sqlite_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = pw.SqliteDatabase(str(path), check_same_thread=False, timeout=30, pragmas={
            "journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1, "busy_timeout": 30000})
    database.initialize(db)
    db.connect(reuse_if_open=True)
    _migrate(db)
    return db


def _migrate(db: pw.Database) -> None:
    with db.atomic():
        if not db.table_exists("user"):
            db.create_tables([t if t is not ModuleRun else _ModuleRunV0 for t in TABLES])
        db.create_tables([SchemaVersion], safe=True)  # databases from before versioning lack it
        done = {v.version for v in SchemaVersion.select()}
        migrator = SchemaMigrator.from_database(db)
        for number, step in enumerate(MIGRATIONS, start=1):
            if number not in done:
                migrate(*step(migrator))
                SchemaVersion.create(version=number)
