"""Runnable examples of udprpc; run them from the repository root with ``python -m``."""
