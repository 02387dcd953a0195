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
