"""The statement language: text -> tensor-level Program.

    H[b,h]  = relu(sum_i X[b,i] * W1[h,i])
    Y[b,o]  = sum_h H[b,h] * W2[o,h]
    L[]     = sum_{b,o} (Y[b,o] - T[b,o])^2

One statement per line (or separated by ``;``; a statement continues over newlines inside
brackets and around a binary operator that ends a line or starts the next; ``#`` starts a
comment). ``OUT[idx] = expr`` assigns, ``OUT[idx] += expr`` adds
to an assigned tensor. Grammar, loosest binding first::

    expr       := reduction | comparison
    reduction  := (sum|prod|max|min)_i expr  |  (sum|prod|max|min)_{i,j} expr
    comparison := additive [(< | <= | > | >= | == | !=) additive]
    additive   := term {(+ | -) term}
    term       := unary {(* | /) unary}
    unary      := - unary | + unary | power
    power      := primary [(^ | **) unary]           (right-associative; -x^2 is -(x^2))
    primary    := number | ( expr ) | reduction | f(expr) | max(a, b) | min(a, b)
                | where(c, a, b) | NAME[i, j, ...] | NAME          (NAME alone: a scalar)

A reduction reaches as far right as it can (``sum_i A[i]*B[i] + C[i]`` sums the whole
sum); parenthesize to stop it. Functions: exp log sqrt tanh sigmoid relu abs. Semiring
forms work as written: ``C[i,k] = max_j A[i,j] + B[j,k]`` (max-plus), and log-sum-exp as a
composition, ``LSE[i] = M[i] + log(sum_j exp(S[i,j] - M[i]))``.

Tensors read but never assigned are the inputs (in order of first use); their shapes
follow from their indices and ``shapes``. Statements go through
:class:`tcc.frontend.builder.ProgramBuilder`, which splits reductions nested in a larger
expression into temporaries; the builder and the text give equal Programs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tcc.errors import ProgramSyntaxError
from tcc.frontend.builder import UNARY_FUNCTIONS, Node, ProgramBuilder
from tcc.ir import program as P

_TOKEN = re.compile(
    r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|\+=|<=|>=|==|!=|[-+*/^()\[\]{},;=<>])"
    r"|(?P<newline>\n)"
    r"|(?P<space>[ \t\r]+|\#[^\n]*|\\\n)"
)
_REDUCTION = re.compile(r"^(sum|prod|max|min)_(.*)$")
_COMPARE = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | name | op | newline | end
    text: str
    line: int
    column: int  # 1-based


def syntax_error(text: str, line: int, column: int, message: str) -> ProgramSyntaxError:
    """An error whose message shows the source line with a caret under ``column``."""
    lines = text.split("\n")
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    caret = " " * (column - 1) + "^"
    return ProgramSyntaxError(
        f"line {line}, column {column}: {message}\n    {source}\n    {caret}", line, column
    )


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    line, line_start, depth, pos = 1, 0, 0, 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        column = pos - line_start + 1
        if match is None:
            raise syntax_error(text, line, column, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup
        value = match.group()
        if kind == "op" and value in _OPEN:
            depth += 1
        elif kind == "op" and value in _CLOSE:
            depth = max(depth - 1, 0)
        if kind == "newline" and depth == 0:
            tokens.append(Token("newline", value, line, column))
        elif kind in ("number", "name", "op"):
            tokens.append(Token(kind, value, line, column))  # type: ignore[arg-type]
        pos = match.end()
        if "\n" in value:
            line += value.count("\n")
            line_start = pos
    tokens.append(Token("end", "", line, pos - line_start + 1))
    return _join_continued_lines(tokens)


_CONTINUES = {"+", "-", "*", "/", "^", "**", "<", "<=", ">", ">=", "==", "!=", "=", "+="}


def _join_continued_lines(tokens: list[Token]) -> list[Token]:
    """A line ending in an operator, or a next line starting with one, continues."""
    kept = []
    for k, token in enumerate(tokens):
        if token.kind == "newline" and kept:
            before, after = kept[-1], tokens[k + 1]
            if (before.kind == "op" and before.text in _CONTINUES) or (
                after.kind == "op" and after.text in _CONTINUES
            ):
                continue
        kept.append(token)
    return kept


class Parser:
    def __init__(self, text: str, builder: ProgramBuilder) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.builder = builder
        self.algebra = builder.algebra
        self.statement_start = 0
        self.targets = _assigned_names(self.tokens)

    # -- token helpers -----------------------------------------------------------------
    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def error(self, message: str, token: Token | None = None) -> ProgramSyntaxError:
        token = token or self.token
        return syntax_error(self.text, token.line, token.column, message)

    def at(self, *texts: str) -> bool:
        return self.token.kind == "op" and self.token.text in texts

    def advance(self) -> Token:
        token = self.token
        self.pos += 1
        return token

    def expect(self, text: str, what: str = "") -> Token:
        if not self.at(text):
            found = self.token.text or "end of input"
            if self.token.kind == "newline":
                found = "end of line"
            raise self.error(f"expected {text!r}{what}, found {found!r}")
        return self.advance()

    def expect_name(self, what: str) -> Token:
        if self.token.kind != "name":
            raise self.error(f"expected {what}, found {self.token.text or 'end of input'!r}")
        return self.advance()

    # -- statements --------------------------------------------------------------------
    def parse_program(self) -> None:
        while True:
            while self.token.kind == "newline" or self.at(";"):
                self.advance()
            if self.token.kind == "end":
                return
            self.parse_statement()
            if not (self.token.kind in ("newline", "end") or self.at(";")):
                raise self.error(f"unexpected {self.token.text!r} after the statement")

    def parse_statement(self) -> None:
        self.statement_start = self.pos
        target = self.expect_name("a tensor name to assign")
        indices: tuple[str, ...] = ()
        if self.at("["):
            indices = self.parse_index_list("]")
        if not self.at("=", "+="):
            raise self.error(f"expected '=' or '+=' after {target.text}[...]")
        accumulate = self.advance().text == "+="
        self.rhs_start = self.pos
        node = self.parse_expr()
        try:
            self.builder.define_node(target.text, indices, node, accumulate=accumulate)
        except ProgramSyntaxError as exc:
            raise self.locate(exc, target) from None

    def locate(self, exc: ProgramSyntaxError, target: Token) -> ProgramSyntaxError:
        """Point a builder error at the token it is about (right side first)."""
        subject = getattr(exc, "subject", None)
        statement = self.tokens[self.statement_start:self.pos]
        rhs = self.tokens[self.rhs_start:self.pos]
        token = target
        for candidate in [*rhs, *statement]:
            if candidate.kind == "name" and subject is not None and (
                candidate.text == subject or _REDUCTION.match(candidate.text)
                and _REDUCTION.match(candidate.text).group(2) == subject  # type: ignore[union-attr]
            ):
                token = candidate
                break
        return self.error(str(exc), token)

    def parse_index_list(self, close: str) -> tuple[str, ...]:
        """After ``[`` or ``{``: names separated by commas (or spaces), up to ``close``."""
        self.advance()
        indices: list[str] = []
        while not self.at(close):
            if indices and self.at(","):
                self.advance()
            token = self.expect_name(f"an index name or {close!r}")
            if token.text in indices and close == "}":
                raise self.error(f"index {token.text!r} repeats", token)
            indices.append(token.text)
        self.advance()
        return tuple(indices)

    # -- expressions -------------------------------------------------------------------
    def parse_expr(self) -> Node:
        if self.token.kind == "name" and _REDUCTION.match(self.token.text):
            return self.parse_reduction()
        left = self.parse_additive()
        if self.at(*_COMPARE):
            op = _COMPARE[self.advance().text]
            left = self.algebra.binary(op, left, self.parse_additive())
            if self.at(*_COMPARE):
                raise self.error("comparisons do not chain; use parentheses")
        return left

    def parse_reduction(self) -> Node:
        token = self.advance()
        op, index = _REDUCTION.match(token.text).groups()  # type: ignore[union-attr]
        if index:
            indices: tuple[str, ...] = (index,)
        elif self.at("{"):
            indices = self.parse_index_list("}")
        else:
            raise self.error(f"expected an index after {token.text} ({op}_i or {op}_{{i,j}})")
        if index and index not in self.builder.sizes and all(
            c in self.builder.sizes for c in index
        ):
            hint = ",".join(index)
            raise self.error(f"unknown index {index!r}; did you mean {op}_{{{hint}}}?", token)
        for name in indices:
            if name not in self.builder.sizes:
                raise self.error(f"index {name!r} has no size; give it in shapes=", token)
        body = self.parse_expr()
        try:
            return self.algebra.reduce(op, indices, body)
        except ProgramSyntaxError as exc:
            raise self.error(str(exc), token) from None

    def parse_additive(self) -> Node:
        left = self.parse_term()
        while self.at("+", "-"):
            op = "add" if self.advance().text == "+" else "sub"
            left = self.algebra.binary(op, left, self.parse_term())
        return left

    def parse_term(self) -> Node:
        left = self.parse_unary()
        while self.at("*", "/"):
            op = "mul" if self.advance().text == "*" else "div"
            left = self.algebra.binary(op, left, self.parse_unary())
        return left

    def parse_unary(self) -> Node:
        if self.at("-"):
            self.advance()
            return self.algebra.unary("neg", self.parse_unary())
        if self.at("+"):
            self.advance()
            return self.parse_unary()
        return self.parse_power()

    def parse_power(self) -> Node:
        base = self.parse_primary()
        if self.at("^", "**"):
            self.advance()
            return self.algebra.binary("pow", base, self.parse_unary())
        return base

    def parse_primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.advance()
            value = float(token.text)
            return self.algebra.const(int(value) if value.is_integer() else value)
        if self.at("("):
            self.advance()
            node = self.parse_expr()
            self.expect(")", " to close '('")
            return node
        if token.kind != "name":
            found = {"newline": "end of line", "end": "end of input"}.get(token.kind, token.text)
            raise self.error(f"expected an expression, found {found!r}")
        if _REDUCTION.match(token.text):
            return self.parse_reduction()
        self.advance()
        if self.at("("):
            return self.parse_call(token)
        return self.parse_read(token)

    def parse_call(self, name: Token) -> Node:
        self.advance()
        args = [self.parse_expr()]
        while self.at(","):
            self.advance()
            args.append(self.parse_expr())
        self.expect(")", f" to close {name.text}(")
        arity = 1 if name.text in UNARY_FUNCTIONS else {"max": 2, "min": 2, "where": 3}.get(
            name.text
        )
        if arity is None:
            known = ", ".join((*UNARY_FUNCTIONS, "max", "min", "where"))
            raise self.error(f"unknown function {name.text!r} (known: {known})", name)
        if len(args) != arity:
            raise self.error(f"{name.text} takes {arity} argument(s), got {len(args)}", name)
        if arity == 1:
            return self.algebra.unary(name.text, args[0])
        if name.text == "where":
            return self.algebra.where(*args)
        return self.algebra.binary(name.text, *args)

    def parse_read(self, name: Token) -> Node:
        indices: tuple[str, ...] = ()
        if self.at("["):
            indices = self.parse_index_list("]")
        elif name.text in self.builder.sizes and name.text not in self.builder.declared:
            raise self.error(f"{name.text!r} is an index; index values are not expressions",
                             name)
        if name.text in self.targets and name.text not in self.builder.assigned:
            raise self.error(f"{name.text} is read before it is assigned", name)
        try:
            return self.builder.read(name.text, indices)
        except ProgramSyntaxError as exc:
            raise self.locate_read(exc, name) from None

    def locate_read(self, exc: ProgramSyntaxError, name: Token) -> ProgramSyntaxError:
        subject = getattr(exc, "subject", None)
        for token in self.tokens[self.tokens.index(name):self.pos]:
            if token.kind == "name" and token.text == subject:
                return self.error(str(exc), token)
        return self.error(str(exc), name)


def _assigned_names(tokens: Sequence[Token]) -> set[str]:
    """Names that some statement assigns (the first name of a statement)."""
    names, start = set(), True
    for token in tokens:
        if start and token.kind == "name":
            names.add(token.text)
        start = token.kind == "newline" or (token.kind == "op" and token.text == ";")
    return names


def program(
    text: str,
    shapes: Mapping[str, int] | None = None,
    dtype: object = "float32",
    outputs: Sequence[str] | None = None,
    **sizes: int,
) -> P.Program:
    """Parse ``text`` into a Program. ``shapes`` (or keywords) gives each index's size;
    ``outputs`` defaults to the tensors assigned but not read afterwards."""
    tokens = tokenize(text)
    builder = ProgramBuilder(
        shapes, dtype, auto_inputs=True,
        reserved={t.text for t in tokens if t.kind == "name"}, **sizes,
    )
    parser = Parser(text, builder)
    parser.parse_program()
    if not builder.statements:
        raise syntax_error(text, 1, 1, "the program has no statements")
    try:
        return builder.build(outputs)
    except ProgramSyntaxError as exc:
        raise ProgramSyntaxError(str(exc)) from None
