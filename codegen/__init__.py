"""Code generation from checked IDL schemas, and the `rpcgen` command."""

from codegen.generate import Generated, generate

__all__ = ["Generated", "generate"]
