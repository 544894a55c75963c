"""The calculator example: the hello world of udprpc (see examples/README.md)."""
