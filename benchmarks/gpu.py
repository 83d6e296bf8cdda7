"""GPU benchmarks: tcc's CUDA backend against torch.einsum / torch.matmul on one device.

    python benchmarks/gpu.py [--quick] [--repeat 10]

Each measurement: warm-up calls, then ``--repeat`` timings with CUDA events around ten
back-to-back calls each, the median per call reported (operands and results on the GPU,
launch overheads overlapping the work as in a program). torch runs
twice, TF32 off and on (``torch.backends.cuda.matmul.allow_tf32``), beside tcc's exact
float32 and its ``precision='tf32'`` (tensor cores) kernels; speeds are torch's time over
tcc's (above 1: tcc is faster). Needs cuda-python, torch with
CUDA and a GPU; exits 2 with a message otherwise. Prints ratios; never asserts timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

CASES = [  # name, equation, index sizes
    *[(f"gemm {n}", "ik,kj->ij", {"i": n, "k": n, "j": n}) for n in (1024, 2048, 4096, 8192)],
    ("fused ij,ij,ij->i", "ij,ij,ij->i", {"i": 8192, "j": 8192}),
    ("rowsum ij->i", "ij->i", {"i": 8192, "j": 8192}),
    ("sum ij->", "ij->", {"i": 8192, "j": 8192}),
    ("permuted 4-D", "abcd,dbef->aecf", {"a": 64, "b": 32, "c": 64, "d": 64, "e": 64,
                                           "f": 64}),
    ("permuted 6-D", "abcdef,cdgh->abghef", {"a": 16, "b": 16, "c": 16, "d": 16, "e": 8,
                                              "f": 16, "g": 16, "h": 16}),
    ("batched bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk", {"b": 8, "h": 16, "q": 512, "k": 512,
                                                     "d": 64}),
]
QUICK = {"gemm 4096", "gemm 8192"}
TUNED = {"gemm 4096", "permuted 6-D"}


def _need_gpu():
    """torch with CUDA, and tcc's runtime; exit with a clear message otherwise."""
    try:
        import torch
    except ImportError:
        sys.exit("benchmarks/gpu.py needs torch with CUDA (pip install torch)")
    from tcc.runtime.cuda import cuda_available

    if not torch.cuda.is_available() or not cuda_available():
        print("benchmarks/gpu.py: no usable CUDA GPU here (needs a GPU, its driver, "
              "cuda-python and torch with CUDA); nothing to measure", file=sys.stderr)
        sys.exit(2)
    return torch


def _time(torch, fn, repeat: int, warmup: int = 3, batch: int = 10) -> float:
    """Median device time of one call of ``fn`` in milliseconds: CUDA events around
    ``batch`` back-to-back calls (so launch overheads overlap the work, as in a program),
    ``repeat`` times."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(batch):
            fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / batch)
    return statistics.median(times)


def _copy_bandwidth(torch, repeat: int) -> float:
    """GB/s of a 2 GiB device-to-device copy, counting bytes read and written."""
    source = torch.empty(1 << 29, dtype=torch.float32, device="cuda").uniform_()
    milliseconds = _time(torch, source.clone, repeat)
    return 2 * source.numel() * 4 / (milliseconds * 1e-3) / 1e9


def _shapes(equation: str, sizes: dict[str, int]) -> list[tuple[int, ...]]:
    inputs = equation.split("->")[0].split(",")
    return [tuple(sizes[c] for c in term) for term in inputs]


def _flops(equation: str, sizes: dict[str, int]) -> float:
    labels = set(equation.replace(",", "").replace("->", ""))
    total = 1.0
    for label in labels:
        total *= sizes[label]
    return 2 * total * max(len(equation.split("->")[0].split(",")) - 1, 1)


def run_case(torch, name: str, equation: str, sizes: dict[str, int], repeat: int) -> str:
    """One row: tcc exact and tf32 beside torch fp32 and tf32; speeds as torch time over
    tcc time (above 1: tcc is faster); errors as ||out - ref|| / ||ref|| against float64."""
    import tcc

    shapes = _shapes(equation, sizes)
    rng = np.random.default_rng(0)
    tensors = [torch.from_numpy(rng.standard_normal(s, dtype=np.float32)).cuda()
               for s in shapes]
    is_matmul = equation == "ik,kj->ij"
    contraction = len(shapes) == 2

    def run_torch():
        return torch.matmul(*tensors) if is_matmul else torch.einsum(equation, *tensors)

    reference = torch.einsum(equation, *[t.double() for t in tensors])

    def error(out) -> float:
        out = torch.as_tensor(out, device="cuda").double()
        return float((out - reference).norm() / reference.norm().clamp(min=1e-300))

    times, errors = {}, {}
    for precision in ("exact", "tf32") if contraction else ("exact",):
        kernel = tcc.compile(equation, *shapes, dtype="float32", target="cuda",
                             precision=precision)
        errors[precision] = error(kernel(*tensors))
        times[precision] = _time(torch, lambda k=kernel: k(*tensors), repeat)
    for allow in (False, True) if contraction else (False,):
        torch.backends.cuda.matmul.allow_tf32 = allow
        times["torch tf32" if allow else "torch"] = _time(torch, run_torch, repeat)
    torch.backends.cuda.matmul.allow_tf32 = False
    t = times["exact"]
    tflops = _flops(equation, sizes) / (t * 1e-3) / 1e12
    moved = (sum(x.numel() for x in tensors) + reference.numel()) * 4  # each tensor once
    row = (f"{name:24s} tcc {t:8.3f} ms {tflops:6.2f} TFLOP/s {moved / (t * 1e-3) / 1e9:5.0f} "
           f"GB/s | torch {times['torch']:8.3f} ms | speed {times['torch'] / t:5.2f}x "
           f"| err {errors['exact']:.0e}")
    if contraction:
        t32 = times["tf32"]
        row += (f" || tf32: tcc {t32:8.3f} ms {_flops(equation, sizes) / (t32 * 1e9):6.1f} "
                f"TFLOP/s | torch {times['torch tf32']:8.3f} ms | speed "
                f"{times['torch tf32'] / t32:5.2f}x | err {errors['tf32']:.0e}")
    return row


PROGRAMS = [  # name, program text, index sizes, the same in torch
    ("scores + exp epilogue", "P[b,h,q,k] = exp(0.125 * sum_d Q[b,h,q,d] * K[b,h,k,d])",
     {"b": 8, "h": 16, "q": 1024, "k": 1024, "d": 64},
     lambda torch, Q, K: torch.exp(0.125 * torch.einsum("bhqd,bhkd->bhqk", Q, K))),
]


def run_program_case(torch, name: str, text: str, sizes: dict[str, int], reference,
                     repeat: int) -> str:
    """A fused program (contraction + elementwise epilogue) against torch's kernels."""
    import tcc

    prog = tcc.program(text, shapes=sizes, dtype="float32")
    rng = np.random.default_rng(0)
    tensors = {n: torch.from_numpy(rng.standard_normal(prog.tensor(n).shape,
                                                       dtype=np.float32)).cuda()
               for n in prog.inputs}
    compiled = tcc.compile(prog, target="cuda")
    out = compiled(tensors)
    expected = reference(torch, *(tensors[n] for n in prog.inputs))
    result = torch.as_tensor(out[prog.outputs[0]], device="cuda")
    error = float((result - expected).norm() / expected.norm())
    torch.backends.cuda.matmul.allow_tf32 = False
    t = _time(torch, lambda: compiled(tensors), repeat)
    t_torch = _time(torch, lambda: reference(torch, *(tensors[n] for n in prog.inputs)), repeat)
    return (f"{name:24s} tcc {t:8.3f} ms | torch {t_torch:8.3f} ms | speed "
            f"{t_torch / t:5.2f}x | err {error:.0e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest GEMMs")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls (median)")
    parser.add_argument("--tune", type=int, default=0, metavar="TRIALS",
                        help="also tune GEMM 4096 and the permuted 6-D case on the GPU")
    args = parser.parse_args(argv)
    torch = _need_gpu()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"ceiling: device-to-device copy {_copy_bandwidth(torch, args.repeat):.0f} GB/s "
          "(bytes read + written)", flush=True)
    for name, equation, sizes in CASES:
        if args.quick and name in QUICK:
            continue
        print(run_case(torch, name, equation, sizes, args.repeat), flush=True)
    for name, text, sizes, reference in PROGRAMS:
        print(run_program_case(torch, name, text, sizes, reference, args.repeat), flush=True)
    if args.tune:
        import tcc

        for name, equation, sizes in CASES:
            if name in TUNED:
                result = tcc.tune(equation, *_shapes(equation, sizes), dtype="float32",
                                  target="cuda", trials=args.tune, time_budget=120, quiet=True,
                                  strategy="model")
                print(f"tuned {name:18s} default {result.default_gflops or 0:9.0f} GFLOP/s  "
                      f"best {result.best_gflops or 0:9.0f}  "
                      f"speedup {result.speedup or 0:5.2f}x  {result.best_config}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
