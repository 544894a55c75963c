"""The blob example (see examples/README.md)."""
