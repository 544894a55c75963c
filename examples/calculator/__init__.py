"""The calculator example (see examples/README.md)."""
