"""The autotuner end to end: tuning, records applied by tcc.compile, resume, faults."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tcc
from tcc.options import Options
from tcc.tune import Database, tune
from tcc.tune.database import host_target_key, lookup, target_key, tcc_version
from tcc.tune.space import Workload
from tcc.tune.tuner import CONFIRM_ROUNDS

EQ = "ik,kj->ij"
SHAPES = ((64, 48), (48, 80))  # above GETT's size threshold, compiles in well under 1 s


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    cache = tmp_path_factory.mktemp("tune-cache")
    options = Options(cache_dir=str(cache), num_threads=2)
    result = tune(EQ, *SHAPES, trials=5, time_budget=60, strategy="random", seed=1,
                  db=str(cache / "tuning.db"), quiet=True, options=options)
    return result, options


def test_tune_end_to_end(tuned):
    result, options = tuned
    assert result.trials == 5 and result.stopped == "trial budget"
    assert result.best_gflops > 0 and result.default_gflops > 0
    assert not result.failures
    assert "GFLOP/s" in str(result) and "speedup" in str(result)
    with Database(result.db_path) as db:
        trials = db.trials()
    # the default, five candidates, then the default and the top three in each confirm round
    assert len(trials) == 6 + 4 * CONFIRM_ROUNDS
    assert {t.status for t in trials} == {"ok"}
    assert sum(t.params == "{}" for t in trials) == 1 + CONFIRM_ROUNDS


def test_compile_applies_the_best_record(tuned):
    result, options = tuned
    kernel = tcc.compile(EQ, *SHAPES, dtype="float32", options=options)
    if "mr" in result.best_config:
        assert kernel.options.gett_params.to_json() == result.best_config
    a, b = (np.random.default_rng(0).standard_normal(s).astype(np.float32) for s in SHAPES)
    np.testing.assert_allclose(kernel(a, b), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_compile_with_tuning_false_ignores_records(tuned):
    _, options = tuned
    kernel = tcc.compile(EQ, *SHAPES, dtype="float32", options=options, tuning=False)
    assert kernel.options.gett_params is None and kernel.options.gett == "auto"


def test_explicit_params_win_over_records(tuned):
    from tcc.passes.schedule.blocking import GettParams

    _, options = tuned
    params = GettParams(mr=4, nr=16, kc=32, mc=16, nc=32, lanes=16, threads=1)
    kernel = tcc.compile(EQ, *SHAPES, dtype="float32", options=options.with_(gett_params=params))
    assert kernel.options.gett_params == params


def test_records_for_another_target_are_ignored(tmp_path):
    path = str(tmp_path / "tuning.db")
    workload = Workload.of(EQ, SHAPES, "float32").canonical
    mine, other = host_target_key(2), target_key("x86_64-unknown-linux-gnu", "other-cpu", "", 2)
    config = {"mr": 4, "nr": 16, "kc": 32, "mc": 16, "nc": 32, "lanes": 16, "threads": 1}
    from tcc.tune.database import Trial

    with Database(path) as db:
        db.add(Trial(workload, other, tcc_version(), json.dumps(config), 1e6, 1e-9, "ok"))
        db.add(Trial(workload, mine, "0.0.0-old", json.dumps(config), 1e6, 1e-9, "ok"))
    assert lookup(EQ, SHAPES, ["float32"] * 2, threads=2, db=path) is None
    assert lookup(EQ, SHAPES, ["float32"] * 2, threads=1, db=path) is None
    with Database(path) as db:
        db.add(Trial(workload, mine, tcc_version(), json.dumps(config), 5.0, 1e-3, "ok"))
    assert lookup(EQ, SHAPES, ["float32"] * 2, threads=2, db=path) == config
    # a renamed but equal einsum shares the record; another dtype does not
    assert lookup("ab,bc->ac", SHAPES, ["float32"] * 2, threads=2, db=path) == config
    assert lookup(EQ, SHAPES, ["float64"] * 2, threads=2, db=path) is None


def test_crashing_wrong_and_hanging_candidates_are_caught(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TCC_TUNE_FAULTS", "1:crash,2:wrong,3:hang")
    options = Options(cache_dir=str(tmp_path), num_threads=2)
    with caplog.at_level("DEBUG", logger="tcc.tune"):
        result = tune(EQ, *SHAPES, trials=5, strategy="random", seed=3, timeout=8,
                      db=str(tmp_path / "tuning.db"), quiet=True, options=options)
    assert result.trials == 5
    assert dict(result.failures) == {"crash": 1, "wrong": 1, "timeout": 1}
    assert "crash 1" in str(result) and "wrong 1" in str(result)
    statuses = [status for number, _, status, _ in sorted(result.history, key=lambda h: h[0])]
    assert statuses == ["ok", "crash", "wrong", "timeout", "ok", "ok"]
    assert result.best_gflops > 0  # tuning went on after the failures
    with Database(result.db_path) as db:
        errors = {t.status: t.error for t in db.trials()}
    assert "differs from the reference" in errors["wrong"]
    assert "worker died" in errors["crash"]
    assert "trial 2" in caplog.text  # failures are logged, not swallowed


def test_interrupt_then_resume(tmp_path, monkeypatch):
    from tcc.tune import tuner

    options = Options(cache_dir=str(tmp_path), num_threads=2)
    db = str(tmp_path / "tuning.db")
    original = tuner._Progress.update

    def interrupt_after_two(self, done, best):
        original(self, done, best)
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(tuner._Progress, "update", interrupt_after_two)
    first = tune(EQ, *SHAPES, trials=4, strategy="evolutionary", seed=5, db=db, quiet=True,
                 options=options)
    assert first.stopped == "interrupted" and first.trials == 2
    monkeypatch.setattr(tuner._Progress, "update", original)
    with Database(db) as database:
        assert database.last_unfinished_run()["equation"] == EQ
    second = tune(EQ, *SHAPES, trials=4, strategy="evolutionary", seed=5, db=db, quiet=True,
                  options=options, resume=True, confirm=0)
    assert second.earlier_trials == 2 and second.trials == 2
    assert second.default_gflops == first.default_gflops  # not measured again
    with Database(db) as database:
        trials = database.trials()
        assert database.last_unfinished_run() is None
    params = [t.params for t in trials]
    assert len(params) == 5 and len(set(params)) == 5  # nothing measured twice


def test_nothing_to_tune(tmp_path):
    options = Options(cache_dir=str(tmp_path), num_threads=1)
    result = tune("ij->i", (8, 8), trials=4, db=str(tmp_path / "t.db"), quiet=True,
                  options=options)
    assert not result.tunable and result.trials == 0
    assert "nothing to tune" in str(result)


def test_plot_needs_matplotlib(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(tcc.TccError, match="matplotlib"):
            tune(EQ, *SHAPES, trials=1, db=str(tmp_path / "t.db"), plot=str(tmp_path / "p.png"))
    else:
        pytest.skip("matplotlib is installed")
