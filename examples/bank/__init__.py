"""The bank example: side-effecting methods through a lossy network, executed at most once."""
