"""Measuring candidates in isolated worker processes.

Each worker is a separate Python process (``python -c ...worker_main()``) that talks to
the tuner over its stdin/stdout with length-prefixed pickles. It loads the workload's
inputs and the float64 reference (computed once by the tuner) from ``.npy`` files, then for
each candidate: compiles it, runs it once into a NaN-filled output and checks the result
(and that the inputs were left alone, restoring them if not), then times warm calls (each
into a fresh output, as users call a Kernel) and reports the median. A crash
(segfault) ends only that worker, a hang is killed after a timeout, a wrong result is
reported as such: the candidate is marked failed, a fresh worker takes the next one.

Timing holds an exclusive ``flock`` so that workers compile in parallel but never time at
once. Test hook: the environment variable ``TCC_TUNE_FAULTS="3:crash,5:wrong,7:hang"``
makes the tuner send a ``_fault`` with those trial numbers (counted from 1); only the
worker acts on it.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from tcc.tune.space import Config, Workload

FAILURE_KINDS = ("compile", "runtime", "wrong", "crash", "timeout")
_HEADER = struct.Struct("<Q")
TARGET_SECONDS = 0.12  # timed runs per candidate stop after about this long
GPU_BATCH = 5  # GPU launches timed together
MIN_RUNS, MAX_RUNS = 3, 25


@dataclass(frozen=True, slots=True)
class Measurement:
    status: str  # "ok" or one of FAILURE_KINDS
    gflops: float | None = None
    seconds: float | None = None  # median time of one call
    compile_seconds: float | None = None
    error: str | None = None


def parse_faults(text: str | None) -> dict[int, str]:
    """``"3:crash,5:wrong"`` -> {3: "crash", 5: "wrong"}."""
    faults: dict[int, str] = {}
    for item in (text or "").split(","):
        if item.strip():
            number, kind = item.split(":")
            faults[int(number)] = kind.strip()
    return faults


# -- the worker side ---------------------------------------------------------------------
def _send(stream, message: object) -> None:
    payload = pickle.dumps(message)
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        written = stream.write(view)
        view = view[written or 0:]
    stream.flush()


def _read_exact(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> object:
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, size))


def worker_main() -> None:
    """The worker loop: setup message, then one candidate per message until None."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the tuner's to handle
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints (Python or C) must not corrupt the protocol
    setup = _receive(0)
    state = _WorkerState(setup)  # type: ignore[arg-type]
    while True:
        message = _receive(0)
        if message is None:
            return
        config, fault = message  # type: ignore[misc]
        _send(protocol, state.measure(config, fault))


class _WorkerState:
    def __init__(self, setup: dict) -> None:
        self.setup = setup
        self.workload: Workload = setup["workload"]
        self.inputs = [np.load(p) for p in setup["inputs"]]
        self.pristine = [a.copy() for a in self.inputs]
        self.reference = np.load(setup["reference"], mmap_mode="r")
        self.lock_path = setup["lock"]

    def options(self, config: Config):
        from tcc.options import Options
        from tcc.tune.space import apply_config

        base = Options(cache_dir=self.setup["cache_dir"], disk_cache=False,
                       num_threads=self.setup["threads"], verify=False)
        return apply_config(base, config)

    def measure(self, config: Config, fault: str | None) -> Measurement:
        from tcc.kernel import Kernel

        if self.setup.get("target") == "cuda":
            return self.measure_gpu(config, fault)
        w = self.workload
        started = time.perf_counter()
        try:
            kernel = Kernel(w.equation, w.shapes, [w.dtype] * len(w.shapes),
                            options=self.options(config), tuning=False)
        except Exception:
            return Measurement("compile", error=traceback.format_exc(limit=4))
        compile_seconds = time.perf_counter() - started
        try:
            if fault == "crash":
                import ctypes

                ctypes.string_at(0)  # a deliberate segfault
            if fault == "hang":
                time.sleep(1e6)
            # a NaN-filled output: a kernel that skips elements cannot pass on stale values
            result = np.full(self.reference.shape, np.nan, dtype=w.dtype)
            kernel(*self.inputs, out=result)
            if fault == "wrong":
                result = result.copy()
                result.flat[result.size // 2] += 1.0 + 2 * abs(result.flat[result.size // 2])
        except Exception:
            return Measurement("runtime", error=traceback.format_exc(limit=4))
        problem = self.check(result)
        if problem:
            return Measurement("wrong", error=problem, compile_seconds=compile_seconds)
        try:
            seconds = self.time(kernel)
        except Exception:
            return Measurement("runtime", error=traceback.format_exc(limit=4))
        return Measurement("ok", gflops=self.setup["flops"] / seconds / 1e9, seconds=seconds,
                           compile_seconds=compile_seconds)

    def measure_gpu(self, config: Config, fault: str | None) -> Measurement:
        """One GPU candidate: compiled with ``gpu_config``, run on device copies of the
        inputs (checked afterwards: a kernel must not write them), its result checked,
        then timed in batches of back-to-back launches between stream synchronizations."""
        from tcc.kernel import Kernel
        from tcc.runtime.cuda import DeviceArray

        w = self.workload
        started = time.perf_counter()
        try:
            kernel = Kernel(w.equation, w.shapes, [w.dtype] * len(w.shapes), target="cuda",
                            tuning=False, precision=self.setup["precision"], gpu_config=config)
            if getattr(self, "device_inputs", None) is None:
                self.device_inputs = [DeviceArray.from_host(a) for a in self.inputs]
        except Exception:
            return Measurement("compile", error=traceback.format_exc(limit=4))
        compile_seconds = time.perf_counter() - started
        try:
            if fault == "crash":
                import ctypes

                ctypes.string_at(0)
            if fault == "hang":
                time.sleep(1e6)
            result = kernel(*self.device_inputs).numpy()
            if fault == "wrong":
                result.flat[result.size // 2] += 1.0 + 2 * abs(result.flat[result.size // 2])
            written = [a.numpy() for a in self.device_inputs]
        except Exception:
            return Measurement("runtime", error=traceback.format_exc(limit=4))
        for k, (now, before) in enumerate(zip(written, self.pristine, strict=True)):
            if not np.array_equal(now, before, equal_nan=True):
                self.device_inputs = None
                return Measurement("wrong", error=f"input {k} was modified on the device")
        problem = self.check(result)
        if problem:
            return Measurement("wrong", error=problem, compile_seconds=compile_seconds)
        try:
            seconds = self.time(kernel, self.device_inputs, batch=GPU_BATCH)
        except Exception:
            return Measurement("runtime", error=traceback.format_exc(limit=4))
        return Measurement("ok", gflops=self.setup["flops"] / seconds / 1e9, seconds=seconds,
                           compile_seconds=compile_seconds)

    def check(self, result: np.ndarray) -> str | None:
        for k, (now, before) in enumerate(zip(self.inputs, self.pristine, strict=True)):
            if not np.array_equal(now, before, equal_nan=True):
                self.inputs[k][...] = before
                return f"input {k} was modified"
        reference = np.asarray(self.reference)
        if result.shape != reference.shape:
            return f"result shape {result.shape} != reference shape {reference.shape}"
        scale = float(np.max(np.abs(reference))) if reference.size else 0.0
        tolerance = 1e-3 if self.workload.dtype in ("float32", "float16") else 1e-9
        if self.setup.get("precision") == "tf32":
            tolerance = 1e-2  # inputs rounded to 10 mantissa bits
        error = np.abs(result.astype(np.float64) - reference)
        bad = ~(error <= tolerance * (scale + np.abs(reference)) + tolerance)
        if bad.any():
            where = np.unravel_index(int(np.argmax(bad)), bad.shape)
            return (f"result differs from the reference at {tuple(map(int, where))}: "
                    f"{result[where]!r} vs {reference[where]!r} ({int(bad.sum())} elements)")
        return None

    def time(self, kernel, inputs=None, batch: int = 1) -> float:
        """Median seconds of one call; ``batch`` calls are timed together and the stream
        synchronized after them (GPU kernels run asynchronously)."""
        inputs = self.inputs if inputs is None else inputs
        if batch > 1:
            from tcc.runtime.cuda import device

            def run() -> None:
                for _ in range(batch):
                    kernel(*inputs)
                device().synchronize()
        else:
            def run() -> None:
                kernel(*inputs)  # a fresh output each call
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                run()  # warm-up (the check run warmed the code already)
                times: list[float] = []
                total = 0.0
                while len(times) < MAX_RUNS and (len(times) < MIN_RUNS or total < TARGET_SECONDS):
                    started = time.perf_counter()
                    run()
                    elapsed = time.perf_counter() - started
                    times.append(elapsed / batch)
                    total += elapsed
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return float(np.median(times))


# -- the tuner side ----------------------------------------------------------------------
class _Worker:
    def __init__(self, setup: dict, log_path: str) -> None:
        self.log = open(log_path, "ab")
        command = [sys.executable, "-c", "from tcc.tune.measure import worker_main; worker_main()"]
        env = dict(os.environ)
        env.pop("TCC_TUNE_FAULTS", None)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.log, bufsize=0, env=env)
        self.log_path = log_path
        self.job: tuple[int, Config] | None = None
        self.deadline = 0.0
        _send(self.process.stdin, setup)

    def submit(self, job: tuple[int, Config], fault: str | None, timeout: float) -> None:
        self.job = job
        self.deadline = time.monotonic() + timeout
        _send(self.process.stdin, (job[1], fault))

    def receive(self) -> Measurement:
        return _receive(self.process.stdout.fileno())  # type: ignore[return-value]

    def log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - 600))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()

    def close(self) -> None:
        try:
            _send(self.process.stdin, None)
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class Measurer:
    """Measures configs of one workload in ``workers`` isolated processes."""

    def __init__(self, workload: Workload, *, threads: int, cache_dir: str, workers: int = 1,
                 timeout: float = 120.0, seed: int = 0, target: str = "cpu",
                 precision: str = "exact") -> None:
        self.workload = workload
        self.target, self.precision = target, precision
        self.workers = max(1, workers)
        self.timeout = timeout
        self.directory = tempfile.mkdtemp(prefix="tcc-tune-")
        self.setup = self._prepare(seed, threads, cache_dir)
        self.faults = parse_faults(os.environ.get("TCC_TUNE_FAULTS"))
        self._pool: list[_Worker] = []
        self._spawned = 0

    def _prepare(self, seed: int, threads: int, cache_dir: str) -> dict:
        w = self.workload
        rng = np.random.default_rng(seed)
        paths = []
        inputs = []
        for k, shape in enumerate(w.shapes):
            array = rng.standard_normal(shape).astype(w.dtype)
            inputs.append(array)
            paths.append(os.path.join(self.directory, f"in{k}.npy"))
            np.save(paths[-1], array)
        reference = np.einsum(w.equation, *[a.astype(np.float64) for a in inputs], optimize=True)
        reference_path = os.path.join(self.directory, "reference.npy")
        np.save(reference_path, np.asarray(reference, dtype=np.float64))
        return {"workload": w, "inputs": paths, "reference": reference_path,
                "lock": os.path.join(self.directory, "timing.lock"), "threads": threads,
                "cache_dir": cache_dir, "flops": w.flops, "target": self.target,
                "precision": self.precision}

    def _new_worker(self) -> _Worker:
        self._spawned += 1
        return _Worker(self.setup, os.path.join(self.directory, f"worker{self._spawned}.log"))

    def measure(self, jobs: Iterable[tuple[int, Config]],
                timeout: float | None = None) -> Iterator[tuple[int, Config, Measurement]]:
        """Measure ``(trial_number, config)`` jobs; yield each result as it finishes."""
        pending = list(jobs)
        pending.reverse()
        timeout = timeout or self.timeout
        busy: list[_Worker] = []
        idle = self._pool
        try:
            while pending or busy:
                while pending and len(busy) < self.workers:
                    worker = idle.pop() if idle else self._new_worker()
                    number, config = pending.pop()
                    try:
                        worker.submit((number, config), self.faults.get(number), timeout)
                    except OSError:  # it died while idle
                        worker.kill()
                        worker = self._new_worker()
                        worker.submit((number, config), self.faults.get(number), timeout)
                    busy.append(worker)
                now = time.monotonic()
                wait = max(0.0, min(w.deadline for w in busy) - now)
                ready, _, _ = select.select([w.process.stdout for w in busy], [], [],
                                            min(wait, 1.0))
                for worker in list(busy):
                    result = None
                    if worker.process.stdout in ready:
                        try:
                            result = worker.receive()
                        except (EOFError, OSError, pickle.UnpicklingError):
                            code = worker.process.wait()
                            result = Measurement("crash", error=f"worker died (exit status "
                                                 f"{code}); {worker.log_tail()[-300:]}".strip())
                    elif time.monotonic() > worker.deadline:
                        result = Measurement("timeout", error=f"no result in {timeout:.0f} s")
                    if result is None:
                        continue
                    busy.remove(worker)
                    assert worker.job is not None
                    number, config = worker.job
                    if result.status in ("crash", "timeout"):
                        worker.kill()
                    else:
                        idle.append(worker)
                    yield number, config, result
        finally:
            for worker in busy:  # interrupted: their results are lost, not wrong
                worker.kill()

    def close(self) -> None:
        for worker in self._pool:
            worker.close()
        self._pool.clear()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
