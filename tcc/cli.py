"""The ``tcc`` command line: ``tcc demo``, ``tcc compile``, ``tcc version``.

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
EMITTERS = ("ir", "llvm", "llvm-opt", "asm")


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
                          "generated; llvm-opt: after LLVM's optimizer; asm: machine code")
    compile_.add_argument("-o", "--output", metavar="FILE",
                          help="write to FILE instead of standard output ('-' for stdout)")
    compile_.set_defaults(handler=_compile)

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
    started = time.perf_counter()
    kernel = tcc.compile(args.equation, *shapes, dtype=dtype, optimize=optimize)
    if args.verbose:
        _say(args, f"compiled {kernel!r} in {time.perf_counter() - started:.3f} s")
    text = {
        "ir": kernel.ir,
        "llvm": kernel.llvm_ir,
        "llvm-opt": lambda: kernel.llvm_ir(optimized=True),
        "asm": kernel.asm,
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
