"""Contraction-path quality and search time: tcc vs opt_einsum vs cotengra, one run.

Every path is re-costed with tcc's ``ContractionTree.flops`` (opt_einsum counting), so
all columns are comparable. Printed: log10 FLOPs per method and network, search
seconds, and geomean cost ratios:

- tcc auto / cotengra RandomGreedy(128)      (target <= 1.0, none worse than 1.5x)
- tcc auto / best of opt_einsum (auto, dp, random-greedy)    (target: never worse)
- tcc hyper / cotengra HyperOptimizer at the same max_time   (target <= 1.5)

Usage: python benchmarks/paths.py [--quick] [--time SECONDS]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cotengra as ctg  # noqa: E402
import cotengra.utils as ctu  # noqa: E402
import opt_einsum as oe  # noqa: E402
import opt_einsum.path_random  # noqa: E402
import opt_einsum.testing  # noqa: E402

from tcc.passes.order import ContractionTree, optimize  # noqa: E402

Network = tuple[list[tuple[str, ...]], tuple[str, ...], dict[str, int]]


def _net(inputs, output, size_dict) -> Network:
    return [tuple(t) for t in inputs], tuple(output), dict(size_dict)


def mps_chain(sites: int, bond: int = 16, mpo_bond: int = 4, phys: int = 2) -> Network:
    """<psi|H|psi> for an MPS/MPO chain: 3 tensors per site."""
    inputs: list[tuple[str, ...]] = []
    size: dict[str, int] = {}
    for i in range(sites):
        ket = tuple(
            x
            for x in (f"a{i}" if i else None, f"s{i}", f"a{i + 1}" if i < sites - 1 else None)
            if x
        )
        mpo = tuple(
            x
            for x in (
                f"w{i}" if i else None,
                f"s{i}",
                f"t{i}",
                f"w{i + 1}" if i < sites - 1 else None,
            )
            if x
        )
        bra = tuple(
            x
            for x in (f"b{i}" if i else None, f"t{i}", f"b{i + 1}" if i < sites - 1 else None)
            if x
        )
        inputs += [ket, mpo, bra]
        size.update({f"a{i}": bond, f"b{i}": bond, f"w{i}": mpo_bond, f"s{i}": phys, f"t{i}": phys})
    size.update({f"a{sites}": bond, f"b{sites}": bond, f"w{sites}": mpo_bond})
    return inputs, (), size


def from_equation(eq: str, size_dict: dict[str, int]) -> Network:
    lhs, rhs = eq.split("->")
    return [tuple(t) for t in lhs.split(",")], tuple(rhs), size_dict


def networks(quick: bool) -> dict[str, Network]:
    nets: dict[str, Network] = {}
    regs = [(60, 1), (100, 2)] if quick else [(60, 1), (100, 2), (150, 3), (200, 4)]
    for n, seed in regs:
        nets[f"randreg-{n}"] = _net(
            *ctu.randreg_equation(n, 3, seed=seed)[:2], ctu.randreg_equation(n, 3, seed=seed)[3]
        )
    lattices = [(4, 4, 4)] if quick else [(4, 4, 4), (5, 5, 4)]
    for dims in lattices:
        inputs, output, _, size_dict = ctu.lattice_equation(dims, d_min=2, d_max=2, seed=7)
        nets[f"lattice-{'x'.join(map(str, dims))}"] = _net(inputs, output, size_dict)
    inputs, output, _, size_dict = ctu.rand_equation(
        80 if quick else 120, 3, n_out=3, n_hyper_in=4, n_hyper_out=2, seed=5
    )
    nets["rand-hyper"] = _net(inputs, output, size_dict)
    inputs, output, _, size_dict = ctu.tree_equation(100, seed=3)
    nets["tree-100"] = _net(inputs, output, size_dict)
    eq, shapes, size_dict = opt_einsum.testing.rand_equation(
        40 if quick else 60, 3, n_out=2, seed=11, return_size_dict=True
    )
    nets["oe-rand"] = from_equation(eq, size_dict)
    nets["mps-mpo-100" if not quick else "mps-mpo-40"] = mps_chain(40 if quick else 100)
    nets["tucker"] = from_equation(
        "abc,ia,jb,kc->ijk", dict(zip("abcijk", [32, 32, 32, 64, 64, 64], strict=True))
    )
    nets["bilinear"] = from_equation("bi,oij,bj->bo", {"b": 256, "i": 128, "j": 96, "o": 64})
    nets["cg-product"] = from_equation(
        "biu,bjv,ijk,uvw->bkw", dict(zip("bijkuvw", [64, 9, 9, 9, 32, 32, 32], strict=True))
    )
    nets["zui"] = from_equation(
        "zui,zvj,ijk,uvw->zwk", dict(zip("zuivjkw", [8, 16, 5, 16, 5, 5, 32], strict=True))
    )
    return nets


def _oe(fn_name: str) -> Callable:
    def run(inputs, output, size_dict):
        sets = [set(t) for t in inputs]
        if fn_name == "random-greedy":
            return oe.path_random.RandomGreedy(max_repeats=32)(sets, set(output), size_dict)
        return oe.paths.get_path_fn(fn_name)(sets, set(output), size_dict)

    return run


def methods(hyper_time: float) -> dict[str, Callable]:
    def tcc(method: str, **kw):
        return lambda i, o, s: optimize(i, o, s, method=method, use_cache=False, **kw).path()

    def ctg_rg(i, o, s):
        return ctg.RandomGreedyOptimizer(max_repeats=128, seed=0, parallel=False)(i, o, s)

    def ctg_hyper(i, o, s):
        opt = ctg.HyperOptimizer(
            max_time=hyper_time, max_repeats=10**6, parallel=False, progbar=False
        )
        return opt.search(i, o, s).get_path()

    return {
        "tcc-auto": tcc("auto"),
        "tcc-hyper": tcc("hyper", max_time=hyper_time),
        "oe-auto": _oe("auto"),
        "oe-dp": _oe("dp"),
        "oe-rgreedy": _oe("random-greedy"),
        "ctg-rg128": ctg_rg,
        "ctg-hyper": ctg_hyper,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller networks, shorter hyper time")
    parser.add_argument(
        "--time", type=float, default=None, help="max_time of tcc hyper and cotengra hyper"
    )
    args = parser.parse_args()
    hyper_time = args.time if args.time is not None else (1.0 if args.quick else 2.0)
    nets = networks(args.quick)
    runners = methods(hyper_time)
    names = list(runners)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    print(f"log10 FLOPs (search seconds); hyper max_time={hyper_time}s")
    print(f"{'network':<14}{'n':>5} " + "".join(f"{name:>17}" for name in names))
    for net_name, (inputs, output, size_dict) in nets.items():
        row = {}
        for name, run in runners.items():
            if name == "oe-dp" and len(inputs) > 20:
                continue
            start = time.perf_counter()
            path = run(inputs, output, size_dict)
            seconds = time.perf_counter() - start
            flops = ContractionTree.from_path(inputs, output, size_dict, path).flops()
            row[name] = (math.log10(max(flops, 1)), seconds)
        results[net_name] = row
        cells = "".join(
            f"{row[n][0]:>9.3f} ({row[n][1]:>5.2f})" if n in row else f"{'-':>17}" for n in names
        )
        print(f"{net_name:<14}{len(inputs):>5} {cells}", flush=True)
    print()
    report_ratio(results, "tcc-auto", ["ctg-rg128"], "tcc auto / cotengra random-greedy-128")
    report_ratio(results, "tcc-hyper", ["ctg-rg128"], "tcc hyper / cotengra random-greedy-128")
    report_ratio(
        results, "tcc-auto", ["oe-auto", "oe-dp", "oe-rgreedy"], "tcc auto / best opt_einsum"
    )
    report_ratio(results, "tcc-hyper", ["ctg-hyper"], "tcc hyper / cotengra hyper (equal time)")


def report_ratio(results, ours: str, theirs: list[str], title: str) -> None:
    logs = []
    worst = (0.0, "")
    for net, row in results.items():
        others = [row[t][0] for t in theirs if t in row]
        if ours not in row or not others:
            continue
        diff = row[ours][0] - min(others)  # log10 of the cost ratio
        logs.append(diff)
        worst = max(worst, (diff, net))
    geomean = 10 ** (sum(logs) / len(logs))
    print(f"{title:<44} geomean {geomean:6.3f}   worst {10 ** worst[0]:6.3f} ({worst[1]})")


if __name__ == "__main__":
    main()
