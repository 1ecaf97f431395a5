"""One exception type for every mistake a user can fix.

The CLI turns a :class:`PostkitError` into a single line on stderr and a non-zero
exit, so messages must name *where* (file, row, column) and *what to do*, never
rely on a traceback.
"""

from __future__ import annotations

from pathlib import Path


class PostkitError(Exception):
    """A user-fixable problem: bad input, bad option, unsafe output path."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
        details: list[str] | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        self.fix = fix
        # Extra lines (e.g. every offending row) shown under the one-line summary.
        self.details = list(details or [])
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        text = (": ".join([", ".join(where), self.message]) if where else self.message)
        if self.fix:
            text += f" — {self.fix}"
        return text
