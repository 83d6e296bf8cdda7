"""Frontends: einsum subscripts and the statement language -> tensor-level Program."""
