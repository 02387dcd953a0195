"""The sentence encoder's pure parts, in the hub's environment: BERT's basic tokenization and the token pooling.

The encoder's numbers against sentence-transformers are checked in test_encoder_reference.py (Rasa's
environment, which holds the weights).
"""

from __future__ import annotations

import numpy as np

from tests.bot.helpers import BOT, load_module

minilm = load_module("bot_components_minilm", BOT / "components" / "minilm.py")


def test_basic_words_lower_case_strip_accents_and_split_punctuation_with_spans() -> None:
    text = "Où est ma COMMANDE #10234?"
    words = list(minilm.basic_words(text))
    assert [w for w, _, _ in words] == ["ou", "est", "ma", "commande", "#", "10234", "?"]
    for word, start, end in words:  # the spans point at the original characters
        assert minilm._normalise(text[start:end]) == word


def test_basic_words_drop_control_characters_and_keep_cjk_apart() -> None:
    assert [w for w, _, _ in minilm.basic_words("a\u0000b\u200bc 你好")] == ["a", "b", "c", "你", "好"]
    assert list(minilm.basic_words("  \t\n ")) == []


def test_wordpiece_greedy_longest_match_and_unknown_words() -> None:
    wp = minilm.WordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "t", "shirt", "##s", "shirts", "un", "##want", "##ed"])
    assert wp.word_ids("shirts") == [7]  # the whole word before pieces
    assert wp.word_ids("unwanted") == [8, 9, 10]
    assert wp.word_ids("unwantedx") == [1]  # one unknown piece makes the word [UNK]
    assert wp.word_ids("x" * 101) == [1]
    ids, spans = wp.tokenize("T-shirts!")
    assert ids == [4, 1, 7, 1] and spans == [(0, 1), (1, 2), (2, 8), (8, 9)]


def test_token_vectors_average_the_pieces_inside_each_token() -> None:
    pieces = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)  # [CLS], 4 pieces, [SEP]
    encoded = minilm.Encoded(pieces, np.zeros(2), [(0, 5), (0, 5), (6, 7), (8, 9)])
    out = minilm.token_vectors(encoded, [(0, 5), (6, 9), (10, 12)])
    assert out.shape == (3, 2)
    assert np.allclose(out[0], pieces[1:3].mean(axis=0))  # two pieces of one word
    assert np.allclose(out[1], pieces[3:5].mean(axis=0))  # a token spanning two words
    assert np.allclose(out[2], 0)  # no piece inside: zeros
