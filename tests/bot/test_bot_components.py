"""The NumPy encoder against sentence-transformers: the same piece ids and the same sentence vectors.

The reference (tests/bot/fixtures/minilm_reference.json) was recorded with sentence-transformers and PyTorch
from the same weights; the comparison runs in Rasa's environment, where the weights are installed.
"""

from __future__ import annotations

import json
import subprocess

from tests.bot.helpers import BOT, RASA_PYTHON, require_rasa

FIXTURE = BOT.parent / "tests" / "bot" / "fixtures" / "minilm_reference.json"

_COMPARE = r"""
import json, sys
import numpy as np
from components.minilm import MiniLM
ref = json.load(open(sys.argv[1]))
m = MiniLM()
out = []
for text, vec, ids in zip(ref["texts"], ref["sentence"], ref["ids"]):
    mine = [m.wordpiece.cls, *m.wordpiece.tokenize(text)[0], m.wordpiece.sep]
    v = m.sentence(text)
    out.append({"text": text, "ids_equal": mine == ids, "max_abs": float(np.abs(v - np.array(vec)).max()),
                "norm": float(np.linalg.norm(v))})
print(json.dumps(out))
"""


def test_the_numpy_encoder_gives_the_sentence_transformers_vectors() -> None:
    require_rasa()
    proc = subprocess.run([str(RASA_PYTHON), "-c", _COMPARE, str(FIXTURE)], cwd=BOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == 8
    for r in results:
        assert r["ids_equal"], r["text"]
        assert r["max_abs"] < 1e-4, r  # float32 arithmetic in another order: ~1e-6 seen
        assert abs(r["norm"] - 1.0) < 1e-5, r


_CLASSIFIER = r"""
import json, sys, tempfile
from pathlib import Path
import numpy as np, scipy.sparse
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression
from components.intent_classifier import LinearIntentClassifier, feature_row

rng = np.random.default_rng(7)
intents = ["greet", "order_product", "track_order"]

def message(i, intent=None, dense_width=4):
    m = Message(data={"text": f"text {i}", **({"intent": intent} if intent else {})})
    centre = intents.index(intent) if intent else i % 3
    m.add_features(Features(scipy.sparse.csr_matrix(rng.poisson(1.0, (1, 6)) + np.eye(6)[centre] * 3), "sentence", "text", "cv"))
    m.add_features(Features(np.eye(dense_width)[centre % dense_width] + rng.normal(0, 0.3, dense_width), "sentence", "text", "minilm"))
    m.add_features(Features(np.ones((2, 3)), "sequence", "text", "minilm"))  # sequence features are not used
    return m

train = [message(i, intents[i % 3]) for i in range(60)]
storage = LocalModelStorage(Path(tempfile.mkdtemp()))
resource = Resource("linear_intents")
clf = LinearIntentClassifier.create({"C": 5.0, "dense_weight": 2.0}, storage, resource, None)
clf.train(TrainingData(train))
loaded = LinearIntentClassifier.load({"C": 5.0, "dense_weight": 2.0}, storage, resource, None)

X = scipy.sparse.vstack([feature_row(m, 2.0)[0] for m in train])
reference = LogisticRegression(C=5.0, max_iter=3000).fit(X, [m.get("intent") for m in train])
test = [message(100 + i) for i in range(30)]
loaded.process(test)
worst, agree = 0.0, 0
for m in test:
    expected = reference.predict_proba(feature_row(m, 2.0)[0])[0]
    got = {r["name"]: r["confidence"] for r in m.get("intent_ranking")}
    worst = max(worst, max(abs(got[name] - p) for name, p in zip(reference.classes_, expected)))
    agree += m.get("intent")["name"] == reference.classes_[int(np.argmax(expected))]
odd = message(1, dense_width=5)  # features the classifier was not trained on
loaded.process([odd])
unit = feature_row(train[0], 2.0)[0].toarray()[0][:6]
print(json.dumps({"worst": worst, "agree": agree, "n": len(test), "odd": odd.get("intent"), "ranking": len(test[0].get("intent_ranking")),
                  "sparse_norm": float(np.linalg.norm(unit)), "stored": sorted(p.name for p in (storage._storage_path / "linear_intents").iterdir())}))
"""


def test_the_linear_intent_classifier_stores_and_predicts_what_scikit_learn_computes() -> None:
    require_rasa()
    proc = subprocess.run([str(RASA_PYTHON), "-c", _CLASSIFIER], cwd=BOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["worst"] < 1e-9 and r["agree"] == r["n"] == 30, r  # the stored arrays give sklearn's probabilities
    assert r["ranking"] == 3 and abs(r["sparse_norm"] - 1.0) < 1e-9, r
    assert r["odd"] == {"name": None, "confidence": 0.0}, r  # other features: no intent rather than a wrong one
    assert r["stored"] == ["meta.json", "weights.npz"], r  # arrays and JSON, no pickle


_TRACKER_STORE = r"""
import asyncio, json
from rasa.core.tracker_store import create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.utils.endpoints import read_endpoint_config

async def main():
    domain = Domain.load("domain.yml")
    config = read_endpoint_config("endpoints.yml", "tracker_store")
    store = create_tracker_store(config, domain)
    out = {"class": type(store).__name__, "cap": store.max_conversations}
    store.max_conversations = 2
    first = await store.get_or_create_tracker("conv-1")
    first.update(UserUttered("hello"))
    await store.save(first)
    again = await store.retrieve("conv-1")
    out["same_events"] = [e.as_dict().get("text") for e in again.events if e.type_name == "user"]
    for name in ("conv-2", "conv-1", "conv-3"):  # conv-1 used again: conv-2 is the least recently used
        await store.save(await store.get_or_create_tracker(name))
    out["kept"] = sorted(await store.keys())
    out["gone"] = await store.retrieve("conv-2") is None
    print(json.dumps(out))

asyncio.run(main())
"""


def test_the_live_tracker_store_is_what_endpoints_yml_configures_and_drops_the_least_recently_used() -> None:
    require_rasa()
    proc = subprocess.run([str(RASA_PYTHON), "-c", _TRACKER_STORE], cwd=BOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["class"] == "LiveTrackerStore" and r["cap"] == 10000, r
    assert r["same_events"] == ["hello"], r
    assert r["kept"] == ["conv-1", "conv-3"] and r["gone"], r


_VALIDATION = r"""
import json
from jsonschema import ValidationError
import runtime  # applies the patch
from rasa.core.actions.action import RemoteAction
from runtime import rasa_patches

action = RemoteAction("action_price", None)
ok = action._validate_action_result({"events": [{"event": "slot", "name": "product", "value": "x"}], "responses": [{"text": "hi"}]})
messages = []
for bad in ({"events": "not a list"}, {"events": [{"name": "x"}]}, {"responses": "x"}, {"events": [{"event": 5}]}):
    try:
        action._validate_action_result(bad)
        messages.append(None)
    except ValidationError as exc:
        messages.append(exc.message)
print(json.dumps({"patched": RemoteAction._validate_action_result is rasa_patches._validate_action_result, "ok": ok, "messages": messages}))
"""


def test_the_cached_action_result_validation_accepts_and_refuses_what_rasa_does() -> None:
    require_rasa()
    proc = subprocess.run([str(RASA_PYTHON), "-c", _VALIDATION], cwd=BOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["patched"] and r["ok"] is True, r
    assert len(r["messages"]) == 4 and all(m and "Failed to validate Action server response" in m for m in r["messages"]), r
