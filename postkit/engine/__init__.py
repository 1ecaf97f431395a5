"""Engines run postkit's partition functions here (``local``) or on a Dask cluster (``dask``).

See :mod:`postkit.engine.base` for the interface, :mod:`postkit.engine.consent_stage`
and :mod:`postkit.engine.sample_stage` for the stages written as partition functions.
"""

from .base import SPLIT_EVERY, Engine, LocalEngine, TreeReducer, get_engine

ENGINES = ("local", "dask")

__all__ = ["ENGINES", "SPLIT_EVERY", "Engine", "LocalEngine", "TreeReducer", "get_engine"]
