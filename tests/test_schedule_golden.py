"""Golden printed IR for each schedule primitive on a small GEMM (exact text)."""

from __future__ import annotations

import pytest
from test_schedule_support import einsum_kernel

from tcc.ir.printer import format_kernel
from tcc.ir.verify import verify_kernel
from tcc.passes.schedule import primitives

KERNELS = {
    # C[a, c] = sum_b A[a, b] * B[b, c], reduction innermost into a local
    "acc": lambda: einsum_kernel("ij,jk->ik", [(4, 3), (3, 6)], order=["a", "c", "b"]),
    # the same GEMM lowered to a zeroing nest and an accumulation in memory
    "mem": lambda: einsum_kernel("ij,jk->ik", [(4, 3), (3, 6)]),
    "red": lambda: einsum_kernel("ijk->ij", [(2, 3, 4)]),
}

ACC_BEFORE = """\
  for a in 0..4:
    for c in 0..6:
      acc: float64 = 0.0
      for b in 0..3:
        acc = (acc +~ (in0[3*a + b] * in1[6*b + c]))
      out[6*a + c] = acc
"""

GOLDEN = [
    ('split', 'acc', ('c', 4), {}, """\
  for a in 0..4:
    for c.outer in 0..2:
      for c.inner in 0..4 while < (-4*c.outer + 6):
        acc: float64 = 0.0
        for b in 0..3:
          acc = (acc +~ (in0[3*a + b] * in1[6*b + c.inner + 4*c.outer]))
        out[6*a + c.inner + 4*c.outer] = acc
"""),
    ('reorder', 'acc', ('c', 'a'), {}, """\
  for c in 0..6:
    for a in 0..4:
      acc: float64 = 0.0
      for b in 0..3:
        acc = (acc +~ (in0[3*a + b] * in1[6*b + c]))
      out[6*a + c] = acc
"""),
    ('tile', 'acc', ('a', 'c', 2, 4), {}, """\
  for a.outer in 0..2:
    for c.outer in 0..2:
      for a.inner in 0..2:
        for c.inner in 0..4 while < (-4*c.outer + 6):
          acc: float64 = 0.0
          for b in 0..3:
            acc = (acc +~ (in0[3*a.inner + 6*a.outer + b] * in1[6*b + c.inner + 4*c.outer]))
          out[6*a.inner + 12*a.outer + c.inner + 4*c.outer] = acc
"""),
    ('unroll', 'acc', ('b',), {}, """\
  for a in 0..4:
    for c in 0..6:
      acc: float64 = 0.0
      acc = (acc +~ (in0[3*a] * in1[c]))
      acc = (acc +~ (in0[3*a + 1] * in1[c + 6]))
      acc = (acc +~ (in0[3*a + 2] * in1[c + 12]))
      out[6*a + c] = acc
"""),
    ('parallel', 'acc', ('a',), {}, """\
  for a in 0..4:  # parallel
    for c in 0..6:
      acc: float64 = 0.0
      for b in 0..3:
        acc = (acc +~ (in0[3*a + b] * in1[6*b + c]))
      out[6*a + c] = acc
"""),
    ('pack', 'acc', ('in1', 'a'), {'layout': ('c', 'b')}, """\
  for a in 0..4:
    allocate in1_pack: float64[18]:
      for in1.c in 0..6:
        for in1.b in 0..3:
          in1_pack[in1.b + 3*in1.c] = in1[6*in1.b + in1.c]
      for c in 0..6:
        acc: float64 = 0.0
        for b in 0..3:
          acc = (acc +~ (in0[3*a + b] * in1_pack[b + 3*c]))
        out[6*a + c] = acc
"""),
    ('vectorize', 'mem', ('c#1', 4), {}, """\
  for a in 0..4:
    for c in 0..6:
      out[6*a + c] = 0.0
  for a in 0..4:
    for b in 0..3:
      for c in 0..1:  # vectorize
        out[6*a + 4*c] = (out[6*a + 4*c : +4] +~ (broadcast4(in0[3*a + b]) * in1[6*b + 4*c : +4]))
      for c.tail in 0..2:
        out[6*a + c.tail + 4] = (out[6*a + c.tail + 4] +~ (in0[3*a + b] * in1[6*b + c.tail + 4]))
"""),
    ('fuse', 'red', ('a#0', 'b#0'), {}, """\
  for a_b in 0..6:
    out[a_b] = 0.0
  for a in 0..2:
    for c in 0..4:
      for b in 0..3:
        out[3*a + b] = (out[3*a + b] +~ in0[12*a + 4*b + c])
"""),
]


def body_text(kernel) -> str:
    return "\n".join(format_kernel(kernel).splitlines()[1:]) + "\n"


def test_unscheduled_gemm():
    assert body_text(KERNELS["acc"]()) == ACC_BEFORE


@pytest.mark.parametrize("case", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(case):
    name, base, args, kwargs, expected = case
    kernel = getattr(primitives, name)(KERNELS[base](), *args, **kwargs)
    verify_kernel(kernel)
    assert body_text(kernel) == expected
