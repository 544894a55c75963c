"""The bank example (see examples/README.md)."""
