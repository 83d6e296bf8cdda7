"""The tuning database: every measured trial, in SQLite, keyed by workload and target.

Rows are keyed by the canonical workload (canonical equation, shapes, dtype), the target
(LLVM triple, CPU name, features, thread count) and the tcc version; a record is applied
only where all three match. Writers use WAL mode, a busy timeout and one short transaction
per trial, so several tuning processes can share one file and lose nothing.

Schema changes bump ``SCHEMA_VERSION``; a file from a newer tcc is refused with a clear
error, an older one is migrated by the steps in ``_MIGRATIONS``.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from tcc.errors import TccError

SCHEMA_VERSION = 1
DB_FILENAME = "tuning.db"
log = logging.getLogger("tcc.tune")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workload TEXT NOT NULL,
    target TEXT NOT NULL,
    tcc_version TEXT NOT NULL,
    params TEXT NOT NULL,
    gflops REAL,
    seconds REAL,
    status TEXT NOT NULL,
    error TEXT,
    created REAL NOT NULL,
    run_id TEXT,
    strategy TEXT
);
CREATE INDEX IF NOT EXISTS trials_key ON trials (workload, target, tcc_version);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workload TEXT NOT NULL,
    target TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""

# from version v to v + 1: SQL statements (none yet: version 1 is the first)
_MIGRATIONS: dict[int, tuple[str, ...]] = {}


class TuningDatabaseError(TccError):
    """The tuning database cannot be used (a newer schema, a corrupt file, ...)."""


@dataclass(frozen=True, slots=True)
class Trial:
    """One measured candidate."""

    workload: str
    target: str
    tcc_version: str
    params: str  # canonical JSON of the config
    gflops: float | None
    seconds: float | None
    status: str  # "ok" or a failure kind: compile, runtime, crash, timeout, wrong
    error: str | None = None
    created: float = 0.0
    run_id: str | None = None
    strategy: str | None = None

    @property
    def config(self) -> dict:
        return json.loads(self.params)


_COLUMNS = tuple(Trial.__dataclass_fields__)


def default_db_path() -> str:
    from tcc.options import default_options

    return str(Path(default_options().cache_dir) / DB_FILENAME)


def target_key(triple: str, cpu: str, features: str, threads: int) -> str:
    return json.dumps({"triple": triple, "cpu": cpu, "features": features,
                       "threads": int(threads)}, sort_keys=True, separators=(",", ":"))


def host_target_key(threads: int) -> str:
    from tcc.runtime.jit import host_target

    target = host_target()
    return target_key(target.triple, target.cpu, target.features, threads)


def tcc_version() -> str:
    from tcc.runtime.jit import TCC_VERSION

    return TCC_VERSION


class Database:
    """One SQLite file of tuning records. Cheap to open; every write is one transaction."""

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 60.0):
        self.path = str(path) if path is not None else default_db_path()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(self.path, timeout=timeout,
                                              isolation_level=None, check_same_thread=False)
            self.connection.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.connection.execute("PRAGMA journal_mode = WAL")
            self._ensure_schema()
        except sqlite3.DatabaseError as exc:
            raise TuningDatabaseError(f"cannot use tuning database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def _current(self) -> bool:
        """The file already has this schema version (no write needed to open it)."""
        try:
            row = self.connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:  # no meta table yet
            return False
        return row is not None and int(row[0]) == SCHEMA_VERSION

    def _ensure_schema(self) -> None:
        if self._current():
            return
        with self._write() as db:
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else None
            if version is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return
            if version > SCHEMA_VERSION:
                raise TuningDatabaseError(
                    f"tuning database {self.path} has schema version {version}, newer than "
                    f"this tcc understands ({SCHEMA_VERSION}); use a newer tcc or another --db"
                )
            while version < SCHEMA_VERSION:
                if version not in _MIGRATIONS:
                    raise TuningDatabaseError(
                        f"tuning database {self.path}: no migration from schema version "
                        f"{version}; move the file away to start afresh"
                    )
                for statement in _MIGRATIONS[version]:
                    db.execute(statement)
                version += 1
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                           (str(version),))

    @property
    def schema_version(self) -> int:
        row = self.connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    # -- trials ------------------------------------------------------------------------
    def add(self, trial: Trial) -> None:
        if not trial.created:
            trial = Trial(**{**asdict(trial), "created": time.time()})
        with self._write() as db:
            db.execute(f"INSERT INTO trials ({', '.join(_COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                       tuple(getattr(trial, c) for c in _COLUMNS))

    def trials(self, workload: str | None = None, target: str | None = None,
               version: str | None = None) -> list[Trial]:
        where, args = [], []
        for column, value in (("workload", workload), ("target", target),
                              ("tcc_version", version)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM trials"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.connection.execute(sql + " ORDER BY id", args).fetchall()
        return [Trial(*row) for row in rows]

    def best(self, workload: str, target: str, version: str | None = None) -> Trial | None:
        """The fastest correct config for exactly this workload, target and tcc version.

        Where the tuner re-measured its finalists beside the default (trials of strategy
        ``confirm``), only those measurements rank: the search's best is the luckiest of
        many noisy samples, and its own number would overstate it (the winner's curse).
        Otherwise a config measured more than once is ranked by its mean. The returned
        trial carries that mean as ``gflops``.
        """
        key = (workload, target, version or tcc_version())
        row = self.connection.execute(
            f"SELECT {', '.join(_COLUMNS)}, AVG(gflops) OVER (PARTITION BY params) AS mean"
            " FROM trials WHERE workload = ? AND target = ? AND tcc_version = ?"
            " AND status = 'ok' AND (strategy IS 'confirm' OR NOT EXISTS ("
            "   SELECT 1 FROM trials WHERE workload = ? AND target = ? AND tcc_version = ?"
            "   AND status = 'ok' AND strategy IS 'confirm'))"
            " ORDER BY mean DESC, id DESC LIMIT 1",
            key + key,
        ).fetchone()
        if row is None:
            return None
        trial = Trial(*row[:-1])
        return Trial(**{**asdict(trial), "gflops": row[-1]})

    def summary(self) -> list[dict]:
        """One row per workload and target: trial counts and the best GFLOP/s."""
        rows = self.connection.execute(
            "SELECT workload, target, tcc_version, COUNT(*), SUM(status = 'ok'), MAX(gflops) "
            "FROM trials GROUP BY workload, target, tcc_version ORDER BY workload"
        ).fetchall()
        out = []
        for workload, target, version, count, ok, best in rows:
            record = self.best(workload, target, version)
            out.append({"workload": workload, "target": json.loads(target),
                        "tcc_version": version, "trials": count, "ok": ok or 0,
                        "best_gflops": best, "best_params": record.config if record else None})
        return out

    def distill(self) -> int:
        """Keep only the trials of the best config (by mean) per workload + target +
        version; return the number of rows removed."""
        groups = self.connection.execute(
            "SELECT DISTINCT workload, target, tcc_version FROM trials").fetchall()
        removed = 0
        with self._write() as db:
            for workload, target, version in groups:
                best = self.best(workload, target, version)
                removed += db.execute(
                    "DELETE FROM trials WHERE workload = ? AND target = ? AND tcc_version = ?"
                    " AND NOT (status = 'ok' AND params IS ?)",
                    (workload, target, version, best.params if best else None)).rowcount
            db.execute("DELETE FROM runs")
        return removed

    # -- runs (for resuming) -----------------------------------------------------------
    def start_run(self, run_id: str, workload: str, target: str, spec: dict) -> None:
        now = time.time()
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, 'running', ?, ?)",
                       (run_id, workload, target, json.dumps(spec), now, now))

    def finish_run(self, run_id: str, state: str) -> None:
        with self._write() as db:
            db.execute("UPDATE runs SET state = ?, updated = ? WHERE run_id = ?",
                       (state, time.time(), run_id))

    def supersede_runs(self, workload: str, target: str) -> None:
        """Mark earlier unfinished runs of this workload and target as resumed."""
        with self._write() as db:
            db.execute("UPDATE runs SET state = 'resumed', updated = ? WHERE workload = ? "
                       "AND target = ? AND state NOT IN ('done', 'resumed')",
                       (time.time(), workload, target))

    def last_unfinished_run(self) -> dict | None:
        """The spec of the latest run that did not finish (interrupted or killed)."""
        row = self.connection.execute(
            "SELECT run_id, spec FROM runs WHERE state NOT IN ('done', 'resumed') "
            "ORDER BY updated DESC LIMIT 1"
        ).fetchone()
        return {"run_id": row[0], **json.loads(row[1])} if row else None

    # -- exchange ----------------------------------------------------------------------
    def export_records(self, path: str | os.PathLike) -> int:
        trials = self.trials()
        document = {"format": "tcc-tuning-records", "schema_version": SCHEMA_VERSION,
                    "trials": [asdict(t) for t in trials]}
        Path(path).write_text(json.dumps(document, indent=1))
        return len(trials)

    def import_records(self, path: str | os.PathLike) -> int:
        """Add the trials of an exported file; ones already here are skipped. Returns the
        number added."""
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise TuningDatabaseError(f"cannot read records from {path}: {exc}") from exc
        if not isinstance(document, dict) or document.get("format") != "tcc-tuning-records":
            raise TuningDatabaseError(f"{path} is not a tcc tuning-records file")
        if int(document.get("schema_version", 0)) > SCHEMA_VERSION:
            raise TuningDatabaseError(
                f"{path} has records of schema version {document['schema_version']}, newer "
                f"than this tcc understands ({SCHEMA_VERSION})")
        trials = [Trial(**{c: t.get(c) for c in _COLUMNS}) for t in document["trials"]]
        added = 0
        with self._write() as db:
            for trial in trials:
                exists = db.execute(
                    "SELECT 1 FROM trials WHERE workload = ? AND target = ? AND tcc_version = ?"
                    " AND params = ? AND created = ? AND status = ?",
                    (trial.workload, trial.target, trial.tcc_version, trial.params,
                     trial.created, trial.status)).fetchone()
                if not exists:
                    db.execute(f"INSERT INTO trials ({', '.join(_COLUMNS)}) "
                               f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                               tuple(getattr(trial, c) for c in _COLUMNS))
                    added += 1
        return added


def export_records(path: str | os.PathLike, db: str | os.PathLike | None = None) -> int:
    with Database(db) as database:
        return database.export_records(path)


def import_records(path: str | os.PathLike, db: str | os.PathLike | None = None) -> int:
    with Database(db) as database:
        return database.import_records(path)


def distill(db: str | os.PathLike | None = None) -> int:
    with Database(db) as database:
        return database.distill()


def lookup(
    equation: str, shapes: Sequence[Sequence[int]], dtypes: Sequence[object], threads: int,
    db: str | os.PathLike | None = None, target: str | None = None,
) -> dict | None:
    """The best stored config for this workload on this machine (or ``target``, a target
    key such as a GPU's), or None.

    Never creates a database and never fails a compile: a missing or unusable file means
    no record (logged at DEBUG).
    """
    path = str(db) if db is not None else default_db_path()
    if not os.path.exists(path):
        return None
    try:
        from tcc.tune.space import workload_key

        key = workload_key(equation, shapes, [str(d) for d in dtypes])
        with Database(path, timeout=5.0) as database:
            record = database.best(key, target or host_target_key(threads))
    except (TccError, sqlite3.Error, OSError) as exc:
        log.debug("tuning lookup in %s failed: %s", path, exc)
        return None
    return record.config if record else None
