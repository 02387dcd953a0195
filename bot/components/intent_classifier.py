"""A Rasa intent classifier: multinomial logistic regression over the pipeline's sentence features.

Why not DIET's own intent head: with the same features (word and character n-grams plus the MiniLM
sentence vector), DIET's 3-fold cross-validated intent macro F1 was 0.924, a logistic regression's 0.97
(``bench/nlu_features.py``): ~1,700 examples are few for DIET's transformer, and plenty for a linear
model on good features. DIET still finds the entities (``intent_classification: false``).

Features: every *sentence* feature of the message's text, in pipeline order: each sparse block (the
regex/lookup flags, the word n-gram counts, the character n-gram counts) scaled to unit length on its
own, each dense block (the MiniLM sentence vector) times ``dense_weight``. The trained model is stored
as plain arrays (``.npz``) and JSON, not as a pickle: loading a model runs no code from it.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Text

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

_WEIGHTS = "weights.npz"
_META = "meta.json"


def sentence_blocks(message: Message) -> List[Any]:
    """The message text's sentence features, in the order the featurizers added them."""
    return [f for f in message.features if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE]


def feature_row(message: Message, dense_weight: float) -> tuple[scipy.sparse.csr_matrix, List[List[Any]]]:
    """One row: each sparse block at unit length, each dense block scaled; and the layout ``[[kind, width], ...]``."""
    parts, layout = [], []
    for f in sentence_blocks(message):
        if f.is_sparse():
            block = scipy.sparse.csr_matrix(f.features, dtype=np.float64)
            norm = float(np.sqrt(block.multiply(block).sum()))
            parts.append(block / norm if norm > 0 else block)
            layout.append(["sparse", int(block.shape[1])])
        else:
            dense = np.asarray(f.features, dtype=np.float64).reshape(1, -1)
            parts.append(scipy.sparse.csr_matrix(dense * dense_weight))
            layout.append(["dense", int(dense.shape[1])])
    if not parts:
        return scipy.sparse.csr_matrix((1, 0)), layout
    return scipy.sparse.hstack(parts, format="csr"), layout


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax (what a multinomial logistic regression's probabilities are)."""
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(GraphComponent, IntentClassifier):
    """Logistic regression (scikit-learn's lbfgs, multinomial) over the sentence features."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """``C``: inverse regularisation; ``dense_weight``: scale of dense blocks; ``ranking_length``: intents reported."""
        return {"C": 20.0, "dense_weight": 2.0, "ranking_length": 10, "max_iter": 3000}

    @staticmethod
    def required_packages() -> List[Text]:
        """scikit-learn trains it; prediction is NumPy only."""
        return ["sklearn"]

    def __init__(
        self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
        weights: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None,
        intents: Optional[List[str]] = None, layout: Optional[List[List[Any]]] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.weights = weights  # (n_features, n_intents)
        self.bias = bias  # (n_intents,)
        self.intents = intents or []
        self.layout = layout or []

    @classmethod
    def create(
        cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> "LinearIntentClassifier":
        """An untrained classifier."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fit on the intent examples, then store the weights."""
        from sklearn.linear_model import LogisticRegression

        rows, labels, layout = [], [], None
        for example in training_data.intent_examples:
            row, example_layout = feature_row(example, self.config["dense_weight"])
            if not example_layout:
                continue
            if layout is None:
                layout = example_layout
            elif example_layout != layout:
                raise ValueError(f"LinearIntentClassifier: training examples with different features: {example_layout} vs {layout}")
            rows.append(row)
            labels.append(example.get(INTENT))
        if len(set(labels)) < 2:
            logger.warning("LinearIntentClassifier: fewer than two intents with features, nothing trained")
            return self._resource
        model = LogisticRegression(C=self.config["C"], max_iter=self.config["max_iter"])
        model.fit(scipy.sparse.vstack(rows, format="csr"), labels)
        coef, intercept = np.asarray(model.coef_), np.asarray(model.intercept_)
        if coef.shape[0] == 1:  # two intents: sklearn keeps one row; the softmax of (-s/2, s/2) is its sigmoid
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        self.weights, self.bias = coef.T.copy(), intercept
        self.intents, self.layout = [str(c) for c in model.classes_], layout or []
        self.persist()
        return self._resource

    def persist(self) -> None:
        """Weights as arrays, the intents and the feature layout as JSON."""
        if self.weights is None or self.bias is None:
            return
        with self._model_storage.write_to(self._resource) as model_dir:
            np.savez(model_dir / _WEIGHTS, weights=self.weights, bias=self.bias)
            (model_dir / _META).write_text(json.dumps({"intents": self.intents, "layout": self.layout}), encoding="utf-8")

    @classmethod
    def load(
        cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
        execution_context: ExecutionContext, **kwargs: Any,
    ) -> "LinearIntentClassifier":
        """The trained classifier (an untrained one if nothing was stored)."""
        try:
            with model_storage.read_from(resource) as model_dir:
                with np.load(model_dir / _WEIGHTS, allow_pickle=False) as arrays:
                    weights, bias = arrays["weights"], arrays["bias"]
                meta = json.loads((model_dir / _META).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError, OSError, KeyError):
            logger.warning("LinearIntentClassifier: no trained weights in the model; it predicts no intent")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, weights, bias, meta["intents"], meta["layout"])

    def probabilities(self, message: Message) -> Optional[np.ndarray]:
        """The intents' probabilities for one message (None when untrained or its features do not match)."""
        if self.weights is None or self.bias is None:
            return None
        row, layout = feature_row(message, self.config["dense_weight"])
        if layout != self.layout:
            logger.warning("LinearIntentClassifier: the message's features %s differ from the trained ones %s", layout, self.layout)
            return None
        return softmax_rows(np.asarray(row @ self.weights) + self.bias)[0]

    def process(self, messages: List[Message]) -> List[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message."""
        for message in messages:
            probs = self.probabilities(message) if message.get(TEXT) else None
            if probs is None:
                message.set(INTENT, {"name": None, "confidence": 0.0}, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            order = np.argsort(-probs)
            ranking = [{"name": self.intents[i], "confidence": float(probs[i])} for i in order[: self.config["ranking_length"]]]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
