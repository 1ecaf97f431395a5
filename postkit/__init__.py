"""postkit: turn raw forum posts into an ethical research corpus.

Library first: every stage is a function here; the ``postkit`` CLI is a thin layer
over them (see :mod:`postkit.cli`).
"""

__version__ = "0.1.0"
