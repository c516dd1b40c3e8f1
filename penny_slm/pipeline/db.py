"""The personality database (peewee): SQLite in WAL mode by default, PostgreSQL by URL.

Only ``sync.ContextSyncManager`` writes here. Tables: users, profile dimensions, slang lexicon, an
append-only update log with provenance and what a learning control did (the transparency log), profile
versions (snapshots), module runs, alerts, dead letters (updates the writer could not apply, with the
reason), the approval queue (``pendingchange``: changes waiting for a person, or deferred by a rate
limit), the control state (the kill switch, with its history), the drift monitor's window of recent turns
(``driftturn``) and per-user baseline (``driftprofile``), and the outbox that makes queued updates
durable before they are acknowledged. Schema changes are numbered migrations run with peewee's
migrator; ``schema_version`` records which have been applied.

Each :class:`PersonalityDB` owns its database and its own model classes: two layers (or two sync
managers) on two databases in one process never see each other's rows. Nothing here is a global.

Deleted rows leave no text behind on SQLite: every connection runs with ``secure_delete`` on (freed
pages are overwritten with zeros), and ``controls.delete`` also vacuums and truncates the WAL.
PostgreSQL connections use UTC for timestamps.

Durability (SQLite): WAL with ``synchronous=NORMAL`` (the default) keeps every acknowledged update
when the *process* is killed, but the last transactions can be lost on a power cut or OS crash;
``runtime.database_synchronous = "full"`` survives those too, at a few ms per commit. PostgreSQL
commits are durable with its defaults (``synchronous_commit = on``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import peewee as pw
from playhouse.migrate import SchemaMigrator, migrate

from penny_slm.config import data_dir
from penny_slm.errors import ConfigError, MissingDependencyError

Synchronous = Literal["normal", "full"]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC: the one clock every stored timestamp uses."""
    return datetime.now(UTC)


class PersonalityDB:
    """One database and the model classes bound to it (defined per instance, see the module docstring)."""

    def __init__(self, database: pw.Database) -> None:
        self.database = database
        self.is_sqlite = isinstance(database, pw.SqliteDatabase)

        class Base(pw.Model):
            class Meta:
                database = self.database

        class User(Base):
            user_id = pw.CharField(primary_key=True)
            created = pw.DateTimeField(default=utcnow)

        class ProfileDimension(Base):
            """One learned trait (formality, technical_depth, mood ...): current value and how sure we are."""

            user = pw.ForeignKeyField(User, backref="dimensions", on_delete="CASCADE")
            key = pw.CharField()
            value = pw.TextField()  # JSON
            confidence = pw.FloatField(default=0.0)
            evidence_count = pw.IntegerField(default=0)
            updated = pw.DateTimeField(default=utcnow)

            class Meta:
                indexes = ((("user", "key"), True),)

        class SlangTermV0(Base):
            """``slangterm`` as first shipped (likewise ``UpdateLogV0``, ``ProfileVersionV0``): a fresh database starts
            from the first schema and migrates forward like an old one."""

            user = pw.ForeignKeyField(User, backref="+", on_delete="CASCADE")
            term = pw.CharField()
            gloss = pw.TextField(default="")
            first_seen = pw.DateTimeField(default=utcnow)
            count = pw.IntegerField(default=1)
            example = pw.TextField(default="")

            class Meta:
                table_name = "slangterm"
                indexes = ((("user", "term"), True),)

        class SlangTerm(SlangTermV0):
            user = pw.ForeignKeyField(User, backref="slang", on_delete="CASCADE")
            adopted = pw.BooleanField(default=False)  # approved for Penny's own voice (migration 4)

            class Meta:
                table_name = "slangterm"

        class UpdateLogV0(Base):
            id = pw.AutoField()
            user = pw.ForeignKeyField(User, backref="+", on_delete="CASCADE")
            source_module = pw.CharField()
            message_id = pw.CharField(default="")
            key = pw.CharField()
            old = pw.TextField(null=True)
            new = pw.TextField(null=True)
            model_version = pw.CharField(default="")
            outbox_id = pw.IntegerField(unique=True)  # the queued update this row handled (exactly once)
            at = pw.DateTimeField(default=utcnow)

            class Meta:
                table_name = "updatelog"

        class UpdateLog(UpdateLogV0):
            """Append-only transparency log: every change the writer handled, where it came from, and what a
            control did to it (``action``: applied, clipped, deferred, awaiting_approval, approved, rejected,
            expired, blocked, rollback, version; columns added by migration 3). ``old``/``new`` are JSON; for
            an action that applied nothing, ``new`` is what was asked for."""

            user = pw.ForeignKeyField(User, backref="log", on_delete="CASCADE")
            action = pw.CharField(default="applied")
            detail = pw.TextField(default="")
            evidence = pw.TextField(default="")  # an excerpt of the message, or only its hash (learning.log_message_text)

            class Meta:
                table_name = "updatelog"

        class ProfileVersionV0(Base):
            user = pw.ForeignKeyField(User, backref="+", on_delete="CASCADE")
            version = pw.IntegerField()
            snapshot = pw.TextField()  # JSON: {"dimensions", "confidence", "slang"} (first schema: the dimensions alone)
            at = pw.DateTimeField(default=utcnow)

            class Meta:
                table_name = "profileversion"

        class ProfileVersion(ProfileVersionV0):
            user = pw.ForeignKeyField(User, backref="versions", on_delete="CASCADE")
            note = pw.TextField(default="")  # what made it: a batch of updates, an approval, a rollback (migration 4)

            class Meta:
                table_name = "profileversion"

        class ModuleRun(Base):
            id = pw.AutoField()
            module = pw.CharField()
            status = pw.CharField()
            latency_ms = pw.FloatField()
            model_version = pw.CharField(default="")
            user_id = pw.CharField(default="")  # added by migration 1
            at = pw.DateTimeField(default=utcnow)

            class Meta:
                table_name = "modulerun"

        class ModuleRunV0(Base):
            """``modulerun`` as first shipped; a fresh database starts here and migrates forward like an old one."""

            module = pw.CharField()
            status = pw.CharField()
            latency_ms = pw.FloatField()
            model_version = pw.CharField(default="")
            at = pw.DateTimeField(default=utcnow)

            class Meta:
                table_name = "modulerun"

        class AlertV0(Base):
            """``alert`` as first shipped; a fresh database starts here and migrates forward like an old one."""

            id = pw.AutoField()
            user = pw.ForeignKeyField(User, backref="alerts_v0", null=True, on_delete="CASCADE")
            kind = pw.CharField()
            severity = pw.CharField()
            detail = pw.TextField()
            at = pw.DateTimeField(default=utcnow)

            class Meta:
                table_name = "alert"

        class Alert(Base):
            id = pw.AutoField()
            user = pw.ForeignKeyField(User, backref="alerts", null=True, on_delete="CASCADE")
            kind = pw.CharField()
            severity = pw.CharField()
            detail = pw.TextField()
            at = pw.DateTimeField(default=utcnow)
            acknowledged = pw.DateTimeField(null=True)  # added by migration 6: when a person acknowledged it

        class DriftTurnV0(Base):
            """``driftturn`` as migration 6 made it; migration 7 adds ``turn``."""

            id = pw.AutoField()
            user = pw.ForeignKeyField(User, backref="+", on_delete="CASCADE")
            message = pw.TextField()
            response = pw.TextField()
            at = pw.DateTimeField(default=utcnow)

            class Meta:
                table_name = "driftturn"

        class DriftTurn(DriftTurnV0):
            """The drift monitor's window (migration 6): a user's recent turns (message and the main LLM's response
            before the guard), bounded by ``history_turns`` per user and ``retention_days.drift_turns``. ``turn``
            (migration 7): the user's turn number, counted by the writer, so "since turn N" survives a restart."""

            user = pw.ForeignKeyField(User, backref="drift_turns", on_delete="CASCADE")
            user_id: str  # the foreign key's raw value (peewee's descriptor), declared for type checkers
            turn = pw.IntegerField(default=0)

            class Meta:
                table_name = "driftturn"

        class DriftProfile(Base):
            """What the drift monitor keeps per user beyond the window (migration 7): the persona baseline built from
            the user's first turns (JSON of ``drift.Baseline``; null until built), what scored its cheer signal
            (``scorer``: the tone model's version, or ``lexical``), and how many of the user's turns a check has
            judged (``checked``), so turns stored but never checked (a restart between checks) are judged later.
            Pruned with the window (``retention_days.drift_turns``, by ``at``)."""

            user = pw.ForeignKeyField(User, primary_key=True, backref="drift_profile", on_delete="CASCADE")
            baseline = pw.TextField(null=True)
            scorer = pw.CharField(default="")
            checked = pw.IntegerField(default=0)
            at = pw.DateTimeField(default=utcnow)

        class Outbox(Base):
            """Queued updates, persisted before ``queue_update`` returns; ``applied`` flips in the same
            transaction that applies the update (or dead-letters it), so a crash leaves each update
            either fully handled or pending."""

            id = pw.AutoField()  # queue order
            idempotency_key = pw.CharField(unique=True)
            source = pw.CharField()
            user_id = pw.CharField()
            payload = pw.TextField()  # JSON
            queued = pw.DateTimeField(default=utcnow)
            applied = pw.BooleanField(default=False, index=True)

        class DeadLetter(Base):
            """An acknowledged update the writer could not apply (added by migration 2): kept with the reason,
            never retried by itself, never blocking the updates queued after it."""

            id = pw.AutoField()
            outbox_id = pw.IntegerField(unique=True)
            source = pw.CharField()
            user_id = pw.CharField()
            payload = pw.TextField()
            reason = pw.TextField()
            at = pw.DateTimeField(default=utcnow)

        class PendingChange(Base):
            """The approval queue (migration 5): a change that waits for a person (``awaiting_approval``, until
            ``expires``) or for a rate limit's window (``deferred``, until ``not_before``). Nothing here is applied
            until it is approved or released; then ``state`` records how it ended (approved, rejected, expired,
            released, superseded) and ``decided_outbox_id`` which queued decision ended it."""

            id = pw.AutoField()
            user = pw.ForeignKeyField(User, backref="pending", on_delete="CASCADE")
            user_id: str  # the foreign key's raw value (peewee's descriptor), declared for type checkers
            kind = pw.CharField()  # dimension | slang
            key = pw.CharField()
            old = pw.TextField(null=True)  # JSON, the stored value when it was queued
            new = pw.TextField(null=True)  # JSON, the value asked for
            payload = pw.TextField()  # the queued update (JSON)
            source = pw.CharField()
            state = pw.CharField(index=True)
            reason = pw.TextField()
            created = pw.DateTimeField()
            expires = pw.DateTimeField(null=True)
            not_before = pw.DateTimeField(null=True)
            decided = pw.DateTimeField(null=True)
            decided_outbox_id = pw.IntegerField(null=True)

        class ControlState(Base):
            """Append-only history of the global controls (migration 5); the latest row per ``setting`` is in force.
            ``kill_switch``: JSON true/false, set by ``penny-slm kill`` / ``resume``; it survives restarts."""

            id = pw.AutoField()
            setting = pw.CharField(index=True)
            value = pw.TextField()
            reason = pw.TextField(default="")
            at = pw.DateTimeField(default=utcnow)

        class SchemaVersion(Base):
            version = pw.IntegerField(primary_key=True)
            at = pw.DateTimeField(default=utcnow)

        self.User, self.ProfileDimension, self.SlangTerm, self.UpdateLog = User, ProfileDimension, SlangTerm, UpdateLog
        self.ProfileVersion, self.ModuleRun, self.Alert, self.Outbox = ProfileVersion, ModuleRun, Alert, Outbox
        self.DeadLetter, self.SchemaVersion = DeadLetter, SchemaVersion
        self.PendingChange, self.ControlState = PendingChange, ControlState
        self.DriftTurnV0, self.DriftTurn, self.DriftProfile = DriftTurnV0, DriftTurn, DriftProfile
        self.first_schema: list[type[pw.Model]] = [User, ProfileDimension, SlangTermV0, UpdateLogV0, ProfileVersionV0,
                                                    ModuleRunV0, AlertV0, Outbox]
        """The tables as first shipped; ``migrate`` builds every database from here, so old and new ones converge."""

    def write_transaction(self) -> Any:
        """A transaction that takes SQLite's write lock when it starts (``BEGIN IMMEDIATE``): a deferred one
        that reads, then writes, cannot upgrade its lock once another writer committed ("database is locked")."""
        return self.database.atomic(lock_type="IMMEDIATE") if self.is_sqlite else self.database.atomic()

    def writer_transaction(self) -> Any:
        """The queue writer's transaction: as :meth:`write_transaction`, plus on PostgreSQL a transaction-scoped
        advisory lock, so writers in several processes apply the queue one update at a time, in order."""
        return self.write_transaction() if self.is_sqlite else _PgWriteLock(self.database)

    def migrate(self) -> None:
        """Create the schema or bring an older database up to date, each migration once, in one transaction."""
        with self.database.atomic():
            if not self.database.table_exists("user"):
                self.database.create_tables(self.first_schema)
            self.database.create_tables([self.SchemaVersion], safe=True)  # databases from before versioning lack it
            done = {v.version for v in self.SchemaVersion.select()}
            migrator = SchemaMigrator.from_database(self.database)
            for number, step in enumerate(MIGRATIONS, start=1):
                if number not in done:
                    step(self, migrator)
                    self.SchemaVersion.create(version=number)

    def scrub(self, tables: list[str]) -> tuple[bool, bool | None]:
        """Leave no copy of deleted rows in the database's files: (vacuumed, WAL truncated or None).

        SQLite: ``VACUUM`` rebuilds the file from live rows only, then a ``TRUNCATE`` checkpoint copies the WAL
        into it and empties the WAL (False if a reader kept it from completing). PostgreSQL: ``VACUUM (FULL,
        ANALYZE)`` rewrites each of ``tables`` (they are locked meanwhile) and refreshes their statistics, which may
        hold sampled values; its WAL and backups are not scrubbed (see ``controls.POSTGRES_NOTE``)."""
        if self.is_sqlite:
            self.database.execute_sql("VACUUM")
            busy = self.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            return True, busy == 0
        for table in tables:
            self.database.execute_sql(f'VACUUM (FULL, ANALYZE) "{table}"')
        return bool(tables), None

    def close(self) -> None:
        """Close the connection if it is open (safe to call twice)."""
        if not self.database.is_closed():
            self.database.close()


WRITER_LOCK_KEY = 0x70656E6E79  # "penny": the advisory lock every PostgreSQL writer takes per transaction


class _PgWriteLock:
    def __init__(self, database: pw.Database) -> None:
        self._atomic = database.atomic()
        self._database = database

    def __enter__(self) -> Any:
        tx = self._atomic.__enter__()
        self._database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))
        return tx

    def __exit__(self, *exc: Any) -> Any:
        return self._atomic.__exit__(*exc)


Migration = Callable[[PersonalityDB, SchemaMigrator], None]


def _drift_window(store: PersonalityDB, m: SchemaMigrator) -> None:
    store.database.create_tables([store.DriftTurnV0])
    migrate(m.add_column("alert", "acknowledged", pw.DateTimeField(null=True)))


def _drift_profile(store: PersonalityDB, m: SchemaMigrator) -> None:
    """Number the stored turns per user in their order, and count them all as judged (the monitor before this
    migration checked what it stored, bar the last few turns of a run: they are not re-judged, as before)."""
    migrate(m.add_column("driftturn", "turn", pw.IntegerField(default=0)))
    store.database.create_tables([store.DriftProfile])
    t = store.DriftTurn
    by_user: dict[str, list[int]] = {}
    for row in t.select(t.id, t.user).order_by(t.id):
        by_user.setdefault(row.user_id, []).append(row.id)
    for user_id, ids in by_user.items():
        for n, row_id in enumerate(ids):
            t.update(turn=n).where(t.id == row_id).execute()
        store.DriftProfile.create(user=user_id, checked=len(ids))
MIGRATIONS: list[Migration] = [
    # 1: module runs record which user they served (added after the first schema shipped)
    lambda store, m: migrate(m.add_column("modulerun", "user_id", pw.CharField(default=""))),
    # 2: dead letters: updates the writer could not apply no longer stop it
    lambda store, m: store.database.create_tables([store.DeadLetter]),
    # 3: the transparency log says what a control did (action, detail) and from which message (evidence);
    #    the rate limits read it by user, key and time
    lambda store, m: migrate(m.add_column("updatelog", "action", pw.CharField(default="applied")),
                             m.add_column("updatelog", "detail", pw.TextField(default="")),
                             m.add_column("updatelog", "evidence", pw.TextField(default="")),
                             m.add_index("updatelog", ("user_id", "key", "at"), False)),
    # 4: slang adopted into Penny's own voice; what made each profile version
    lambda store, m: migrate(m.add_column("slangterm", "adopted", pw.BooleanField(default=False)),
                             m.add_column("profileversion", "note", pw.TextField(default=""))),
    # 5: the approval queue and the control state (kill switch)
    lambda store, m: store.database.create_tables([store.PendingChange, store.ControlState]),
    # 6: the drift monitor's window of recent turns; alerts can be acknowledged
    lambda store, m: _drift_window(store, m),
    # 7: the drift monitor's per-user baseline and judged-turn count; stored turns carry the user's turn number
    lambda store, m: _drift_profile(store, m),
]


def default_sqlite_path() -> Path:
    """``personality.db`` in the data folder (``$PENNY_DATA_DIR``, else ``$XDG_DATA_HOME/penny``): one per OS user."""
    return data_dir() / "personality.db"


def connect(url: str | None = None, sqlite_path: Path | None = None, *, synchronous: Synchronous = "normal") -> PersonalityDB:
    """Open (and migrate) a database of its own: ``url`` or ``$PENNY_DB_URL`` (postgresql://...), else SQLite in WAL mode."""
    url = url or os.environ.get("PENNY_DB_URL")
    if synchronous not in ("normal", "full"):
        raise ConfigError("runtime -> database_synchronous", f"{synchronous!r} must be 'normal' or 'full'")
    if not url:
        return open_sqlite(sqlite_path or default_sqlite_path(), synchronous=synchronous)
    from playhouse.db_url import connect as connect_url

    options: dict[str, Any] = {}
    if url.startswith(("postgres://", "postgresql://")):
        try:
            import psycopg2  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("PostgreSQL needs psycopg2; install it with: pip install -e '.[postgres]'") from exc
        options["options"] = "-c TimeZone=UTC"  # timestamps are stored and read back as UTC whatever the server's zone
    return _open(connect_url(url, **options))


def open_sqlite(path: Path, *, synchronous: Synchronous = "normal") -> PersonalityDB:
    """Open (and migrate) the SQLite file at ``path`` (WAL mode, ``secure_delete`` on), whatever ``$PENNY_DB_URL`` says."""
    if synchronous not in ("normal", "full"):
        raise ConfigError("runtime -> database_synchronous", f"{synchronous!r} must be 'normal' or 'full'")
    path.parent.mkdir(parents=True, exist_ok=True)
    return _open(pw.SqliteDatabase(str(path), check_same_thread=False, timeout=30, pragmas={
        "journal_mode": "wal", "synchronous": synchronous, "foreign_keys": 1, "busy_timeout": 30000, "secure_delete": 1}))


def _open(database: pw.Database) -> PersonalityDB:
    store = PersonalityDB(database)
    database.connect(reuse_if_open=True)
    store.migrate()
    return store
