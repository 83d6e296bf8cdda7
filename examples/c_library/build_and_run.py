"""Export batched attention scores as libattn.so, build main.c against it, run, and check.

A library author's workflow: compile the einsum once with tcc, ship the .so and .h, call it
from C with no Python and no tcc. Needs a C compiler (cc/gcc/clang).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import tcc

HERE = Path(__file__).resolve().parent
B, H, Q, K, D = 4, 8, 256, 256, 64


def main() -> int:
    kernel = tcc.compile("bhqd,bhkd->bhqk", (B, H, Q, D), (B, H, K, D), dtype="float32")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        kernel.export(str(out / "libattn.so"))
        header = (out / "libattn.h").read_text().splitlines()
        print(next(line for line in header if line.startswith("int ")))
        exe = out / "attn_demo"
        subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-I", str(out), str(HERE / "main.c"),
                        "-o", str(exe), "-L", str(out), "-lattn", "-lm",
                        f"-Wl,-rpath,{out}"], check=True)
        result = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
        print(result.stdout.strip())
    # the same computation from Python, to check the checksum
    i = np.arange(B * H * Q * D)
    q = np.sin(0.001 * i).astype(np.float32).reshape(B, H, Q, D)
    k = np.cos(0.002 * np.arange(B * H * K * D)).astype(np.float32).reshape(B, H, K, D)
    want = float(np.einsum("bhqd,bhkd->bhqk", q, k, dtype=np.float64).sum())
    got = float(result.stdout.split("checksum")[1])
    print(f"numpy checksum {want:.6e}: {'OK' if abs(got - want) <= 1e-3 * abs(want) else 'FAIL'}")
    return 0 if abs(got - want) <= 1e-3 * abs(want) else 1


if __name__ == "__main__":
    sys.exit(main())
