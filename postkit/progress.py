"""Progress bars that show on a terminal and stay silent when piped or in CI logs."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm import tqdm


@contextmanager
def progress_bar(
    description: str, total: int | None = None, unit: str = "posts", enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yields an ``advance(n)`` callback; tqdm's ``disable=None`` hides it off a TTY."""
    bar = tqdm(
        total=total,
        desc=description,
        unit=unit,
        unit_scale=True,
        unit_divisor=1024 if unit == "B" else 1000,
        file=sys.stderr,
        disable=None if enabled else True,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        yield bar.update
    finally:
        bar.close()
