"""Coding excerpts against the realist programme theory (the CMO codebook).

The codebook itself is data (``rules/cmo_codebook.yaml``) so researchers can refine the
theory without touching Python; :mod:`postkit.coding.codebook` loads, validates, hashes
and renders it so every suggestion can record exactly which codebook produced it.
"""
