"""Command-line pieces for ``tcc tune`` and ``tcc records``, hooked into ``tcc/cli.py``::

    add_tune_parser(commands)     # tcc tune EQ --shape i=..,k=.. [--trials N] [--resume] ...
    add_records_parser(commands)  # tcc records list|export FILE|import FILE|distill

Each parser sets ``handler`` (a function ``args -> exit status``), as the other commands.
"""

from __future__ import annotations

import argparse
import json
import sys

from tcc.errors import OperandError, TccError

STRATEGY_CHOICES = ("evolutionary", "random", "model")


def parse_sizes(items: list[str]) -> dict[str, int]:
    """``["i=2048,k=2048", "j=64"]`` -> {"i": 2048, "k": 2048, "j": 64}."""
    sizes: dict[str, int] = {}
    for group in items:
        for item in group.split(","):
            if not item.strip():
                continue
            index, _, value = item.partition("=")
            index = index.strip()
            if len(index) != 1 or not value.strip().lstrip("-").isdigit():
                raise OperandError(f"--shape expects INDEX=SIZE items like i=1024, got {item!r}")
            if int(value) <= 0:
                raise OperandError(f"--shape: size of {index!r} must be positive, got {value}")
            sizes[index] = int(value)
    return sizes


def operand_shapes(equation: str, sizes: dict[str, int]) -> list[tuple[int, ...]]:
    terms = equation.replace(" ", "").split("->")[0].split(",")
    shapes = []
    for term in terms:
        missing = [c for c in term if c not in sizes]
        if missing or "." in term:
            raise OperandError(f"--shape gives no size for {', '.join(missing) or '...'} "
                               f"(operand {term!r} of {equation!r})")
        shapes.append(tuple(sizes[c] for c in term))
    return shapes


def add_tune_parser(subparsers: argparse._SubParsersAction,
                    parents: list[argparse.ArgumentParser] | None = None
                    ) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tune", parents=parents or [], help="autotune one einsum's schedule on this machine",
        description="Search GETT blockings (micro-tile, cache blocks, threads) for an einsum, "
        "measuring each candidate in an isolated process, and store every trial in the "
        "tuning database; tcc.compile then uses the best record.",
        epilog="example: tcc tune ik,kj->ij --shape i=2048,k=2048,j=2048 --trials 256",
    )
    parser.add_argument("equation", metavar="EQ", nargs="?",
                        help="einsum subscripts (omit with --resume to continue the last run)")
    parser.add_argument("-s", "--shape", action="append", metavar="I=N,...", default=[],
                        help="index sizes, e.g. i=2048,k=2048,j=2048 (repeatable)")
    parser.add_argument("--dtype", default="float32", help="operand dtype (default float32)")
    parser.add_argument("--trials", type=int, default=256, help="candidates to measure")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="stop after this long (default: no limit)")
    parser.add_argument("--strategy", choices=STRATEGY_CHOICES, default="evolutionary")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None,
                        help="measuring processes (default 1)")
    parser.add_argument("--early-stop", type=int, default=None, metavar="K",
                        help="stop after K trials without improvement")
    parser.add_argument("--confirm", type=int, default=3, metavar="N",
                        help="re-measure the top N configs and the default at the end")
    parser.add_argument("--db", default=None, help="tuning database (default: in the cache)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="save best-so-far GFLOP/s vs trials (needs matplotlib)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run (the last one when EQ is omitted)")
    parser.add_argument("--target", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: tune the GPU schedules on this machine's GPU")
    parser.add_argument("--precision", choices=("exact", "tf32"), default="exact",
                        help="tf32: let float32 GPU contractions use the tensor cores")
    if not any(a.dest == "quiet" for a in parser._actions):
        parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(handler=run_tune)
    return parser


def add_records_parser(subparsers: argparse._SubParsersAction,
                       parents: list[argparse.ArgumentParser] | None = None
                       ) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "records", parents=parents or [], help="list, export, import or distill tuning records",
        description="Manage the tuning database: list its workloads, export or import "
        "records as JSON, or distill it to the best record per workload and target.",
    )
    parser.add_argument("action", choices=("list", "export", "import", "distill"))
    parser.add_argument("file", nargs="?", help="JSON file for export/import")
    parser.add_argument("--db", default=None, help="tuning database (default: in the cache)")
    parser.set_defaults(handler=run_records)
    return parser


def run_tune(args: argparse.Namespace) -> int:
    from tcc.tune.database import Database
    from tcc.tune.tuner import tune

    equation, shapes, dtype = args.equation, None, args.dtype
    trials, strategy, seed = args.trials, args.strategy, args.seed
    if equation is None:
        if not args.resume:
            raise OperandError("tcc tune needs an einsum (or --resume to continue the last run)")
        with Database(args.db) as database:
            last = database.last_unfinished_run()
        if last is None:
            raise TccError("no interrupted tuning run to resume")
        equation, dtype = last["equation"], last["dtype"]
        shapes = [tuple(s) for s in last["shapes"]]
        trials, strategy, seed = last["trials"], last["strategy"], last["seed"]
    else:
        shapes = operand_shapes(equation, parse_sizes(args.shape))
    result = tune(equation, *shapes, dtype=dtype, trials=trials, time_budget=args.time_budget,
                  strategy=strategy, seed=seed, db=args.db, workers=args.workers,
                  quiet=getattr(args, "quiet", False), early_stop=args.early_stop,
                  resume=args.resume, plot=args.plot, confirm=args.confirm,
                  target=args.target, precision=args.precision)
    print(result)
    return 0 if result.best_gflops is not None or not result.tunable else 1


def run_records(args: argparse.Namespace) -> int:
    from tcc.tune.database import Database

    if args.action in ("export", "import") and not args.file:
        raise OperandError(f"tcc records {args.action} needs a FILE")
    with Database(args.db) as database:
        if args.action == "list":
            rows = database.summary()
            if not rows:
                print(f"no records in {database.path}")
            for row in rows:
                target = row["target"]
                best = f"{row['best_gflops']:.2f}" if row["best_gflops"] else "-"
                where = (f"{target['device']} sm_{target['sm']}, {target['precision']}"
                         if "device" in target else f"{target['cpu']}, {target['threads']} threads")
                print(f"{row['workload']}  [{where}, "
                      f"tcc {row['tcc_version']}]  trials {row['trials']} (ok {row['ok']})  "
                      f"best {best} GFLOP/s  {json.dumps(row['best_params'])}")
        elif args.action == "export":
            count = database.export_records(args.file)
            print(f"exported {count} trials to {args.file}")
        elif args.action == "import":
            count = database.import_records(args.file)
            print(f"imported {count} new trials into {database.path}")
        else:
            removed = database.distill()
            print(f"distilled {database.path}: removed {removed} trials")
    sys.stdout.flush()
    return 0
