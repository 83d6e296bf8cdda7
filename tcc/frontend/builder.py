"""Build a tensor-level Program from Python: index-carrying expressions with operators.

    pb = ProgramBuilder(shapes=dict(b=256, i=784, h=128, o=10), dtype="float32")
    X, W1 = pb.input("X", "b i"), pb.input("W1", "h i")
    W2, T = pb.input("W2", "o h"), pb.input("T", "b o")
    H = pb.define("H", "b h", pb.relu(pb.sum("i", X * W1)))
    Y = pb.define("Y", "b o", pb.sum("h", H * W2))
    pb.define("L", "", pb.sum("b o", (Y - T) ** 2))
    program = pb.build()

An expression knows its free indices; ``X["i b"]`` reads a tensor with other indices.
Reductions (``pb.sum``, ``pb.max("j", e)``, ``pb.min``, ``pb.prod``) bind their indices. The
Program IR has one reduction per statement applied to the whole right side, so ``define``
hoists every reduction that is not the whole right side into a temporary named
``<target>_<op>`` (``H_sum`` above: ``H_sum[b,h] = sum_i X[b,i]*W1[h,i]``, then
``H[b,h] = relu(H_sum[b,h])``); temporaries are stored in the compute dtype (float32 for a
float16 program), user tensors in the program dtype. The statement language
(tcc.frontend.program_text) builds through the same class, so both give structurally equal
Programs.

Comparisons (``<``, ``<=``, ``>``, ``>=``, ``pb.eq``, ``pb.ne``) give bool expressions; used in
arithmetic they become 0/1 in the program dtype. ``pb.where(c, a, b)`` is ``c*a + (!c)*b``
(so an inf or NaN in the branch not taken still poisons the result). ``==`` and ``!=`` keep
Python's meaning on expressions; use ``pb.eq``/``pb.ne``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from tcc.dtypes import DTYPES, dtype_of
from tcc.errors import ProgramSyntaxError
from tcc.ir import program as P

UNARY_FUNCTIONS = ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs")


@dataclass(frozen=True, slots=True)
class Reduce:
    """A reduction inside an expression (before statements are split): ``op_{indices} body``."""

    op: str
    indices: tuple[str, ...]
    body: Node


Node = Union[P.Read, P.Constant, P.Unary, P.Binary, P.Cast, Reduce]  # noqa: UP007


def program_error(message: str, subject: str | None = None) -> ProgramSyntaxError:
    """An error about a program; ``subject`` (an index or tensor name) lets the text parser
    point its caret at the offending token."""
    error = ProgramSyntaxError(message)
    error.subject = subject  # type: ignore[attr-defined]
    return error


def free_indices(node: Node) -> tuple[str, ...]:
    """Indices of ``node`` not bound by a reduction inside it, in order of appearance."""
    if isinstance(node, P.Read):
        return tuple(dict.fromkeys(node.indices))
    if isinstance(node, Reduce):
        return tuple(i for i in free_indices(node.body) if i not in node.indices)
    found = [i for child in P.children(node) for i in free_indices(child)]
    return tuple(dict.fromkeys(found))


def is_bool(node: Node) -> bool:
    if isinstance(node, P.Binary):
        return node.op in P.COMPARISONS
    if isinstance(node, P.Select):
        return is_bool(node.if_true) and is_bool(node.if_false)
    if isinstance(node, P.Cast | P.Constant):
        return node.dtype == "bool"
    return False


class Algebra:
    """Builds expression nodes in one compute dtype; bools become 0/1 where numbers are
    needed, negated constants fold. The parser and the builder share it."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    def const(self, value: float | int | bool) -> P.Constant:
        kind = DTYPES[self.dtype].kind
        if kind == "float":
            return P.Constant(float(value), self.dtype)
        if kind == "complex":
            return P.Constant(complex(value), self.dtype)
        if kind == "bool":
            return P.Constant(bool(value), self.dtype)
        if float(value) != int(value):
            raise program_error(f"constant {value} is not an integer ({self.dtype} program)")
        return P.Constant(int(value), self.dtype)

    def num(self, node: Node) -> Node:
        return P.Cast(self.dtype, node) if is_bool(node) and self.dtype != "bool" else node

    def unary(self, op: str, node: Node) -> Node:
        node = self.num(node)
        if op == "neg" and isinstance(node, P.Constant):
            return P.Constant(-node.value, node.dtype)
        return P.Unary(op, node)

    def binary(self, op: str, left: Node, right: Node) -> Node:
        return P.Binary(op, self.num(left), self.num(right))

    def condition(self, node: Node) -> Node:
        return node if is_bool(node) else P.Binary("ne", node, self.const(0))

    def where(self, cond: Node, a: Node, b: Node) -> Node:
        return P.Select(self.condition(cond), self.num(a), self.num(b))

    def reduce(self, op: str, indices: Sequence[str], body: Node) -> Reduce:
        if op not in P.REDUCTIONS:
            raise program_error(f"unknown reduction {op!r}; expected one of {P.REDUCTIONS}")
        if not indices:
            raise program_error(f"{op} needs at least one index to reduce over")
        if len(set(indices)) != len(indices):
            raise program_error(f"{op}_{{{','.join(indices)}}} repeats an index")
        return Reduce(op, tuple(indices), self.num(body))


def split_indices(spec: str | Sequence[str], known: Iterable[str] = ()) -> tuple[str, ...]:
    """``"b i"``, ``"b,i"``, ``["b", "i"]`` -> ``("b", "i")``; ``"bi"`` splits into letters when
    ``bi`` is not a known index but each letter is."""
    if not isinstance(spec, str):
        return tuple(spec)
    tokens = [t for t in re.split(r"[\s,]+", spec.strip()) if t]
    known = set(known)
    if len(tokens) == 1 and tokens[0] not in known and all(c in known for c in tokens[0]):
        return tuple(tokens[0])
    return tuple(tokens)


class Expression:
    """An expression with free indices; combine with + - * / ** and comparisons."""

    __slots__ = ("builder", "node")

    def __init__(self, builder: ProgramBuilder, node: Node) -> None:
        self.builder = builder
        self.node = node

    @property
    def indices(self) -> tuple[str, ...]:
        return free_indices(self.node)

    def _wrap(self, node: Node) -> Expression:
        return Expression(self.builder, node)

    def _binary(self, op: str, other: object, swap: bool = False) -> Expression:
        other_node = self.builder.node(other)
        left, right = (other_node, self.node) if swap else (self.node, other_node)
        return self._wrap(self.builder.algebra.binary(op, left, right))

    def __add__(self, other: object) -> Expression:
        return self._binary("add", other)

    def __radd__(self, other: object) -> Expression:
        return self._binary("add", other, swap=True)

    def __sub__(self, other: object) -> Expression:
        return self._binary("sub", other)

    def __rsub__(self, other: object) -> Expression:
        return self._binary("sub", other, swap=True)

    def __mul__(self, other: object) -> Expression:
        return self._binary("mul", other)

    def __rmul__(self, other: object) -> Expression:
        return self._binary("mul", other, swap=True)

    def __truediv__(self, other: object) -> Expression:
        return self._binary("div", other)

    def __rtruediv__(self, other: object) -> Expression:
        return self._binary("div", other, swap=True)

    def __pow__(self, other: object) -> Expression:
        return self._binary("pow", other)

    def __rpow__(self, other: object) -> Expression:
        return self._binary("pow", other, swap=True)

    def __neg__(self) -> Expression:
        return self._wrap(self.builder.algebra.unary("neg", self.node))

    def __pos__(self) -> Expression:
        return self

    def __lt__(self, other: object) -> Expression:
        return self._binary("lt", other)

    def __le__(self, other: object) -> Expression:
        return self._binary("le", other)

    def __gt__(self, other: object) -> Expression:
        return self._binary("gt", other)

    def __ge__(self, other: object) -> Expression:
        return self._binary("ge", other)

    def eq(self, other: object) -> Expression:
        return self._binary("eq", other)

    def ne(self, other: object) -> Expression:
        return self._binary("ne", other)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError("a tcc expression has no truth value; use pb.where for conditions")

    def __repr__(self) -> str:
        from tcc.ir.printer import format_expr

        if isinstance(self.node, Reduce):
            return f"<{self.node.op}_{{{','.join(self.node.indices)}}} ...>"
        try:
            return f"<{format_expr(self.node)}>"
        except TypeError:
            return f"<expression over {self.indices}>"


class TensorRef(Expression):
    """A read of a named tensor with its declared indices; index it to read it with others:
    ``A["j i"]``, ``A["j", "i"]`` or ``A("j", "i")``."""

    __slots__ = ("name",)

    def __init__(self, builder: ProgramBuilder, name: str, indices: tuple[str, ...]) -> None:
        super().__init__(builder, builder.read(name, indices))
        self.name = name

    def __getitem__(self, spec: str | Sequence[str]) -> Expression:
        if spec == () or spec == "":
            return self._wrap(self.builder.read(self.name, ()))
        indices = split_indices(spec, self.builder.sizes) if isinstance(spec, str) else spec
        return self._wrap(self.builder.read(self.name, tuple(indices)))

    def __call__(self, *indices: str) -> Expression:
        return self[tuple(indices)]


class ProgramBuilder:
    """Collects inputs and statements; ``build()`` returns the Program.

    ``shapes`` (or keyword arguments) gives each index's size; a tensor's shape follows from
    the indices it is declared or defined with.
    """

    def __init__(
        self,
        shapes: Mapping[str, int] | None = None,
        dtype: object = "float32",
        *,
        auto_inputs: bool = False,
        reserved: Iterable[str] = (),
        **sizes: int,
    ) -> None:
        self.sizes: dict[str, int] = {**dict(shapes or {}), **sizes}
        for index, size in self.sizes.items():
            if not isinstance(size, int) or size < 0:
                raise program_error(f"index {index!r} has size {size!r}; expected an int >= 0")
        self.dtype = dtype_of(dtype).name
        self.compute = DTYPES[self.dtype].compute
        self.algebra = Algebra(self.compute)
        self.auto_inputs = auto_inputs
        self.reserved = set(reserved)
        self.declared: dict[str, P.Tensor] = {}
        self.declared_indices: dict[str, tuple[str, ...]] = {}
        self.inputs: list[str] = []
        self.assigned: list[str] = []
        self.temporaries: set[str] = set()
        self.read_order: list[str] = []
        self.statements: list[P.Statement] = []
        self.used_indices: set[str] = set()

    # -- tensors -----------------------------------------------------------------------
    def _shape(self, name: str, indices: tuple[str, ...]) -> tuple[int, ...]:
        for index in indices:
            if index not in self.sizes:
                raise program_error(
                    f"index {index!r} of {name} has no size; give it in shapes=", subject=index
                )
        self.used_indices.update(indices)
        return tuple(self.sizes[i] for i in indices)

    def _declare(self, name: str, indices: tuple[str, ...], dtype: str | None = None
                 ) -> P.Tensor:
        if not name.isidentifier():
            raise program_error(f"tensor name {name!r} is not an identifier", subject=name)
        tensor = P.Tensor(name, self._shape(name, indices), dtype or self.dtype)
        self.declared[name] = tensor
        self.declared_indices[name] = indices
        return tensor

    def input(self, name: str, indices: str | Sequence[str] = ()) -> TensorRef:
        """Declare an input tensor read as ``name[indices]``."""
        if name in self.declared:
            raise program_error(f"tensor {name!r} is already declared", subject=name)
        self._declare(name, split_indices(indices, self.sizes))
        self.inputs.append(name)
        return TensorRef(self, name, split_indices(indices, self.sizes))

    def tensor(self, name: str) -> TensorRef:
        """A reference to a declared or defined tensor (read with ``ref["i j"]``)."""
        if name not in self.declared:
            raise program_error(f"unknown tensor {name!r}", subject=name)
        return TensorRef(self, name, self.declared_indices[name])

    def read(self, name: str, indices: tuple[str, ...]) -> P.Expr:
        """The node reading ``name[indices]``, checked against the tensor's shape."""
        tensor = self.declared.get(name)
        if tensor is None:
            if not self.auto_inputs:
                raise program_error(f"unknown tensor {name!r}", subject=name)
            tensor = self._declare(name, indices)
            self.inputs.append(name)
        if len(indices) != len(tensor.shape):
            raise program_error(
                f"{name} has {len(tensor.shape)} indices (shape {tensor.shape}), "
                f"read as {name}[{','.join(indices)}]",
                subject=name,
            )
        shape = self._shape(name, indices)
        for index, size, expected in zip(indices, shape, tensor.shape, strict=True):
            if size != expected:
                raise program_error(
                    f"{name} has shape {tensor.shape}, but index {index!r} of "
                    f"{name}[{','.join(indices)}] has size {size}",
                    subject=index,
                )
        read: P.Expr = P.Read(name, indices)
        if self.compute != self.dtype:
            return P.Cast(self.compute, read)
        return read

    def node(self, value: object) -> Node:
        if isinstance(value, Expression):
            if value.builder is not self:
                raise program_error("expression from another ProgramBuilder")
            return value.node
        if isinstance(value, bool | int | float | complex):
            return self.algebra.const(value)  # type: ignore[arg-type]
        raise TypeError(f"cannot use {type(value).__name__} in a tcc expression")

    # -- operations --------------------------------------------------------------------
    def const(self, value: float) -> Expression:
        return Expression(self, self.algebra.const(value))

    def _unary(self, op: str, x: object) -> Expression:
        return Expression(self, self.algebra.unary(op, self.node(x)))

    def exp(self, x: object) -> Expression:
        return self._unary("exp", x)

    def log(self, x: object) -> Expression:
        return self._unary("log", x)

    def sqrt(self, x: object) -> Expression:
        return self._unary("sqrt", x)

    def tanh(self, x: object) -> Expression:
        return self._unary("tanh", x)

    def sigmoid(self, x: object) -> Expression:
        return self._unary("sigmoid", x)

    def relu(self, x: object) -> Expression:
        return self._unary("relu", x)

    def abs(self, x: object) -> Expression:
        return self._unary("abs", x)

    def _binary(self, op: str, a: object, b: object) -> Expression:
        return Expression(self, self.algebra.binary(op, self.node(a), self.node(b)))

    def maximum(self, a: object, b: object) -> Expression:
        return self._binary("max", a, b)

    def minimum(self, a: object, b: object) -> Expression:
        return self._binary("min", a, b)

    def eq(self, a: object, b: object) -> Expression:
        return self._binary("eq", a, b)

    def ne(self, a: object, b: object) -> Expression:
        return self._binary("ne", a, b)

    def where(self, cond: object, a: object, b: object) -> Expression:
        return Expression(self, self.algebra.where(self.node(cond), self.node(a), self.node(b)))

    def reduce(self, op: str, indices: str | Sequence[str], body: object) -> Expression:
        """``op_{indices} body`` for op in sum, prod, max, min."""
        index_tuple = split_indices(indices, self.sizes)
        return Expression(self, self.algebra.reduce(op, index_tuple, self.node(body)))

    def sum(self, indices: str | Sequence[str], body: object) -> Expression:
        return self.reduce("sum", indices, body)

    def prod(self, indices: str | Sequence[str], body: object) -> Expression:
        return self.reduce("prod", indices, body)

    def max(self, indices_or_a: object, body_or_b: object) -> Expression:
        """``max("j", e)`` reduces over j; ``max(a, b)`` is the elementwise maximum."""
        if isinstance(indices_or_a, str | list | tuple):
            return self.reduce("max", indices_or_a, body_or_b)  # type: ignore[arg-type]
        return self.maximum(indices_or_a, body_or_b)

    def min(self, indices_or_a: object, body_or_b: object) -> Expression:
        """``min("j", e)`` reduces over j; ``min(a, b)`` is the elementwise minimum."""
        if isinstance(indices_or_a, str | list | tuple):
            return self.reduce("min", indices_or_a, body_or_b)  # type: ignore[arg-type]
        return self.minimum(indices_or_a, body_or_b)

    # -- statements --------------------------------------------------------------------
    def define(
        self,
        name: str,
        indices: str | Sequence[str],
        value: object,
        *,
        accumulate: bool = False,
    ) -> TensorRef:
        """``name[indices] = value`` (``+=`` with ``accumulate``); returns a reference to it."""
        index_tuple = split_indices(indices, self.sizes)
        self.define_node(name, index_tuple, self.node(value), accumulate=accumulate)
        return TensorRef(self, name, index_tuple)

    def define_node(
        self, name: str, indices: tuple[str, ...], node: Node, *, accumulate: bool = False
    ) -> None:
        """``define`` on a raw node (what the statement parser calls)."""
        if len(set(indices)) != len(indices):
            raise program_error(f"{name}[{','.join(indices)}]: an output index repeats")
        if name in self.inputs:
            raise program_error(f"{name} is an input (it was read before); it cannot be "
                                "assigned", subject=name)
        shape = self._shape(name, indices)
        if accumulate:
            if name not in self.assigned:
                raise program_error(f"{name} += ... before {name} is assigned", subject=name)
            if self.declared[name].shape != shape:
                raise program_error(
                    f"{name} has shape {self.declared[name].shape}; "
                    f"{name}[{','.join(indices)}] has shape {shape}", subject=name)
        elif name in self.declared:
            what = "a temporary" if name in self.temporaries else "already assigned"
            raise program_error(f"{name} is {what}; use += to add to it", subject=name)
        if _reads_tensor(node, name):
            raise program_error(f"{name} is read on the right of its own statement",
                                subject=name)
        _check_bindings(node, set(indices))
        if isinstance(node, Reduce):
            reduce, body = node.op, self._hoist(node.body, name, indices)
            free = [i for i in free_indices(body) if i not in node.indices]
        else:
            reduce, body = None, self._hoist(node, name, indices)
            free = list(free_indices(body))
        stray = [i for i in free if i not in indices]
        if stray:
            raise program_error(
                f"index {stray[0]!r} appears on the right of {name}[{','.join(indices)}] but not "
                f"on the left; reduce over it (sum_{stray[0]} ...) or add it to the left",
                subject=stray[0],
            )
        if not accumulate:
            self._declare(name, indices)
            self.assigned.append(name)
        self._emit(name, indices, reduce, body, accumulate)

    def _emit(self, name, indices, reduce, body, accumulate=False) -> None:
        for read in P.reads(body):
            if read.tensor not in self.read_order:
                self.read_order.append(read.tensor)
        self.statements.append(
            P.Statement(name, tuple(indices), reduce, body, self.compute, accumulate)
        )

    def _temporary_name(self, target: str, op: str) -> str:
        taken = set(self.declared) | self.reserved
        name, k = f"{target}_{op}", 1
        while name in taken:
            name, k = f"{target}_{op}{k}", k + 1
        return name

    def _hoist(self, node: Node, target: str, target_indices: tuple[str, ...]) -> P.Expr:
        """``node`` with every reduction replaced by a read of a new temporary."""
        if isinstance(node, Reduce):
            body = self._hoist(node.body, target, target_indices)
            free = [i for i in free_indices(body) if i not in node.indices]
            indices = tuple(
                [i for i in target_indices if i in free]
                + [i for i in free if i not in target_indices]
            )
            name = self._temporary_name(target, node.op)
            self._declare(name, indices, self.compute)  # read back without a cast
            self.temporaries.add(name)
            self.assigned.append(name)
            self._emit(name, indices, node.op, body)
            return P.Read(name, indices)
        hoisted = tuple(self._hoist(c, target, target_indices) for c in P.children(node))
        return P.with_children(node, hoisted)

    # -- result ------------------------------------------------------------------------
    def default_outputs(self) -> tuple[str, ...]:
        """Tensors assigned but not read by a later statement (user tensors only)."""
        outputs = []
        for name in self.assigned:
            if name in self.temporaries:
                continue
            last = max(k for k, s in enumerate(self.statements) if s.target == name)
            later = self.statements[last + 1:]
            if not any(r.tensor == name for s in later for r in P.reads(s.expr)):
                outputs.append(name)
        return tuple(outputs)

    def build(self, outputs: Sequence[str] | None = None) -> P.Program:
        if outputs is None:
            outputs = self.default_outputs()
        outputs = tuple(outputs)
        for name in outputs:
            if name not in self.assigned:
                what = "an input" if name in self.inputs else "never assigned"
                raise program_error(f"output {name!r} is {what}", subject=name)
        if not outputs:
            raise program_error("the program has no outputs")
        used = [n for n in self.read_order if n in self.inputs]
        inputs = (*used, *(n for n in self.inputs if n not in used))
        tensors = (*(self.declared[n] for n in inputs), *(self.declared[n] for n in self.assigned))
        return P.Program(
            tensors=tensors,
            inputs=inputs,
            outputs=outputs,
            statements=tuple(self.statements),
            index_sizes=tuple(sorted((i, self.sizes[i]) for i in self.used_indices)),
        )


def _reads_tensor(node: Node, name: str) -> bool:
    if isinstance(node, P.Read):
        return node.tensor == name
    if isinstance(node, Reduce):
        return _reads_tensor(node.body, name)
    return any(_reads_tensor(child, name) for child in P.children(node))


def _check_bindings(node: Node, bound: set[str]) -> None:
    """A reduction may not rebind an output index or an enclosing reduction's index, and
    must reduce over indices its body has."""
    if isinstance(node, Reduce):
        for index in node.indices:
            if index in bound:
                raise program_error(
                    f"{node.op}_{index} reduces over {index!r}, which is already bound (an "
                    "output index or an enclosing reduction's)", subject=index)
        body_free = free_indices(node.body)
        for index in node.indices:
            if index not in body_free:
                raise program_error(
                    f"{node.op}_{index}: index {index!r} does not appear in what it reduces",
                    subject=index)
        _check_bindings(node.body, bound | set(node.indices))
    else:
        for child in P.children(node):
            _check_bindings(child, bound)
