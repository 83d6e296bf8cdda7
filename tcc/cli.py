"""The ``tcc`` command line: ``demo``, ``compile``, ``export``, ``path``, ``version``.

Kept thin: parsing arguments and printing. The demo suite and the measuring live in
``tcc.demo_suite``, the formatting in ``tcc.report``. Errors a user can cause end with a
one-line ``tcc: error: ...`` on stderr and a non-zero exit status (2 for bad arguments,
1 for everything else).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

PROG = "tcc"
EXIT_FAILURE = 1
EXIT_USAGE = 2
EMITTERS = ("ir", "llvm", "llvm-opt", "asm", "ptx")
TARGETS = ("cpu", "cuda")


class _UsageError(Exception):
    """Bad command-line arguments (reported with exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: ``tcc: error: ... (see 'tcc X --help')``."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    noise = common.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true", help="say more while working")
    noise.add_argument("-q", "--quiet", action="store_true", help="print only the results")
    return common


def build_parser() -> argparse.ArgumentParser:
    from tcc import __version__

    parser = _Parser(
        prog=PROG,
        description="tcc: a tensor compiler for einsum-style programs.",
        epilog="Run 'tcc COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"tcc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = _common_options()

    demo = commands.add_parser(
        "demo", parents=[common], help="compile a suite of real einsums; compare with numpy",
        description="Compile einsums from real workloads (attention, Tucker, bilinear, "
        "equivariant tensor products, ...), check each against numpy.einsum and time tcc "
        "against numpy.einsum (optimize False and True) and opt_einsum. Exits 1 on any "
        "mismatch.",
    )
    demo.add_argument("--quick", action="store_true", help="small sizes, two timed calls")
    demo.add_argument("--repeat", type=_positive_int, metavar="N", default=None,
                      help="timed calls per measurement; the median is shown (default 5, "
                      "2 with --quick)")
    demo.add_argument("--case", action="append", metavar="NAME", default=[],
                      help="run only this case (repeatable)")
    demo.add_argument("--use-disk-cache", action="store_true",
                      help="let tcc reuse compiled code from its disk cache (by default the "
                      "demo compiles everything afresh, so 'compile' is a cold compile)")
    demo.add_argument("--list", action="store_true", help="list the cases and exit")
    demo.set_defaults(handler=_demo)

    compile_ = commands.add_parser(
        "compile", parents=[common], help="compile one einsum; print its IR, LLVM IR or asm",
        description="Compile an einsum for operands whose shapes follow from per-index "
        "sizes, and print the tcc IR, the LLVM IR or the machine code.",
        epilog="example: tcc compile ik,kj->ij --shape i=1024,k=1024,j=1024 --emit asm",
    )
    compile_.add_argument("equation", metavar="EQ", help="einsum subscripts, e.g. 'ik,kj->ij'")
    compile_.add_argument("-s", "--shape", action="append", metavar="I=N,...", default=[],
                          help="index sizes, e.g. i=1024,k=1024,j=1024 (repeatable)")
    compile_.add_argument("--dtype", default="float32", help="operand dtype (default float32)")
    compile_.add_argument("--optimize", default="auto",
                          help="contraction path optimizer: auto (default), greedy, optimal, "
                          "dp, random-greedy, hyper; or false for one loop nest over all "
                          "operands")
    compile_.add_argument("--emit", choices=EMITTERS, default="ir",
                          help="ir: tcc's program and loop nests (default); llvm: LLVM IR as "
                          "generated; llvm-opt: after LLVM's optimizer; asm: machine code; "
                          "ptx: PTX for the GPU (implies --target cuda)")
    compile_.add_argument("--target", choices=TARGETS, default=None,
                          help="cpu (default) or cuda (GPU code; printing it needs no GPU)")
    compile_.add_argument("--precision", choices=("exact", "tf32"), default="exact",
                          help="tf32: float32 contractions on the GPU's tensor cores (inputs "
                          "rounded to tf32); exact (default) keeps float32")
    compile_.add_argument("-o", "--output", metavar="FILE",
                          help="write to FILE instead of standard output ('-' for stdout)")
    compile_.set_defaults(handler=_compile)

    export = commands.add_parser(
        "export", parents=[common], help="compile one einsum into a .so/.a/.o and a C header",
        description="Compile an einsum and write a shared library (.so), a static library "
        "(.a) or an object (.o) with a C header beside it. The library needs only libc, "
        "libm and pthread.",
        epilog="example: tcc export ik,kj->ij --shape i=1024,k=1024,j=1024 -o libgemm.so",
    )
    export.add_argument("equation", metavar="EQ", help="einsum subscripts")
    export.add_argument("-s", "--shape", action="append", metavar="I=N,...", default=[],
                        help="index sizes (repeatable)")
    export.add_argument("--dtype", default="float32", help="operand dtype (default float32)")
    export.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="the library to write: libNAME.so, libNAME.a or NAME.o")
    export.add_argument("--name", help="the C function's name (default: from the file name)")
    export.add_argument("--cpu", default="native",
                        help="target CPU: native (default), generic, x86-64-v2, x86-64-v3, "
                        "x86-64-v4")
    export.add_argument("--dynamic", action="append", metavar="INDEX", default=[],
                        help="an index whose size is a run-time argument (repeatable)")
    export.set_defaults(handler=_export)

    path = commands.add_parser(
        "path", parents=[common], help="print the contraction path report for an einsum",
        description="Find the contraction order of a multi-operand einsum and print the "
        "path (numpy's format) and the report: FLOPs, largest intermediate, per-step kernel.",
        epilog="example: tcc path pi,qj,ijkl,rk,sl->pqrs --shape p=30,q=30,r=30,s=30,"
        "i=40,j=40,k=40,l=40 --optimize hyper",
    )
    path.add_argument("equation", metavar="EQ", help="einsum subscripts")
    path.add_argument("-s", "--shape", action="append", metavar="I=N,...", default=[],
                      help="index sizes (repeatable)")
    path.add_argument("--optimize", default="auto",
                      help="auto (default), greedy, optimal, dp, random-greedy, hyper")
    path.add_argument("--memory-limit", metavar="N", default=None,
                      help="largest intermediate: elements, or bytes with a unit ('1GB')")
    path.add_argument("--max-time", type=float, default=None, metavar="SECONDS",
                      help="search time for random-greedy and hyper")
    path.add_argument("--json", action="store_true", help="print the plan as JSON instead")
    path.set_defaults(handler=_path)

    _add_tune_commands(commands, common)

    version = commands.add_parser("version", parents=[common], help="print tcc's version",
                                  description="Print the version of tcc and its toolchain.")
    version.set_defaults(handler=_version)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parse_sizes(specs: Sequence[str]) -> dict[str, int]:
    """``['i=1024,k=512', 'j=64']`` -> ``{'i': 1024, 'k': 512, 'j': 64}``."""
    sizes: dict[str, int] = {}
    for spec in specs:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            index, sep, value = item.partition("=")
            index = index.strip()
            if not sep or len(index) != 1 or not index.isalpha():
                raise _UsageError(
                    f"--shape expects INDEX=SIZE items like i=1024 (one letter), got {item!r}"
                )
            try:
                size = int(value)
            except ValueError:
                raise _UsageError(
                    f"--shape: size of {index!r} is not an integer: {value!r}"
                ) from None
            if size < 0:
                raise _UsageError(f"--shape: size of {index!r} is negative: {size}")
            sizes[index] = size
    return sizes


def _say(args: argparse.Namespace, text: str) -> None:
    """Progress and notes go to stderr, so stdout carries only results."""
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


# -- commands -----------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from tcc import demo_suite, report

    cases = demo_suite.select_cases(args.case)
    if args.list:
        for case in cases:
            print(f"{case.name:18s} {case.equation:24s} {case.dtype:8s} {case.note}")
        return 0
    if not args.use_disk_cache:
        from tcc.options import default_options, set_default_options

        set_default_options(default_options().with_(disk_cache=False))
    repeat = args.repeat or (2 if args.quick else 5)
    if not args.quiet:
        print(demo_suite.environment_description())
        print(demo_suite.blas_description())
        warning = demo_suite.blas_environment_warning()
        if warning:
            print(warning)
        print()
    results = []
    started = time.perf_counter()
    for case in cases:
        if args.verbose:
            _say(args, f"  {case.name}: {case.equation}  ({case.note})")
        result = demo_suite.run_case(case, quick=args.quick, repeat=repeat)
        results.append(result)
        if not result.ok:
            print(f"FAIL {case.name} ({case.equation}): {result.error}", file=sys.stderr)
    print(report.demo_table(results))
    failed = [r.case.name for r in results if not r.ok]
    if not args.quiet:
        print()
        print(report.DEMO_LEGEND)
        print(f"{len(results) - len(failed)}/{len(results)} OK in "
              f"{time.perf_counter() - started:.1f} s")
    if failed:
        print(f"{PROG}: error: {len(failed)} case(s) differ from numpy.einsum: "
              f"{', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _compile(args: argparse.Namespace) -> int:
    import numpy as np

    import tcc
    from tcc.demo_suite import shapes_from_sizes

    sizes = parse_sizes(args.shape)
    shapes = shapes_from_sizes(args.equation, sizes)
    optimize: object = {"false": False, "true": True}.get(args.optimize.lower(), args.optimize)
    try:
        dtype = np.dtype(args.dtype)
    except TypeError:
        raise tcc.DTypeError(f"--dtype: {args.dtype!r} is not a numpy dtype name") from None
    target = args.target or ("cuda" if args.emit == "ptx" else "cpu")
    if target == "cpu" and args.emit == "ptx":
        raise _UsageError("--emit ptx needs --target cuda")
    if target == "cuda" and args.emit == "llvm-opt":
        raise _UsageError("--emit llvm-opt is for --target cpu; use llvm or ptx")
    started = time.perf_counter()
    kernel = tcc.compile(args.equation, *shapes, dtype=dtype, optimize=optimize,
                         target=target, load=False, precision=args.precision)
    if args.verbose:
        _say(args, f"compiled {kernel!r} in {time.perf_counter() - started:.3f} s")
    text = {
        "ir": kernel.ir,
        "llvm": kernel.llvm_ir,
        "llvm-opt": lambda: kernel.llvm_ir(optimized=True),
        "asm": kernel.asm,
        "ptx": kernel.ptx,
    }[args.emit]()
    if not text.endswith("\n"):
        text += "\n"
    if args.output and args.output != "-":
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise tcc.TccError(f"cannot write {args.output}: {exc.strerror}") from None
        if args.verbose:
            _say(args, f"wrote {args.emit} ({len(text)} characters) to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _export(args: argparse.Namespace) -> int:
    import numpy as np

    import tcc
    from tcc.demo_suite import shapes_from_sizes

    shapes = shapes_from_sizes(args.equation, parse_sizes(args.shape))
    try:
        dtype = np.dtype(args.dtype)
    except TypeError:
        raise tcc.DTypeError(f"--dtype: {args.dtype!r} is not a numpy dtype name") from None
    kernel = tcc.compile(args.equation, *shapes, dtype=dtype, dynamic=args.dynamic)
    written = kernel.export(args.output, cpu=args.cpu, name=args.name)
    if not args.quiet:
        print(f"wrote {written['library']} and {written['header']}")
    return 0


def _path(args: argparse.Namespace) -> int:
    import tcc
    from tcc.demo_suite import shapes_from_sizes

    shapes = shapes_from_sizes(args.equation, parse_sizes(args.shape))
    limit: int | str | None = args.memory_limit
    if limit is not None and limit.isdigit():
        limit = int(limit)
    optimize: object = {"true": True}.get(args.optimize.lower(), args.optimize)
    if args.json:
        tree = tcc.contraction_tree(args.equation, *shapes, shapes=True, optimize=optimize,
                                    memory_limit=limit, max_time=args.max_time)
        print(tree.to_json())
        return 0
    path, report = tcc.einsum_path(args.equation, *shapes, shapes=True, optimize=optimize,
                                   memory_limit=limit, max_time=args.max_time)
    print(path)
    print(report)
    return 0


def _add_tune_commands(commands, common: argparse.ArgumentParser) -> None:
    """``tcc tune`` and ``tcc records``, defined by the tuner."""
    try:
        from tcc.tune.cli import add_records_parser, add_tune_parser
    except ImportError:  # the tuner is optional for the rest of the CLI
        return
    add_tune_parser(commands, parents=[common])
    add_records_parser(commands, parents=[common])


def _version(args: argparse.Namespace) -> int:
    import llvmlite
    import numpy

    import tcc

    print(f"tcc {tcc.__version__}")
    if not args.quiet:
        print(f"llvmlite {llvmlite.__version__} (LLVM {_llvm_version()}), "
              f"numpy {numpy.__version__}, python {sys.version.split()[0]}")
    return 0


def _llvm_version() -> str:
    import llvmlite.binding as llvm

    return ".".join(str(part) for part in llvm.llvm_version_info)


# -- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    from tcc.errors import TccError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.handler(args)
    except _UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TccError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tcc compile ... | head`: stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
