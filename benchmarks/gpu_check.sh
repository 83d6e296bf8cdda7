#!/bin/bash
# One device session: environment, the CUDA tests, PTX resource report, benchmarks/gpu.py.
# Run on the GPU machine from the repository root; logs go to $OUT (or ./out).
# Carry .whl (an llvmlite wheel for the machine's Python) when its own llvmlite is too old.
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c "import llvmlite, sys; sys.exit(tuple(map(int, llvmlite.__version__.split('.')[:2])) < (0, 50))"; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
  python3 -c "import llvmlite, numpy, sys; print(sys.version.split()[0], 'llvmlite', llvmlite.__version__, 'numpy', numpy.__version__)"
} 2>&1 | tee "$OUT/env.txt"
python3 - <<'PY' 2>&1 | tee "$OUT/ptxas.txt"
import os, subprocess, tempfile, tcc
for eq, shapes in [("ik,kj->ij", [(4096, 4096), (4096, 4096)]),
                   ("abcd,dbef->aecf", [(64, 32, 64, 64), (64, 32, 64, 64)]),
                   ("ij,ij,ij->i", [(8192, 8192)] * 3)]:
    k = tcc.compile(eq, *shapes, dtype="float32", target="cuda", load=False)
    path = os.path.join(tempfile.mkdtemp(), "k.ptx")
    open(path, "w").write(k.ptx())
    r = subprocess.run(["ptxas", "-arch=sm_90", "-v", path, "-o", path + ".cubin"],
                       capture_output=True, text=True)
    print(eq, r.returncode, r.stderr.strip())
PY
timeout ${TEST_TIMEOUT:-240} python3 -m pytest --maxfail=30 -q -p no:cacheprovider tests/test_cuda_runtime.py tests/test_cuda_ptx.py tests/test_cuda_schedule.py tests/test_tune_gpu.py 2>&1 | tee "$OUT/tests.txt" | tail -25
timeout ${BENCH_TIMEOUT:-300} python3 benchmarks/gpu.py "$@" 2>&1 | tee "$OUT/bench.txt"
