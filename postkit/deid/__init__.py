"""De-identification: find identifiers in forum posts and replace them.

``engine.DeidEngine`` finds (Presidio + spaCy + the rules in ``rules/deid``),
``operators.Replacer`` replaces (tag, surrogate, hash), ``run.deidentify_file`` does a
whole table file, and ``forums`` handles forum pseudonyms.
"""
