"""Code generation from checked IDL schemas, and the `rpcgen` command."""

__all__: list[str] = []
