"""``tune``: search a workload's schedules, measure them in isolation, keep every record.

    result = tcc.tune.tune("ik,kj->ij", (1024, 1024), (1024, 1024), trials=64)
    print(result)                     # best GFLOP/s, speedup over the default, failures
    kernel = tcc.compile("ik,kj->ij", (1024, 1024), (1024, 1024), dtype="float32")
                                      # ...now uses the best record (tuning=True)
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from tcc.errors import TccError
from tcc.options import Options, default_options
from tcc.tune.database import Database, Trial, host_target_key, tcc_version
from tcc.tune.measure import Measurement, Measurer
from tcc.tune.search import make_strategy
from tcc.tune.space import Config, SearchSpace, Workload, apply_config, config_key, describe

log = logging.getLogger("tcc.tune")


@dataclass
class TuneResult:
    """What a tuning run found. ``history`` holds (trial, config, status, gflops) of this
    run's candidates in measuring order; trial 0 is the default schedule."""

    workload: Workload
    strategy: str
    seed: int
    db_path: str
    best_config: Config | None = None
    best_gflops: float | None = None
    default_gflops: float | None = None
    trials: int = 0  # candidates measured in this run
    earlier_trials: int = 0  # measured by earlier runs (resume)
    failures: collections.Counter = field(default_factory=collections.Counter)
    history: list[tuple[int, Config, str, float | None]] = field(default_factory=list)
    stopped: str = ""
    elapsed: float = 0.0
    tunable: bool = True

    @property
    def speedup(self) -> float | None:
        if self.best_gflops and self.default_gflops:
            return self.best_gflops / self.default_gflops
        return None

    def best_so_far(self) -> list[float]:
        """Best GFLOP/s after each candidate of this run (the default counts as a start)."""
        best = self.default_gflops or 0.0
        curve = []
        for number, _, status, gflops in self.history:
            if number == 0:
                continue
            if status == "ok" and gflops is not None:
                best = max(best, gflops)
            curve.append(best)
        return curve

    def trials_to_reach(self, fraction: float = 0.95) -> int | None:
        """Candidates measured before the best-so-far reached ``fraction`` of the final best."""
        curve = self.best_so_far()
        if not curve:
            return None
        goal = fraction * curve[-1]
        return next(k + 1 for k, value in enumerate(curve) if value >= goal)

    def options(self, base: Options | None = None) -> Options:
        """``base`` (default: the process defaults) with the best config applied."""
        return apply_config(base or default_options(), self.best_config or {})

    def __str__(self) -> str:
        w = self.workload
        shapes = ", ".join(str(s) for s in w.shapes)
        lines = [f"tcc.tune {w.equation!r} on {shapes} {w.dtype} "
                 f"({self.strategy}, seed {self.seed})"]
        if not self.tunable:
            lines.append("  nothing to tune: no GETT contraction in this workload")
        if self.best_gflops is not None:
            lines.append(f"  best     {self.best_gflops:9.2f} GFLOP/s  "
                         f"{describe(self.best_config or {})}")
        if self.default_gflops is not None:
            speedup = f"   speedup {self.speedup:.2f}x" if self.speedup else ""
            lines.append(f"  default  {self.default_gflops:9.2f} GFLOP/s{speedup}")
        earlier = f" (+{self.earlier_trials} from earlier runs)" if self.earlier_trials else ""
        failed = sum(self.failures.values())
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.failures.items()))
        lines.append(f"  trials   {self.trials}{earlier}, {failed} failed"
                     + (f" ({kinds})" if kinds else ""))
        lines.append(f"  stopped  {self.stopped} after {self.elapsed:.1f} s")
        lines.append(f"  records  {self.db_path}")
        return "\n".join(lines)


class _Progress:
    """``[task i/N] trials n/N | best X GFLOP/s | elapsed`` on stderr."""

    def __init__(self, total: int, task: tuple[int, int], quiet: bool) -> None:
        self.total, self.task, self.quiet = total, task, quiet
        self.started = time.monotonic()
        self.last_plain = 0.0
        self.bar = None
        if quiet:
            return
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]
        except ImportError:
            return
        self.bar = tqdm(total=total, desc=f"[task {task[0]}/{task[1]}]", file=sys.stderr,
                        unit="trial", leave=True)

    def update(self, done: int, best: float | None) -> None:
        if self.quiet:
            return
        best_text = f"{best:.1f} GFLOP/s" if best else "-"
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(f"best {best_text}")
            return
        elapsed = time.monotonic() - self.started
        line = (f"[task {self.task[0]}/{self.task[1]}] trials {done}/{self.total} | "
                f"best {best_text} | {elapsed:.0f} s")
        if sys.stderr.isatty():
            sys.stderr.write("\r" + line.ljust(72))
            sys.stderr.flush()
        elif time.monotonic() - self.last_plain > 5 or done == self.total:
            self.last_plain = time.monotonic()
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.close()
        elif sys.stderr.isatty():
            sys.stderr.write("\n")


def _check_plot_available() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise TccError("plot= needs matplotlib, which is not installed "
                       "(pip install 'tcc[plot]')") from None


def plot_history(result: TuneResult, path: str) -> None:
    """Best-so-far GFLOP/s against trials, as an image at ``path``."""
    _check_plot_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result.best_so_far()
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(range(1, len(curve) + 1), curve, label=f"best so far ({result.strategy})")
    if result.default_gflops:
        axes.axhline(result.default_gflops, linestyle="--", color="gray", label="default")
    axes.set_xlabel("trials")
    axes.set_ylabel("GFLOP/s")
    axes.set_title(result.workload.equation)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def tune(
    equation: str,
    *shapes: Sequence[int],
    dtype: str = "float32",
    trials: int = 256,
    time_budget: float | None = 120.0,
    strategy: str = "evolutionary",
    seed: int = 0,
    db: str | os.PathLike | Database | None = None,
    workers: int | None = None,
    quiet: bool = False,
    early_stop: int | None = None,
    resume: bool = False,
    plot: str | None = None,
    timeout: float | None = None,
    options: Options | None = None,
    task: tuple[int, int] = (1, 1),
    confirm: int = 3,
    target: str = "cpu",
    precision: str = "exact",
) -> TuneResult:
    """Tune the schedule of ``equation`` on operands of ``shapes`` for this machine.

    Candidates compile and run in ``workers`` isolated processes (default 1: timings on a
    small machine are cleaner with one); every trial is written to the database (``db``,
    default ``tuning.db`` in the cache folder) as it finishes, so Ctrl-C keeps what was
    measured. Stops after ``trials`` candidates, ``time_budget`` seconds, or ``early_stop``
    candidates without improvement. ``resume``: skip configs already measured for this
    workload and target and count them against ``trials``. ``timeout``: seconds per
    candidate (default: from the default schedule's time). ``confirm``: re-measure the
    top this-many configs and the default at the end (0: no); the best is the best mean.
    ``target='cuda'``: tune the GPU schedules (``tcc.tune.gpu_space``) on this machine's
    GPU, at ``precision`` ('exact' or 'tf32'); the records are keyed by the device.
    """
    if plot:
        _check_plot_available()
    started = time.monotonic()
    options = options or default_options()
    workload = Workload.of(equation, shapes, dtype)
    threads = options.num_threads
    version = tcc_version()
    if target == "cuda":
        from tcc.runtime.cuda import require_cuda
        from tcc.tune.gpu_space import GpuSearchSpace, gpu_target_key

        require_cuda()
        space: SearchSpace | GpuSearchSpace = GpuSearchSpace(workload, precision)
        device_kind, target = "cuda", gpu_target_key(precision)
    elif target == "cpu":
        from tcc.runtime.jit import host_target

        space = SearchSpace.build(workload, host_target().features, threads)
        device_kind, target = "cpu", host_target_key(threads)
    else:
        raise TccError(f"target must be 'cpu' or 'cuda', not {target!r}")
    search = make_strategy(strategy, space, seed)
    owned = not isinstance(db, Database)
    database = Database(db) if owned else db  # type: ignore[arg-type]
    result = TuneResult(workload, strategy, seed, database.path, tunable=space.tunable)
    key = workload.canonical
    stored = database.trials(key, target, version) if resume else []
    default_record: Trial | None = None
    for trial in stored:
        if trial.strategy == CONFIRM:
            continue  # re-measurements, not trials of the search
        config = trial.config
        if not config:
            default_record = default_record or (trial if trial.status == "ok" else None)
            continue
        search.observe(config, trial.gflops if trial.status == "ok" else None)
        result.earlier_trials += 1
        if trial.status == "ok" and (result.best_gflops or 0) < (trial.gflops or 0):
            result.best_gflops, result.best_config = trial.gflops, config
    run_id = uuid.uuid4().hex
    if resume:
        database.supersede_runs(key, target)
    spec = {**workload.to_json(), "trials": trials, "time_budget": time_budget,
            "strategy": strategy, "seed": seed, "early_stop": early_stop}
    database.start_run(run_id, key, target, spec)
    progress = _Progress(trials, task, quiet)
    measurer = None
    state = "done"
    try:
        measurer = Measurer(workload, threads=threads, cache_dir=options.cache_dir,
                            workers=workers or 1, timeout=timeout or 600.0, seed=seed,
                            target=device_kind, precision=precision)

        def record(number: int, config: Config, m: Measurement,
                   confirming: bool = False) -> None:
            """Store a trial; a re-measurement of a finalist is stored, not counted."""
            database.add(Trial(key, target, version, config_key(config), m.gflops, m.seconds,
                               m.status, m.error, time.time(), run_id,
                               CONFIRM if confirming else strategy))
            if confirming:
                return
            result.history.append((number, config, m.status, m.gflops))
            if m.status != "ok":
                log.debug("trial %d (%s) failed: %s: %s", number, describe(config), m.status,
                          m.error)
                if number:
                    result.failures[m.status] += 1
            elif m.gflops and (result.best_gflops or 0) < m.gflops:
                result.best_gflops, result.best_config = m.gflops, config

        if default_record is not None:
            result.default_gflops = default_record.gflops
        else:
            for number, config, m in measurer.measure([(0, {})]):
                record(number, config, m)
                result.default_gflops = m.gflops if m.status == "ok" else None
        if timeout is None and result.default_gflops:
            call = workload.flops / (result.default_gflops * 1e9)
            measurer.timeout = 60.0 + 40.0 * call * 30
        if not space.tunable:
            result.stopped = "nothing to tune"
            return result
        result.stopped = _search(search, measurer, record, result, trials, time_budget,
                                 early_stop, started, progress, workers or 1)
        if confirm:
            _confirm(measurer, record, result, confirm)
        best = database.best(key, target, version)
        if best is not None:
            result.best_config, result.best_gflops = best.config, best.gflops
        trials_now = database.trials(key, target, version)
        confirmed = any(t.strategy == CONFIRM and t.status == "ok" for t in trials_now)
        defaults = [t.gflops for t in trials_now
                    if t.params == "{}" and t.status == "ok" and t.gflops
                    and (t.strategy == CONFIRM or not confirmed)]
        if defaults:
            result.default_gflops = sum(defaults) / len(defaults)
    except KeyboardInterrupt:
        state = result.stopped = "interrupted"
        log.info("tuning interrupted; %d trials kept in %s", result.trials, database.path)
    finally:
        progress.close()
        if measurer is not None:
            measurer.close()
        result.elapsed = time.monotonic() - started
        database.finish_run(run_id, state)
        if owned:
            database.close()
    log.info("%s", result)
    if plot:
        plot_history(result, plot)
    return result


CONFIRM_ROUNDS = 5
CONFIRM = "confirm"  # the strategy name of the final re-measurements


def _confirm(measurer: Measurer, record, result: TuneResult, count: int) -> None:
    """Measure the top ``count`` configs of this run and the default again, in
    ``CONFIRM_ROUNDS`` alternating rounds: on a shared machine a single measurement can be
    lucky, and drift hits every contender alike. The database then ranks by these
    measurements alone, so a finalist that was only lucky loses to the default."""
    ranked: dict[str, Config] = {}
    for _, config, _status, _gflops in sorted(
            (h for h in result.history if h[2] == "ok" and h[1]), key=lambda h: -(h[3] or 0)):
        ranked.setdefault(config_key(config), config)
    configs = [{}, *list(ranked.values())[:count]]
    jobs = [(-k - 1, config) for k, config in enumerate(configs)]  # no fault hook: number < 0
    for _ in range(CONFIRM_ROUNDS):
        for number, config, m in measurer.measure(jobs):
            record(number, config, m, confirming=True)


def _search(search, measurer: Measurer, record, result: TuneResult, trials: int,
            time_budget: float | None, early_stop: int | None, started: float,
            progress: _Progress, workers: int) -> str:
    done = result.earlier_trials
    since_best = 0
    best = result.best_gflops or 0.0
    batch = max(workers, 4 if search.name == "model" else 2)
    progress.update(done, result.best_gflops)
    while done < trials:
        if time_budget is not None and time.monotonic() - started > time_budget:
            return "time budget"
        proposals = search.propose(min(batch, trials - done))
        if not proposals:
            return "space exhausted"
        jobs = [(result.trials + k + 1, config) for k, config in enumerate(proposals)]
        for _number, config, m in measurer.measure(jobs):
            record(_number, config, m)
            search.observe(config, m.gflops if m.status == "ok" else None)
            result.trials += 1
            done += 1
            if m.status == "ok" and m.gflops and m.gflops > best * 1.0001:
                best, since_best = m.gflops, 0
            else:
                since_best += 1
            progress.update(done, result.best_gflops)
            if early_stop is not None and since_best >= early_stop:
                return f"early stop (no improvement in {early_stop} trials)"
            if time_budget is not None and time.monotonic() - started > time_budget:
                return "time budget"
    return "trial budget"

