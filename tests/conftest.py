"""Shared pytest configuration.

pytest-trio runs every ``async def`` test under trio (``trio_mode = true``); its
``autojump_clock`` fixture is ``trio.testing.MockClock(autojump_threshold=0)``.
"""
