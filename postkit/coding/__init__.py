"""Qualitative coding: codebook, coded excerpts and inter-coder agreement."""
