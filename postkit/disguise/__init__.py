"""Quote disguise: checking that a paraphrased quote cannot be traced back to its forum post.

A paper that quotes a forum post verbatim lets any reader paste the quote into a
search engine and find the poster. :mod:`postkit.disguise.trace` searches the way such
a reader would — BM25 keyword search and exact phrase (5-word) search over the forum —
and reports, for every paraphrased quote, whether its source post is still findable.
The pass/fail thresholds are data, in ``rules/disguise/thresholds.yaml``.
"""
