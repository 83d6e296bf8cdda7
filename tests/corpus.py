"""The shared einsum corpus: small named cases run against ``numpy.einsum`` by every test
that executes einsums (path optimizers, schedules, backends).

    from corpus import CORPUS, by_tag  # tests/ is on sys.path under pytest
    for case in CORPUS:
        operands = case.operands(np.random.default_rng(0), "float64")
        expected = case.reference(operands)

Every dimension is at most 8 and every operand small, so the whole corpus compiles and runs
in seconds. Tags say which rule a case exercises: 'matmul', 'diagonal', 'trace',
'broadcast', 'ellipsis', 'implicit', 'multi' (three or more operands), 'scalar',
'zero-size', 'transpose', 'reduce', 'outer', 'hyperedge', 'ml', 'science', 'cc'
(coupled-cluster-like), 'chain'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INTEGER_KINDS = "iub"


@dataclass(frozen=True)
class Case:
    """One einsum: its subscripts, one shape per operand, and tags."""

    name: str
    equation: str
    shapes: tuple[tuple[int, ...], ...]
    tags: frozenset[str] = field(default_factory=frozenset)

    @property
    def n_operands(self) -> int:
        return len(self.shapes)

    def operands(self, rng: np.random.Generator, dtype: object = "float64") -> list[np.ndarray]:
        """Random operands of ``dtype``; small integers for integer dtypes, so sums stay
        exact; values in [-1, 1) (real and imaginary parts) for floating dtypes."""
        return [random_array(rng, shape, dtype) for shape in self.shapes]

    def reference(self, operands: list[np.ndarray], **kwargs: object) -> np.ndarray:
        return np.einsum(self.equation, *operands, **kwargs)

    def __str__(self) -> str:
        return self.name


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: object) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "u":
        return rng.integers(0, 4, size=shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    values = rng.uniform(-1.0, 1.0, size=shape)
    if dtype.kind == "c":
        values = values + 1j * rng.uniform(-1.0, 1.0, size=shape)
    return values.astype(dtype)


def tolerance(dtype: object) -> dict[str, float]:
    """``rtol``/``atol`` for comparing tcc's result with numpy's in ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype.kind in INTEGER_KINDS:
        return {"rtol": 0.0, "atol": 0.0}
    component = np.finfo(dtype).dtype
    return {
        np.dtype("float16"): {"rtol": 2e-2, "atol": 2e-2},
        np.dtype("float32"): {"rtol": 2e-4, "atol": 2e-5},
        np.dtype("float64"): {"rtol": 1e-10, "atol": 1e-12},
    }[component]


def _case(name: str, equation: str, *shapes: tuple[int, ...], tags: str = "") -> Case:
    return Case(name, equation, tuple(tuple(s) for s in shapes), frozenset(tags.split()))


def _chain_equation(n: int) -> tuple[str, list[tuple[int, ...]]]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    terms = [letters[k] + letters[k + 1] for k in range(n)]
    sizes = [2, 3, 4, 2, 3, 4, 2, 3, 4, 2, 3]
    shapes = [(sizes[k], sizes[k + 1]) for k in range(n)]
    return ",".join(terms) + f"->{letters[0]}{letters[n]}", shapes


_CHAIN6, _CHAIN6_SHAPES = _chain_equation(6)

CORPUS: list[Case] = [
    # -- single operand: transposes, reductions, diagonals, traces ----------------------
    _case("identity", "ij->ij", (3, 4), tags="transpose"),
    _case("transpose", "ij->ji", (3, 4), tags="transpose"),
    _case("transpose_implicit", "ji", (3, 4), tags="transpose implicit"),
    _case("permute3", "ijk->kij", (2, 3, 4), tags="transpose"),
    _case("sum_all", "ijk->", (2, 3, 4), tags="reduce scalar"),
    _case("sum_axis", "ijk->ik", (2, 3, 4), tags="reduce"),
    _case("sum_vector", "i->", (7,), tags="reduce scalar"),
    _case("diagonal", "ii->i", (4, 4), tags="diagonal"),
    _case("trace", "ii", (5, 5), tags="trace diagonal scalar implicit"),
    _case("trace_explicit", "ii->", (3, 3), tags="trace diagonal scalar"),
    _case("diag3", "iii->i", (3, 3, 3), tags="diagonal"),
    _case("diag_batch", "iij->j", (3, 3, 4), tags="diagonal reduce"),
    _case("tiijj", "tiijj->ij", (2, 3, 3, 4, 4), tags="diagonal reduce"),
    _case("partial_trace", "ijji->ij", (2, 3, 3, 2), tags="diagonal"),
    _case("diag_keep", "iji->ij", (3, 2, 3), tags="diagonal"),
    _case("vector_copy", "i", (5,), tags="implicit"),
    # -- two operands ------------------------------------------------------------------
    _case("gemm", "ij,jk->ik", (3, 4), (4, 5), tags="matmul"),
    _case("gemm_implicit", "ij,jk", (3, 4), (4, 5), tags="matmul implicit"),
    _case("gemm_tn", "ji,jk->ik", (4, 3), (4, 5), tags="matmul transpose"),
    _case("gemm_out_transposed", "ij,jk->ki", (3, 4), (4, 5), tags="matmul transpose"),
    _case("gemv", "ij,j->i", (5, 4), (4,), tags="matmul"),
    _case("dot", "i,i->", (6,), (6,), tags="reduce scalar"),
    _case("dot_implicit", "i,i", (6,), (6,), tags="reduce scalar implicit"),
    _case("outer", "i,j->ij", (3,), (4,), tags="outer"),
    _case("outer_implicit", "i,j", (3,), (4,), tags="outer implicit"),
    _case("hadamard", "ij,ij->ij", (3, 4), (3, 4), tags="elementwise"),
    _case("frobenius", "ij,ij->", (3, 4), (3, 4), tags="reduce scalar"),
    _case("batched_matmul", "bij,bjk->bik", (2, 3, 4), (2, 4, 3), tags="matmul ml"),
    _case("attention_scores", "bhqd,bhkd->bhqk", (2, 2, 3, 4), (2, 2, 5, 4), tags="ml"),
    _case("attention_values", "bhqk,bhkd->bhqd", (2, 2, 3, 5), (2, 2, 5, 4), tags="ml"),
    _case("axial_attention", "bxyhd,bxzhd->bxyzh", (2, 3, 2, 2, 4), (2, 3, 3, 2, 4), tags="ml"),
    _case("linear_layer", "bsi,oi->bso", (2, 3, 5), (4, 5), tags="ml matmul"),
    _case("conv1d_im2col", "bcl,ock->bol", (2, 3, 4), (5, 3, 2), tags="ml"),
    _case("trace_of_product", "ij,ji->", (4, 3), (3, 4), tags="trace scalar"),
    _case("diag_times_matrix", "ii,ij->ij", (3, 3), (3, 4), tags="diagonal"),
    _case("diag_contract", "iij,jk->ik", (3, 3, 4), (4, 2), tags="diagonal matmul"),
    _case("tensordot2", "ijkl,klmn->ijmn", (2, 3, 2, 3), (2, 3, 2, 2), tags="matmul"),
    _case("kron", "ij,kl->ikjl", (2, 3), (3, 2), tags="outer"),
    _case("row_scale", "ij,i->ij", (3, 4), (3,), tags="elementwise"),
    _case("scalar_times_matrix", ",ij->ij", (), (3, 4), tags="scalar"),
    _case("scalar_times_scalar", ",->", (), (), tags="scalar"),
    _case("scalar_only", "->", (), tags="scalar"),
    _case("scalar_implicit", "i,", (4,), (), tags="scalar implicit"),
    # -- broadcasting (named labels of size 1, ellipsis) ---------------------------------
    _case("bcast_left", "ij,jk->ik", (3, 1), (1, 5), tags="broadcast matmul"),
    _case("bcast_named_reduce", "ij,jk->ik", (3, 4), (1, 5), tags="broadcast"),
    _case("bcast_named_reduce_rev", "ij,jk->ik", (3, 1), (4, 5), tags="broadcast"),
    _case("bcast_elementwise", "ij,ij->ij", (3, 1), (1, 4), tags="broadcast elementwise"),
    _case("bcast_diag", "ii,i->i", (1, 1), (4,), tags="broadcast diagonal"),
    _case("bcast_diag_rev", "i,ii->i", (4,), (1, 1), tags="broadcast diagonal"),
    _case("ellipsis_sum", "...i->...", (2, 3, 4), tags="ellipsis reduce"),
    _case("ellipsis_implicit", "...ij", (2, 3, 4), tags="ellipsis implicit"),
    _case("ellipsis_matmul", "...ij,...jk->...ik", (2, 3, 4), (2, 4, 5),
          tags="ellipsis matmul"),
    _case("ellipsis_bcast", "...ij,...jk->...ik", (2, 1, 3, 4), (3, 4, 2),
          tags="ellipsis broadcast matmul"),
    _case("ellipsis_bcast_rev", "...ij,...jk->...ik", (3, 4), (2, 1, 4, 2),
          tags="ellipsis broadcast matmul"),
    _case("ellipsis_middle", "i...j,j...->i...", (3, 2, 4), (4, 2), tags="ellipsis"),
    _case("ellipsis_out_front", "ij...,jk...->...ik", (2, 3, 4), (3, 2, 4), tags="ellipsis"),
    _case("ellipsis_empty", "...ij,...jk", (3, 4), (4, 2), tags="ellipsis implicit matmul"),
    _case("ellipsis_trace", "...ii->...i", (2, 3, 3), tags="ellipsis diagonal"),
    _case("ellipsis_scalar", "...,...", (), (3, 1), tags="ellipsis scalar broadcast implicit"),
    _case("ellipsis_size1_both", "...i,...i->...", (3, 1, 2), (4, 2),
          tags="ellipsis broadcast"),
    # -- zero-size dimensions ------------------------------------------------------------
    _case("zero_reduced", "ij,jk->ik", (3, 0), (0, 4), tags="zero-size matmul"),
    _case("zero_kept", "ij,jk->ik", (0, 3), (3, 4), tags="zero-size matmul"),
    _case("zero_sum", "i->", (0,), tags="zero-size scalar"),
    _case("zero_trace", "ii", (0, 0), tags="zero-size trace"),
    _case("zero_outer", "i,j->ij", (0,), (3,), tags="zero-size outer"),
    _case("zero_bcast", "ij,ij->ij", (0, 3), (1, 3), tags="zero-size broadcast"),
    _case("zero_multi", "ij,jk,kl->il", (2, 3), (3, 0), (0, 2), tags="zero-size multi"),
    # -- three or more operands ----------------------------------------------------------
    _case("matrix_chain3", "ij,jk,kl->il", (2, 3), (3, 4), (4, 2), tags="multi chain"),
    _case("matrix_chain6", _CHAIN6, *_CHAIN6_SHAPES, tags="multi chain"),
    _case("tucker", "abc,ia,jb,kc->ijk", (2, 3, 2), (3, 2), (2, 3), (4, 2),
          tags="multi science"),
    _case("bilinear", "bi,oij,bj->bo", (2, 3), (4, 3, 2), (2, 2), tags="multi ml"),
    _case("cg_product", "zui,zvj,ijk,uvw->zwk", (2, 2, 3), (2, 3, 2), (3, 2, 2), (2, 3, 3),
          tags="multi science"),
    _case("triple_product", "ia,ja,ka->ijk", (2, 3), (3, 3), (4, 3), tags="multi hyperedge"),
    _case("hadamard_reduce", "ij,ij,ij->i", (3, 4), (3, 4), (3, 4),
          tags="multi hyperedge reduce"),
    _case("hadamard_total", "ij,ij,ij->", (3, 4), (3, 4), (3, 4),
          tags="multi hyperedge scalar"),
    _case("mps_chain", "ax,xby,ycz,zd->abcd", (2, 3), (3, 2, 2), (2, 2, 3), (3, 2),
          tags="multi chain science"),
    _case("mps_norm", "ai,aj,ibk,jbl,kc,lc->", (2, 3), (2, 3), (3, 2, 2), (3, 2, 2), (2, 2),
          (2, 2), tags="multi science scalar"),
    _case("four_index_transform", "pqrs,pi,qj,rk,sl->ijkl", (2, 2, 2, 2), (2, 3), (2, 2),
          (2, 3), (2, 2), tags="multi science"),
    _case("ring_trace", "ij,jk,kl,li->", (2, 3), (3, 4), (4, 2), (2, 2),
          tags="multi trace scalar"),
    _case("triangle", "ab,bc,ca->", (3, 4), (4, 2), (2, 3), tags="multi scalar"),
    _case("disconnected", "ab,bc,de,ef->adcf", (2, 3), (3, 2), (2, 3), (3, 2),
          tags="multi outer"),
    _case("three_outer", "a,b,c->abc", (2,), (3,), (4,), tags="multi outer"),
    _case("diag_in_chain", "ii,ij,jk->k", (3, 3), (3, 4), (4, 2), tags="multi diagonal"),
    _case("multi_implicit", "ij,jk,kl", (2, 3), (3, 4), (4, 2), tags="multi implicit"),
    _case("multi_ellipsis", "...ij,...jk,...kl->...il", (2, 2, 3), (1, 3, 4), (4, 2),
          tags="multi ellipsis broadcast"),
    _case("multi_bcast", "ij,jk,kl->il", (2, 1), (3, 4), (4, 2), tags="multi broadcast"),
    _case("vector_4", "a,a,a,a->a", (5,), (5,), (5,), (5,), tags="multi hyperedge"),
    _case("batched_hyper", "abc,abd,abe->cde", (2, 2, 3), (2, 2, 2), (2, 2, 3),
          tags="multi hyperedge"),
    # -- coupled-cluster-like --------------------------------------------------------------
    _case("cc_transpose", "abcd,aebf->dfce", (2, 3, 2, 3), (2, 3, 3, 2), tags="cc"),
    _case("cc_energy", "ijab,acik,bcjk->", (2, 2, 3, 3), (3, 2, 2, 2), (3, 2, 2, 2),
          tags="cc multi scalar"),
    _case("cc_doubles", "ijab,kica,kjcb->", (2, 2, 3, 3), (2, 2, 3, 3), (2, 2, 3, 3),
          tags="cc multi scalar"),
    _case("cc_ladder", "abef,ijef->abij", (3, 2, 3, 2), (2, 2, 3, 2), tags="cc"),
    _case("cc_ring", "akic,kbcj->abij", (2, 3, 2, 2), (3, 2, 2, 2), tags="cc"),
    _case("cc_t3_like", "abij,ck->abcijk", (2, 2, 2, 2), (2, 3), tags="cc outer"),
]


def by_tag(*tags: str) -> list[Case]:
    """Cases that carry every one of ``tags``."""
    return [case for case in CORPUS if set(tags) <= case.tags]


def by_name(name: str) -> Case:
    for case in CORPUS:
        if case.name == name:
            return case
    raise KeyError(name)
