"""The tuning database: schema, concurrent writers, export/import, distill."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tcc.tune import Database, TuningDatabaseError
from tcc.tune.database import SCHEMA_VERSION, Trial, target_key

TARGET = target_key("x86_64-unknown-linux-gnu", "testcpu", "+avx", 2)


def trial(workload: str, gflops: float | None, status: str = "ok", mr: int = 4) -> Trial:
    return Trial(workload, TARGET, "0.1.0", json.dumps({"mr": mr}), gflops, 1.0, status)


def test_schema_version_and_refusing_newer(tmp_path):
    path = tmp_path / "t.db"
    with Database(path) as db:
        assert db.schema_version == SCHEMA_VERSION
    connection = sqlite3.connect(path)
    connection.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()
    with pytest.raises(TuningDatabaseError, match="newer"):
        Database(path)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "t.db")
    Database(path).close()
    script = (
        "import sys, json\n"
        "from tcc.tune.database import Database, Trial\n"
        "db = Database(sys.argv[1])\n"
        "for k in range(150):\n"
        "    db.add(Trial(sys.argv[2], 't', 'v', json.dumps({'k': k}), float(k), 1.0, 'ok'))\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, path, f"w{n}"]) for n in range(2)]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    with Database(path) as db:
        assert len(db.trials("w0")) == 150 and len(db.trials("w1")) == 150


def test_export_import_round_trip(tmp_path):
    with Database(tmp_path / "a.db") as db:
        for k, gflops in enumerate((1.0, 3.0, None)):
            db.add(trial("w", gflops, "ok" if gflops else "crash", mr=k + 4))
        assert db.export_records(tmp_path / "r.json") == 3
        original = db.trials()
    with Database(tmp_path / "b.db") as db:
        assert db.import_records(tmp_path / "r.json") == 3
        assert db.import_records(tmp_path / "r.json") == 0  # nothing twice
        copied = db.trials()
    strip = [(t.workload, t.target, t.params, t.gflops, t.status, t.created) for t in original]
    assert strip == [(t.workload, t.target, t.params, t.gflops, t.status, t.created)
                     for t in copied]
    (tmp_path / "bad.json").write_text("{}")
    with Database(tmp_path / "b.db") as db, pytest.raises(TuningDatabaseError):
        db.import_records(tmp_path / "bad.json")


def test_distill_keeps_the_best_per_workload(tmp_path):
    with Database(tmp_path / "t.db") as db:
        for workload in ("w1", "w2"):
            for k, gflops in enumerate((2.0, 7.0, 5.0)):
                db.add(trial(workload, gflops, mr=k + 4))
            db.add(trial(workload, None, "wrong"))
        db.add(trial("w3", None, "crash"))  # no success: nothing worth keeping
        assert db.distill() == 7
        kept = db.trials()
    assert [(t.workload, t.gflops) for t in kept] == [("w1", 7.0), ("w2", 7.0)]


def test_best_ranks_by_the_confirming_measurements(tmp_path):
    # the search saw config mr=8 once at 300 (a lucky sample); the final re-measurements
    # beside the default put it below the default: the default must win
    def confirm(gflops: float, mr: int | None) -> Trial:
        params = "{}" if mr is None else json.dumps({"mr": mr})
        return Trial("w", TARGET, "0.1.0", params, gflops, 1.0, "ok", strategy="confirm")

    with Database(tmp_path / "t.db") as db:
        db.add(trial("w", 300.0, mr=8))
        db.add(trial("w", 150.0, mr=4))
        for value in (200.0, 210.0, 190.0):
            db.add(confirm(value, None))
            db.add(confirm(value - 20.0, 8))
        best = db.best("w", TARGET, "0.1.0")
        assert best.config == {} and best.gflops == pytest.approx(200.0)
        # without re-measurements, the mean of every measurement ranks
        db.add(trial("v", 300.0, mr=8))
        db.add(trial("v", 100.0, mr=8))
        db.add(trial("v", 250.0, mr=4))
        assert db.best("v", TARGET, "0.1.0").config == {"mr": 4}
