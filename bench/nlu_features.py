"""Which features tell the bot's intents apart: a quick cross-validation with a linear model (not DIET).

Runs in Rasa's environment (it has scikit-learn and the encoder's weights):

    .venv-rasa/bin/python bench/nlu_features.py [--folds 3] [--seeds 0 1]

It reads the intent examples of bot/data/nlu.yml and bot/data/nlu_generated.yml (entity markup removed),
then, per feature set, a stratified k-fold cross-validation of a logistic regression and prints the intent
macro F1 per seed. Feature sets: word 1-2-grams (tf-idf), character 1-4-grams within words (tf-idf, as
the pipeline's second CountVectorsFeaturizer), and the all-MiniLM-L6-v2 sentence vectors of
bot/components/minilm.py. It is a minute's check of what a feature brings, to decide before a
cross-validation of the Rasa pipeline itself (`scripts/evaluate-bot --cv`, tens of minutes); the figures
of the issue come from that one.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bot"))

_MARKUP = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")


def examples() -> tuple[list[str], np.ndarray]:
    """(texts, intents) of the hand-written and the generated NLU data."""
    texts, intents = [], []
    for name in ("nlu.yml", "nlu_generated.yml"):
        data = yaml.safe_load((ROOT / "bot" / "data" / name).read_text(encoding="utf-8"))
        for block in data.get("nlu") or []:
            if "intent" not in block:
                continue
            for line in block["examples"].splitlines():
                line = line.strip()
                if line.startswith("- "):
                    texts.append(_MARKUP.sub(r"\1", line[2:]))
                    intents.append(block["intent"])
    return texts, np.array(intents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()

    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    from components.minilm import MiniLM

    texts, y = examples()
    print(f"{len(texts)} examples, {len(set(y))} intents, {args.folds} folds")
    started = time.perf_counter()
    encoder = MiniLM()
    vectors = np.stack([encoder.sentence(t) for t in texts])
    print(f"sentence vectors in {time.perf_counter() - started:.1f} s ({(time.perf_counter() - started) / len(texts) * 1e3:.1f} ms each)")

    def run(words: bool, chars: bool, sentence: bool, seed: int) -> float:
        pred = np.empty_like(y)
        for train, test in StratifiedKFold(args.folds, shuffle=True, random_state=seed).split(texts, y):
            a, b = [], []
            for on, vec in ((words, TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                            (chars, TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True))):
                if on:
                    a.append(vec.fit_transform([texts[i] for i in train]))
                    b.append(vec.transform([texts[i] for i in test]))
            if sentence:
                a.append(csr_matrix(vectors[train] * 2))
                b.append(csr_matrix(vectors[test] * 2))
            model = LogisticRegression(C=20, max_iter=3000).fit(hstack(a).tocsr(), y[train])
            pred[test] = model.predict(hstack(b).tocsr())
        return float(f1_score(y, pred, average="macro"))

    print(f"{'features':<34} " + " ".join(f"seed {s:>2}" for s in args.seeds))
    for label, flags in (("words", (True, False, False)), ("words + chars", (True, True, False)),
                         ("sentence vectors", (False, False, True)), ("words + sentence vectors", (True, False, True)),
                         ("words + chars + sentence vectors", (True, True, True))):
        scores = [run(*flags, seed=s) for s in args.seeds]
        print(f"{label:<34} " + " ".join(f"{s:7.3f}" for s in scores))


if __name__ == "__main__":
    main()
