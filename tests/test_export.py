"""Export: libraries that C programs (and Python without tcc) load, run and get right."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tcc
from tcc.runtime import export as export_module

pytestmark = pytest.mark.skipif(export_module.find_c_compiler() is None,
                                reason="needs a C compiler")

C_MAIN = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "HEADER"

static void fill(TYPE *x, long n, double seed) {
    for (long i = 0; i < n; ++i) x[i] = (TYPE)sin(seed + 0.37 * (double)i);
}

int main(int argc, char **argv) {
    long sizes[] = {SIZES};
    long out_size = OUT_SIZE;
    TYPE *ops[NOPS];
    for (int k = 0; k < NOPS; ++k) {
        ops[k] = malloc(sizeof(TYPE) * sizes[k]);
        fill(ops[k], sizes[k], k);
    }
    TYPE *out = malloc(sizeof(TYPE) * out_size);
    int status = CALL;
    if (status != 0) { printf("status %d\n", status); return status; }
    FILE *f = fopen(argv[1], "wb");
    fwrite(out, sizeof(TYPE), out_size, f);
    fclose(f);
    return 0;
}
"""


def _inputs(shapes, dtype):
    return [np.sin(k + 0.37 * np.arange(int(np.prod(s)))).astype(dtype).reshape(s)
            for k, s in enumerate(shapes)]


def _c_driver(tmp_path, header, name, shapes, out_shape, ctype):
    args = ", ".join(f"ops[{k}]" for k in range(len(shapes)))
    source = (C_MAIN.replace("HEADER", header).replace("TYPE", ctype)
              .replace("NOPS", str(len(shapes)))
              .replace("SIZES", ", ".join(str(int(np.prod(s))) for s in shapes))
              .replace("OUT_SIZE", str(int(np.prod(out_shape))))
              .replace("CALL", f"{name}({args}, out)"))
    path = tmp_path / "main.c"
    path.write_text(source)
    return path


def _compile_and_run(tmp_path, sources, link, expect_status=0):
    cc = export_module.find_c_compiler()
    exe = tmp_path / "main"
    subprocess.run([cc, "-Wall", "-Werror", "-O1", "-I", str(tmp_path), *map(str, sources),
                    "-o", str(exe), *link, "-lm", "-lpthread"], check=True)
    result = subprocess.run([str(exe), str(tmp_path / "out.bin")], capture_output=True,
                            text=True, env={"LD_LIBRARY_PATH": str(tmp_path)})
    assert result.returncode == expect_status, result.stdout + result.stderr
    return tmp_path / "out.bin"


@pytest.mark.parametrize("kind", [".so", ".a"])
def test_c_program_against_numpy(tmp_path, kind):
    eq, shapes = "bhqd,bhkd->bhqk", [(2, 3, 40, 16), (2, 3, 50, 16)]
    kernel = tcc.compile(eq, *shapes, dtype="float32")
    kernel.export(str(tmp_path / f"libattn{kind}"))
    main = _c_driver(tmp_path, "libattn.h", "attn", shapes, kernel.output_shape, "float")
    link = ["-L", str(tmp_path), "-lattn"] if kind == ".so" else [str(tmp_path / "libattn.a")]
    out = _compile_and_run(tmp_path, [main], link)
    got = np.fromfile(out, np.float32).reshape(kernel.output_shape)
    np.testing.assert_allclose(got, np.einsum(eq, *_inputs(shapes, np.float32)), rtol=1e-5,
                               atol=1e-5)


def test_several_kernels_and_an_arena_in_one_library(tmp_path):
    chain = tcc.compile("ij,jk,kl->il", (10, 20), (20, 30), (30, 5), dtype="float64")
    gemm = tcc.compile("ik,kj->ij", (64, 64), (64, 64), dtype="float64")
    tcc.export({"chain": chain, "gemm": gemm}, str(tmp_path / "libmodel.so"), cpu="generic")
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(tmp_path / "libmodel.so")],
                             capture_output=True, text=True, check=True).stdout
    assert {line.split()[-1] for line in symbols.splitlines()} == {"chain", "gemm"}
    shapes = [(10, 20), (20, 30), (30, 5)]
    main = _c_driver(tmp_path, "libmodel.h", "chain", shapes, (10, 5), "double")
    out = _compile_and_run(tmp_path, [main], ["-L", str(tmp_path), "-lmodel"])
    want = np.einsum("ij,jk,kl->il", *_inputs(shapes, np.float64))
    np.testing.assert_allclose(np.fromfile(out).reshape(10, 5), want, rtol=1e-12)


def test_header_compiles_as_c_and_cpp(tmp_path):
    kernel = tcc.compile("zui,zvj,ijk,uvw->zwk", (4, 3, 5), (4, 3, 5), (5, 5, 5), (3, 3, 2),
                         dtype="complex64")
    kernel.export(str(tmp_path / "libcg.o"))
    use = tmp_path / "use.c"
    use.write_text('#include "libcg.h"\nint (*f)(const float *, const float *, const float *,'
                   ' const float *, float *) = cg;\n')
    for compiler in ("gcc", "g++"):
        if export_module.shutil.which(compiler):
            flag = ["-x", "c++"] if compiler == "g++" else []
            subprocess.run([compiler, *flag, "-Wall", "-Werror", "-c", str(use), "-o",
                            str(tmp_path / "use.o")], check=True)


def test_ctypes_without_tcc(tmp_path):
    eq, shapes = "ij,ij,ij->i", [(33, 70)] * 3
    tcc.compile(eq, *shapes, dtype="float64").export(str(tmp_path / "libhad.so"),
                                                     cpu="x86-64-v3")
    script = textwrap.dedent(f"""
        import sys
        sys.modules["tcc"] = None  # tcc must not be importable here
        import ctypes, numpy as np
        lib = ctypes.CDLL({str(tmp_path / 'libhad.so')!r})
        ops = [np.sin(k + 0.37 * np.arange(33 * 70)).reshape(33, 70) for k in range(3)]
        out = np.empty(33)
        p = lambda a: a.ctypes.data_as(ctypes.c_void_p)
        assert lib.had(*map(p, ops), p(out)) == 0
        assert np.allclose(out, np.einsum({eq!r}, *ops))
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("cpu", ["x86-64-v3", None])
def test_masked_stores_in_an_exported_library(tmp_path, cpu):
    # C contiguous in runs of 20 (not a multiple of 8 or 16 lanes): GETT's masked stores,
    # compiled for AVX2 and for this CPU, called through ctypes without tcc
    eq, shapes = "abcd,aebf->dfce", [(3, 4, 5, 6), (3, 20, 4, 7)]
    options = tcc.options.default_options().with_(gett="always")
    kernel = tcc.compile(eq, *shapes, dtype="float32", options=options)
    assert " lanes[" in kernel.ir()
    kernel.export(str(tmp_path / "libmask.so"), cpu=cpu)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["tcc"] = None
        import ctypes, numpy as np
        lib = ctypes.CDLL({str(tmp_path / 'libmask.so')!r})
        rng = np.random.default_rng(0)
        x = rng.standard_normal({shapes[0]!r}).astype(np.float32)
        y = rng.standard_normal({shapes[1]!r}).astype(np.float32)
        out = np.empty((6, 7, 5, 20), np.float32)
        p = lambda a: a.ctypes.data_as(ctypes.c_void_p)
        assert lib.mask(p(x), p(y), p(out)) == 0
        assert np.allclose(out, np.einsum({eq!r}, x, y), rtol=1e-4, atol=1e-4)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.stdout.strip() == "ok", result.stderr


def test_missing_cpu_feature_is_refused_cleanly(tmp_path, monkeypatch):
    monkeypatch.setitem(export_module.NAMED_CPUS, "needs-vp2intersect",
                        ("x86-64", "+sse2,+avx512vp2intersect"))
    from tcc.runtime.jit import host_target

    if "+avx512vp2intersect" in host_target().features:
        pytest.skip("this CPU has the feature")
    kernel = tcc.compile("ij,jk->ik", (4, 4), (4, 4))
    kernel.export(str(tmp_path / "libneeds.so"), cpu="needs-vp2intersect")
    main = _c_driver(tmp_path, "libneeds.h", "needs", [(4, 4), (4, 4)], (4, 4), "double")
    _compile_and_run(tmp_path, [main], ["-L", str(tmp_path), "-lneeds"], expect_status=2)


def test_bad_export_requests():
    kernel = tcc.compile("ij,jk->ik", (4, 4), (4, 4))
    with pytest.raises(tcc.TccError, match="cpu"):
        kernel.export("/tmp/libx.so", cpu="pentium-pro")
    with pytest.raises(tcc.TccError, match=r"\.so, \.a or \.o"):
        kernel.export("/tmp/libx.dll")
    with pytest.raises(tcc.TccError, match="C function name"):
        tcc.export({"not a name": kernel}, "/tmp/liby.so")


def test_exported_object_without_a_toolchain(tmp_path, monkeypatch):
    monkeypatch.setattr(export_module, "find_c_compiler", lambda: None)
    kernel = tcc.compile("ij,jk->ik", (4, 4), (4, 4))
    with pytest.raises(tcc.BackendUnavailableError, match="apt-get install gcc"):
        kernel.export(str(tmp_path / "libg.so"))
    kernel.export(str(tmp_path / "libg.o"))
    assert Path(tmp_path / "libg.o").stat().st_size > 0


def test_dynamic_batch_size_from_python_and_c(tmp_path):
    kernel = tcc.compile("bi,oi->bo", (8, 12), (5, 12), dtype="float64", dynamic=["b"])
    rng = np.random.default_rng(0)
    w = rng.random((5, 12))
    for batch in (0, 1, 8, 33):
        x = rng.random((batch, 12))
        np.testing.assert_allclose(kernel(x, w), x @ w.T, rtol=1e-12)
    with pytest.raises(tcc.ShapeError):
        kernel(rng.random((4, 11)), w)
    kernel.export(str(tmp_path / "liblin.so"))
    header = (tmp_path / "liblin.h").read_text()
    assert "int lin(const double *op0, const double *op1, double *out, int64_t b);" in header
    source = tmp_path / "main.c"
    source.write_text(r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "liblin.h"
int main(int argc, char **argv) {
    long batch = atol(argv[2]);
    double *x = malloc(sizeof(double) * (batch * 12 + 1)), w[60];
    double *out = malloc(sizeof(double) * (batch * 5 + 1));
    for (long i = 0; i < batch * 12; ++i) x[i] = sin(0.37 * (double)i);
    for (long i = 0; i < 60; ++i) w[i] = cos(0.11 * (double)i);
    if (lin(x, w, out, -1) != 4) return 9;  /* negative sizes are refused */
    int status = lin(x, w, out, batch);
    FILE *f = fopen(argv[1], "wb");
    fwrite(out, sizeof(double), batch * 5, f);
    fclose(f);
    return status;
}
""")
    cc = export_module.find_c_compiler()
    exe = tmp_path / "main"
    subprocess.run([cc, "-O1", "-I", str(tmp_path), str(source), "-o", str(exe), "-L",
                    str(tmp_path), "-llin", "-lm"], check=True)
    w = np.cos(0.11 * np.arange(60)).reshape(5, 12)
    for batch in (3, 17):
        result = subprocess.run([str(exe), str(tmp_path / "out.bin"), str(batch)],
                                env={"LD_LIBRARY_PATH": str(tmp_path)})
        assert result.returncode == 0
        x = np.sin(0.37 * np.arange(batch * 12)).reshape(batch, 12)
        got = np.fromfile(tmp_path / "out.bin").reshape(batch, 5)
        np.testing.assert_allclose(got, x @ w.T, rtol=1e-12)


def test_dynamic_index_must_lead_its_arrays():
    with pytest.raises(tcc.TccError, match="first axis"):
        tcc.compile("ib,oi->bo", (8, 32), (16, 8), dynamic=["b"])
    with pytest.raises(tcc.TccError, match="not a subscript"):
        tcc.compile("bi,oi->bo", (8, 32), (16, 32), dynamic=["z"])


def test_program_with_arena_and_budget_as_a_library(tmp_path):
    prog = tcc.program("""
        H[b,h] = relu(sum_i X[b,i] * W1[h,i])
        Y[b,o] = sum_h H[b,h] * W2[o,h]
        L[]    = sum_{b,o} (Y[b,o] - T[b,o])^2
    """, shapes=dict(b=6, i=7, h=9, o=4), dtype="float64")
    step = tcc.grad(prog, of="L", wrt=["W1", "W2"])
    full = tcc.compile_program(step)
    compiled = tcc.compile_program(step, memory_budget=int(full.memory_plan.arena_bytes * 0.9),
                                   remat_time_limit=3)
    compiled.export(str(tmp_path / "libstep.so"))
    header = (tmp_path / "libstep.h").read_text()
    assert "int step(" in header
    rng = np.random.default_rng(0)
    inputs = {n: rng.standard_normal(step.tensor(n).shape) for n in step.inputs}
    want = full(inputs)
    import ctypes

    lib = ctypes.CDLL(str(tmp_path / "libstep.so"))
    outputs = {n: np.empty(step.tensor(n).shape) for n in step.outputs}
    pointers = [a.ctypes.data_as(ctypes.c_void_p)
                for a in [*(inputs[n] for n in step.inputs), *outputs.values()]]
    assert lib.step(*pointers) == 0
    for name, value in want.items():
        np.testing.assert_allclose(outputs[name], value, rtol=1e-12)
