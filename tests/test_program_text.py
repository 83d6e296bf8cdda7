"""The statement language and the Python builder: parsing, splitting, errors, equality."""

from __future__ import annotations

import pytest

from tcc.errors import ProgramSyntaxError, TccError
from tcc.frontend.builder import ProgramBuilder
from tcc.frontend.program_text import program, tokenize
from tcc.ir import program as P
from tcc.ir.printer import format_program
from tcc.ir.verify import verify_program

MLP = """
H[b,h]  = relu(sum_i X[b,i] * W1[h,i])
Y[b,o]  = sum_h H[b,h] * W2[o,h]
L[]     = sum_{b,o} (Y[b,o] - T[b,o])^2
"""
SIZES = dict(b=3, i=4, h=5, o=2)


def mlp_builder(dtype: str = "float64") -> P.Program:
    pb = ProgramBuilder(shapes=SIZES, dtype=dtype)
    X, W1 = pb.input("X", "b i"), pb.input("W1", "h i")
    W2, T = pb.input("W2", "o h"), pb.input("T", "b o")
    H = pb.define("H", "b h", pb.relu(pb.sum("i", X * W1)))
    Y = pb.define("Y", "b o", pb.sum("h", H * W2))
    pb.define("L", "", pb.sum("b o", (Y - T) ** 2))
    return pb.build()


def test_mlp_example_structure():
    prog = verify_program(program(MLP, shapes=SIZES, dtype="float64"))
    assert prog.inputs == ("X", "W1", "W2", "T")
    assert prog.outputs == ("L",)
    assert prog.tensor("L").shape == ()
    assert prog.tensor("W1").shape == (5, 4)
    assert prog.tensor("H_sum").shape == (3, 5)
    assert format_program(prog).splitlines()[-4:] == [
        "H_sum[b, h] = sum_{i} X[b, i] * W1[h, i]  : float64",
        "H[b, h] = relu(H_sum[b, h])  : float64",
        "Y[b, o] = sum_{h} H[b, h] * W2[o, h]  : float64",
        "L[] = sum_{b,o} pow(Y[b, o] - T[b, o], 2.0)  : float64",
    ]
    assert [s.reduce for s in prog.statements] == ["sum", None, "sum", "sum"]
    assert prog.index_sizes == tuple(sorted(SIZES.items()))


def test_builder_equals_text():
    assert mlp_builder() == program(MLP, shapes=SIZES, dtype="float64")
    assert mlp_builder("float32") == program(MLP, shapes=SIZES)


def test_builder_equals_text_softmax_and_semirings():
    text = """
    M[t]   = max_s S[t,s]
    Z[t]   = log(sum_s exp(S[t,s] - M[t])) + M[t]      # log-sum-exp
    P[t,s] = exp(S[t,s] - Z[t])
    C[i,k] = max_j A[i,j] + B[j,k]                       # max-plus
    D[i,k] = min(C[i,k], 0.5) * where(C[i,k] > 0, 1, -A[i,k]) + abs(-B[i,k]) / 2
    """
    sizes = dict(t=3, s=3, i=3, j=3, k=3)
    pb = ProgramBuilder(shapes=sizes, dtype="float64")
    S, A, B = pb.input("S", "t s"), pb.input("A", "i j"), pb.input("B", "j k")
    M = pb.define("M", "t", pb.max("s", S))
    Z = pb.define("Z", "t", pb.log(pb.sum("s", pb.exp(S - M))) + M)
    pb.define("P", "t s", pb.exp(S - Z))
    C = pb.define("C", "i k", pb.max("j", A + B))
    pb.define("D", "i k", pb.min(C, 0.5) * pb.where(C > 0, 1, -A["i k"]) + pb.abs(-B["i k"]) / 2)
    assert pb.build() == program(text, shapes=sizes, dtype="float64")


def test_every_operator_parses():
    text = (
        "R[i] = -A[i] + B[i] - A[i] * B[i] / 2 ^ 3 ** 1 + exp(A[i]) + log(B[i]) + sqrt(B[i])"
        " + tanh(A[i]) + sigmoid(A[i]) + relu(A[i]) + abs(A[i]) + max(A[i], B[i])"
        " + min(A[i], 1e-3) + where(A[i] <= B[i], A[i], .5) + (A[i] < B[i]) + (A[i] > 0)"
        " + (A[i] >= 0) + (A[i] == B[i]) + (A[i] != B[i]) + (prod_j C[i,j]) + min_j C[i,j]"
    )
    prog = verify_program(program(text, shapes=dict(i=2, j=3)))
    ops = set()

    def walk(e):
        if isinstance(e, P.Unary | P.Binary):
            ops.add(e.op)
        if isinstance(e, P.Select):
            ops.add("where")
        for child in P.children(e):
            walk(child)

    for stmt in prog.statements:
        walk(stmt.expr)
    assert set(P.COMPARISONS) | {"where"} <= ops
    assert {"neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs"} <= ops
    assert {"add", "sub", "mul", "div", "pow", "max", "min"} <= ops
    assert sorted(s.reduce for s in prog.statements if s.reduce) == ["min", "prod"]


def test_precedence():
    def expr(text):
        return program("R[i] = " + text, shapes=dict(i=2), dtype="float64").statements[-1].expr

    a, b = P.Read("A", ("i",)), P.Read("B", ("i",))
    two = P.Constant(2.0, "float64")
    assert expr("-A[i]^2") == P.Unary("neg", P.Binary("pow", a, two))
    assert expr("A[i] - B[i] - 2") == P.Binary("sub", P.Binary("sub", a, b), two)
    assert expr("A[i] ^ B[i] ^ 2") == P.Binary("pow", a, P.Binary("pow", b, two))
    assert expr("A[i] + B[i] * 2") == P.Binary("add", a, P.Binary("mul", b, two))
    assert expr("-2 * A[i]") == P.Binary("mul", P.Constant(-2.0, "float64"), a)


def test_reduction_extends_right_and_nested_reductions_split():
    prog = program("L[] = 2 * sum_i A[i] * B[i] + 1", shapes=dict(i=4), dtype="float64")
    (tmp, out) = prog.statements
    assert tmp.target == "L_sum" and tmp.reduce == "sum"
    assert tmp.expr == P.Binary("add", P.Binary("mul", P.Read("A", ("i",)), P.Read("B", ("i",))),
                                P.Constant(1.0, "float64"))
    assert out.expr == P.Binary("mul", P.Constant(2.0, "float64"), P.Read("L_sum", ()))
    nested = program("Y[b] = sum_j exp(sum_k A[b,j,k])", shapes=dict(b=2, j=3, k=4))
    assert [(s.target, s.indices, s.reduce) for s in nested.statements] == [
        ("Y_sum", ("b", "j"), "sum"), ("Y", ("b",), "sum")]


def test_separators_comments_accumulate_and_outputs():
    text = "A[i] = X[i] * 2; B[i] = A[i] + 1  # comment\nB[i] += X[i]\nC[] = sum_i (B[i]\n + A[i])"
    prog = verify_program(program(text, shapes=dict(i=3)))
    assert prog.outputs == ("C",)
    assert [s.accumulate for s in prog.statements] == [False, False, True, False]
    prog = program(text, shapes=dict(i=3), outputs=["A", "C"])
    assert prog.outputs == ("A", "C")
    scalar = program("S = sum_i X[i]\nR[i] = X[i] * S", shapes=dict(i=3))
    assert scalar.statements[1].expr.right == P.Read("S", ())
    assert program("R[i] = X[i]", i=2).index_sizes == (("i", 2),)


def _error(text, **sizes):
    with pytest.raises(ProgramSyntaxError) as info:
        program(text, shapes=sizes or dict(b=3, i=4, h=5, o=2, j=3))
    return info.value


def test_errors_have_line_column_and_caret():
    err = _error("H[b,h] = relu(sum_i X[b,i] * W1[h,i])\nY[b,o] = sum_h H[b,h] * W2[o,j]")
    assert (err.line, err.column) == (2, 30)
    assert "'j'" in str(err) and "sum_j" in str(err)
    lines = str(err).splitlines()
    assert lines[1].strip() == "Y[b,o] = sum_h H[b,h] * W2[o,j]"
    assert lines[2].index("^") == lines[1].index("W2[o,j]") + 5
    assert isinstance(err, TccError) and isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ("Y[b,o] = H[b,h] * W2[o,h]", 1, 14, "'h' appears on the right"),
        ("Y[b,o] = sum_h (H[b,h] * W2[o,h]", 1, 33, "expected ')'"),
        ("Y[b] = sum_ij A[b,i,j]", 1, 8, "did you mean sum_{i,j}"),
        ("Y[b] = A[b] $ 2", 1, 13, "unexpected character"),
        ("Y[b] = foo(A[b])", 1, 8, "unknown function 'foo'"),
        ("Y[b] = max(A[b])", 1, 8, "takes 2 argument"),
        ("Y[b] = A[b] +", 1, 14, "expected an expression"),
        ("Y[b] = A[b]\nY[b] = A[b] * 2", 2, 1, "already assigned"),
        ("Y[b] = A[b]\nZ[b] = A[b,i]", 2, 8, "has 1 indices"),
        ("Y[b] = A[b]\nZ[i] = A[i]", 2, 10, "index 'i' of A[i] has size 4"),
        ("Y[q] = A[q]", 1, 10, "no size"),
        ("Y[b] = sum_b A[b]", 1, 8, "already bound"),
        ("Y[b] = sum_i A[b]", 1, 8, "does not appear"),
        ("Y[b] = Z[b]\nZ[b] = A[b]", 1, 8, "read before it is assigned"),
        ("Y[b] = Y[b] + 1", 1, 8, "read before"),
        ("Y[b] = A[b] < B[b] < C[b]", 1, 20, "do not chain"),
        ("Y[b] = A[b] b", 1, 13, "unexpected 'b'"),
        ("Y[b] += A[b]", 1, 1, "before Y is assigned"),
        ("Y[b,b] = A[b]", 1, 1, "repeats"),
        ("Y[b] = b * 2", 1, 8, "is an index"),
    ],
)
def test_error_positions(text, line, column, needle):
    err = _error(text)
    assert needle in str(err)
    assert (err.line, err.column) == (line, column)


def test_builder_errors_and_reindexing():
    pb = ProgramBuilder(shapes=dict(i=2, j=3), dtype="float64")
    A = pb.input("A", "i j")
    with pytest.raises(ProgramSyntaxError, match="'j' appears on the right"):
        pb.define("B", "i", A * 2)
    with pytest.raises(ProgramSyntaxError, match="has shape"):
        _ = A["j i"]
    At = pb.define("At", "j i", A("i", "j"))
    assert At.indices == ("j", "i")
    assert pb.tensor("A")["i j"].node == A.node
    with pytest.raises(TypeError, match="truth value"):
        bool(A < 1)
    assert pb.build().outputs == ("At",)
    with pytest.raises(ProgramSyntaxError, match="has no size"):
        program("A[i] = sum_q X[i,q]", shapes=dict(i=2))
    with pytest.raises(ProgramSyntaxError, match="output 'X' is an input"):
        program("A[i] = X[i]", shapes=dict(i=2), outputs=["X"])


def test_tokenize_positions():
    tokens = tokenize("A[i] = (B[i]\n  + 1)  # c\nC = 2")
    assert [(t.text, t.line, t.column) for t in tokens if t.text in ("+", "C")] == [
        ("+", 2, 3), ("C", 3, 1)]
    assert [t.kind for t in tokens].count("newline") == 1


def test_continuation_lines():
    text = "A[i] = X[i] *\n  2\nB[i] = A[i]\n  + X[i]\n  - 1"
    prog = program(text, shapes=dict(i=3))
    assert [s.target for s in prog.statements] == ["A", "B"]
    assert prog.statements[1].expr.op == "sub"
