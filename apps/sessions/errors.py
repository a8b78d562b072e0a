from __future__ import annotations


class LabError(Exception):
    """Something the student asked for cannot be done. ``message`` is shown to them."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, str(message), status
