"""Placeholder: the recordings author replaces this module (same API)."""

from __future__ import annotations


class Recorder:
    """Records one attached student terminal as asciicast v2."""

    @classmethod
    async def open(cls, session_id, tab: int, cols: int, rows: int) -> Recorder:
        return cls()

    @classmethod
    def disabled(cls) -> Recorder:
        """One that records nothing (recordings switched off; tests of the bridge alone)."""
        return cls()

    def output(self, data: bytes) -> None:
        pass

    def resize(self, cols: int, rows: int) -> None:
        pass

    def marker(self, label: str) -> None:
        pass

    async def close(self) -> None:
        pass
