"""The phone's IVR, as pure functions: what the caller hears, and what their keypad or voice meant.

Nothing here does I/O; :mod:`integrations.twilio.voice` builds the TwiML and talks to the hub.

* :func:`interpret`: a ``<Gather>``'s ``Digits`` and ``SpeechResult`` in the menu, during a bot turn or
  when the bot offered numbered choices: silence, a person ("0", "agent", "someone" at any time), the
  menu's order (1) and track (2), an order number typed and ended with ``#``, a choice, or free speech.
* :func:`normalize_speech`: what a speech recogniser writes, made into what a chat bot expects
  ("one oh two three four" -> "10234", "j o h n at example dot com" -> "john@example.com",
  "double-u" -> "w"); "two large red t-shirts" stays as it is.
* :func:`split_for_say`: long text in pieces under ``<Say>``'s limit, cut at sentence boundaries.
* :func:`spoken_choices` / :func:`pick_choice`: a bot message's numbered choices as a caller hears them
  ("Say or press 1 for Small, 2 for Large") and which one "two", "2", "the second" or "large" picks.
* :func:`greeting`, :func:`order_status_phrase`, :func:`queue_phrase`: the sentences of the call.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Iterable, Sequence

# <Say>'s limit depends on the voice: 4,096 characters for Twilio's basic voices, 3,000 for Amazon Polly's,
# 5,000 for Google's (Twilio warning 13521). One <Say> is kept under the smallest, and a TwiML document
# sent through the REST API (a call's ``Twiml``) may not exceed 4,000 characters at all (error 32018).
SAY_LIMIT = 3000
MAX_REPROMPTS = 2  # silences (or answers that are no option) the menu asks again after; then a person
MENU_ORDER_DIGIT, MENU_TRACK_DIGIT, AGENT_DIGIT = "1", "2", "0"
ORDER_BOT_TEXT = "/order_product"
TRACK_BOT_TEXT = "/track_order"
AGENT_BOT_TEXT = "/human_handoff"  # a person asked for during a bot conversation: the bot hands over
MIN_ORDER_DIGITS = 3  # a typed or spoken number this long in the menu is an order number

MENU_PROMPT = (
    "To place an order, press 1 or say order. "
    "To track an order, press 2 or say track, or type your order number and then the hash key. "
    "To speak to someone, press 0 or say agent. Or just tell me what you need."
)
REPROMPT = "Sorry, I didn't catch that."
NOT_AN_OPTION = "Sorry, that is not one of the options."
TO_AGENT = "Please hold while I put you through to a colleague."
HOLDING = "One moment, please."
APOLOGY = "Sorry, something went wrong on our side."
MENU_HINTS = ("order", "track", "track my order", "agent", "person", "someone", "speak to someone", "place an order")


class Heard(StrEnum):
    """What a ``<Gather>``'s result meant."""

    SILENCE = "silence"  # nothing pressed, nothing said
    AGENT = "agent"  # 0, or asked for a person
    ORDER = "order"  # the menu's 1 / "order"
    TRACK = "track"  # the menu's 2 / "track"
    ORDER_NUMBER = "order_number"  # an order number, typed (ending with #) or said, in the menu
    CHOICE = "choice"  # one of the bot's numbered choices
    SPEECH = "speech"  # anything else said or typed: for the bot
    INVALID = "invalid"  # a key that is no option of the menu


class Mode(StrEnum):
    """Where the ``<Gather>`` was: the opening menu, a bot turn, or the bot's numbered choices."""

    MENU = "menu"
    BOT = "bot"
    CHOICES = "choices"


@dataclass(frozen=True)
class Meaning:
    """A ``<Gather>``'s result in the core's words.

    :param text: what is stored as the caller's message (what they said, or the keys they pressed).
    :param bot_text: what the bot gets instead of ``text``, if anything (an intent payload, the normalised words).
    :param order_id: the order number, for ``ORDER_NUMBER``.
    :param choice: the 1-based choice, for ``CHOICE``.
    """

    heard: Heard
    text: str = ""
    bot_text: str | None = None
    order_id: str | None = None
    choice: int | None = None


# --- words and numbers ---------------------------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}
_ZEROS = {"oh", "o"}  # "oh" is a zero only among other digits ("one oh two"), never on its own ("oh, I see")
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_REPEATS = {"double": 2, "triple": 3}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
    "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8, "9th": 9, "10th": 10,
}
# words after which even a short spoken number is a number to write in digits ("order number five six")
_NUMBER_CONTEXT = {"order", "number", "no", "#", "code", "zip", "postcode", "phone", "reference", "ref"}
_EDGE_PUNCTUATION = ",.;:!?\"'()"
_DOUBLE_U = re.compile(r"\bdouble[\s-]?(?:u|you|yu)\b", re.IGNORECASE)


def _bare(token: str) -> str:
    """A token as the number rules read it: lower case, without the punctuation around it."""
    return token.strip(_EDGE_PUNCTUATION).lower()


def _unit(word: str, *, zero_words: bool = False) -> int | None:
    if word in _UNITS:
        return _UNITS[word]
    if zero_words and word in _ZEROS:
        return 0
    if len(word) == 1 and word.isdigit():
        return int(word)
    return None


def _below_100(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """A number under 100 in words at ``i``: (value, next index)."""
    if i >= len(words):
        return None
    w = words[i]
    if "-" in w:  # "thirty-four"
        tens, _, ones = w.partition("-")
        if tens in _TENS and _UNITS.get(ones, 0) > 0:
            return _TENS[tens] + _UNITS[ones], i + 1
        return None
    if w in _TEENS:
        return _TEENS[w], i + 1
    if w in _TENS:
        unit = _unit(words[i + 1]) if i + 1 < len(words) else None
        if unit is not None and 0 < unit < 10 and words[i + 1] in _UNITS:
            return _TENS[w] + unit, i + 2
        return _TENS[w], i + 1
    if w in _UNITS:
        return _UNITS[w], i + 1
    return None


def _below_1000(words: Sequence[str], i: int) -> tuple[int, int, bool] | None:
    """(value, next index, whether "hundred" was said)."""
    first = _below_100(words, i)
    if first is None:
        return None
    value, j = first
    if j < len(words) and words[j] == "hundred" and value > 0:
        value, j = value * 100, j + 1
        k = j + 1 if j < len(words) and words[j] == "and" else j
        rest = _below_100(words, k)
        if rest is not None:
            value, j = value + rest[0], rest[1]
        return value, j, True
    return value, j, False


def _cardinal(words: Sequence[str], i: int) -> tuple[int, int] | None:
    """A number said with "hundred" or "thousand" ("ten thousand two hundred thirty four"): (value, next index)."""
    head = _below_1000(words, i)
    if head is None:
        return None
    value, j, scaled = head
    if j < len(words) and words[j] == "thousand" and value > 0:
        value, j, scaled = value * 1000, j + 1, True
        k = j + 1 if j < len(words) and words[j] == "and" else j
        rest = _below_1000(words, k)
        if rest is not None:
            value, j = value + rest[0], rest[1]
    return (value, j) if scaled else None


def _digit_group(words: Sequence[str], i: int) -> tuple[str, int, bool] | None:
    """One group of a spoken digit string at ``i``: (its digits, next index, whether it is only an "oh")."""
    w = words[i]
    cardinal = _cardinal(words, i)
    if cardinal is not None:
        return str(cardinal[0]), cardinal[1], False
    if w in _REPEATS and i + 1 < len(words):
        unit = _unit(words[i + 1], zero_words=True)
        if unit is not None:
            return str(unit) * _REPEATS[w], i + 2, False
    if w in _ZEROS:
        return "0", i + 1, True
    small = _below_100(words, i)
    if small is not None:
        value, j = small
        return str(value), j, False
    if re.fullmatch(r"\d+(?:,\d{3})*", w):
        return w.replace(",", ""), i + 1, False
    return None


def _number_runs(words: Sequence[str]) -> list[tuple[int, int, str]]:
    """The spoken numbers among ``words``: (start, end, digits) for each run of number words."""
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        start, digits, real = i, "", False
        while i < len(words):
            group = _digit_group(words, i)
            if group is None:
                break
            part, i, only_oh = group
            digits += part
            real = real or not only_oh
        if i == start:
            i += 1
            continue
        if real:
            runs.append((start, i, digits))
    return runs


def spoken_digits(text: str) -> str | None:
    """The digits of a number said in words or digits ("one oh two three four", "ten thousand two hundred
    thirty four", "1 0 2 3 4"), if the whole text is one number; else None."""
    words = [_bare(t) for t in _split_words(text)]
    words = [w for w in words if w and w not in ("and",)] if words else []
    runs = _number_runs(words)
    if len(runs) == 1 and runs[0][0] == 0 and runs[0][1] == len(words):
        return runs[0][2]
    return None


def _split_words(text: str) -> list[str]:
    """Whitespace tokens."""
    return text.split()


def _numbers_to_digits(tokens: list[str]) -> list[str]:
    """Runs of spoken digits written as digits when they are long enough to be a number to write (three
    digits or more: an order number, a phone number) or follow "order", "number"...; quantities such as
    "two large red t-shirts" stay in words."""
    words = [_bare(t) for t in tokens]
    out: list[str] = []
    last = 0
    for start, end, digits in _number_runs(words):
        context = start > 0 and words[start - 1] in _NUMBER_CONTEXT
        if len(digits) < MIN_ORDER_DIGITS and not (context and end - start >= 1 and not words[start].isdigit()):
            continue
        if end - start == 1 and words[start].isdigit() and not context:
            continue  # already written as a number
        out.extend(tokens[last:start])
        trailing = tokens[end - 1][len(tokens[end - 1].rstrip(_EDGE_PUNCTUATION)):]
        out.append(digits + trailing)
        last = end
    out.extend(tokens[last:])
    return out


# --- email addresses said aloud ------------------------------------------------------------------------

_CONNECTORS = {"dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-", "hyphen": "-", "minus": "-"}
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]*")


def _emails(tokens: list[str]) -> list[str]:
    """"john dot smith at example dot com" -> "john.smith@example.com"; "j o h n at ..." -> "john@...".

    Only when what follows "at" is a domain with a dot in it: "I'm at home" stays as it is.
    """
    out = list(tokens)
    i = len(out) - 1
    while i > 0:
        if _bare(out[i]) != "at":
            i -= 1
            continue
        domain, end = _domain(out, i + 1)
        local, start = _local_part(out, i)
        if domain and local:
            trailing = out[end - 1][len(out[end - 1].rstrip(_EDGE_PUNCTUATION)):]
            out[start:end] = [f"{local}@{domain}".lower() + trailing]
            i = start - 1
        else:
            i -= 1
    return out


def _domain(tokens: Sequence[str], i: int) -> tuple[str, int]:
    """The domain said from ``i`` ("example dot com", "example.com"): (domain, end index), or ("", i)."""
    if i >= len(tokens):
        return "", i
    first = tokens[i].rstrip(_EDGE_PUNCTUATION)
    if not _WORD.fullmatch(first):
        return "", i
    parts, j = [first], i + 1
    while j + 1 < len(tokens) and _bare(tokens[j]) in ("dot", "period", "point"):
        nxt = tokens[j + 1].rstrip(_EDGE_PUNCTUATION)
        if not _WORD.fullmatch(nxt):
            break
        parts.append(nxt)
        j += 2
    domain = ".".join(parts)
    if "." not in domain or domain.endswith("."):
        return "", i
    return domain, j


def _piece_before(tokens: Sequence[str], j: int) -> tuple[str, int] | None:
    """The word, or the letters spelled one by one, that end at ``j``: (the piece, the index before it)."""
    letters: list[str] = []
    k = j
    while k >= 0 and len(_bare(tokens[k])) == 1 and _bare(tokens[k]).isalnum():
        letters.insert(0, _bare(tokens[k]))
        k -= 1
    if len(letters) >= 2:
        return "".join(letters), k
    word = tokens[j].strip(_EDGE_PUNCTUATION) if j >= 0 else ""
    if word and _WORD.fullmatch(word) and _bare(word) not in _CONNECTORS and _bare(word) != "at":
        return word, j - 1
    return None


def _local_part(tokens: Sequence[str], at: int) -> tuple[str, int]:
    """The mailbox said before ``at`` (a word, words joined by "dot"/"underscore"/"dash", spelled letters)."""
    first = _piece_before(tokens, at - 1)
    if first is None:
        return "", at
    pieces, j = [first[0]], first[1]
    while j >= 1 and _bare(tokens[j]) in _CONNECTORS:
        before = _piece_before(tokens, j - 1)
        if before is None:
            break
        pieces[:0] = [before[0], _CONNECTORS[_bare(tokens[j])]]
        j = before[1]
    return "".join(pieces), j + 1


_TLDS = {"com", "org", "net", "io", "co", "uk", "de", "fr", "es", "it", "nl", "be", "eu", "us", "ca", "au", "info", "biz", "shop", "store"}
_SPOKEN_HOST = re.compile(
    r"\b((?:[a-z0-9] )+[a-z0-9]|[a-z0-9][a-z0-9-]*)((?: (?:dot|period|point) [a-z0-9][a-z0-9-]*)+)\b", re.IGNORECASE
)


def _web_addresses(text: str) -> str:
    """"w w w dot example dot com" -> "www.example.com" (the last part must be a known top-level domain)."""

    def join(m: re.Match[str]) -> str:
        parts = [p for p in re.split(r"\s*\b(?:dot|period|point)\b\s*", m.group(2), flags=re.IGNORECASE) if p.strip()]
        if not parts or parts[-1].lower() not in _TLDS:
            return m.group(0)
        return ".".join([m.group(1).replace(" ", ""), *parts]).lower()

    return _SPOKEN_HOST.sub(join, text)


def normalize_speech(text: str) -> str:
    """What a caller said, in the words a chat bot expects: "double-u" -> "w", spoken email addresses and
    long spoken numbers (order numbers, phone numbers) written out; everything else as it was said."""
    text = _DOUBLE_U.sub("w", " ".join(text.split()))
    tokens = _split_words(text)
    if not tokens:
        return ""
    tokens = _emails(tokens)
    tokens = _numbers_to_digits(tokens)
    return _web_addresses(" ".join(tokens))


# --- what a keypress or a sentence meant ---------------------------------------------------------------

_AGENT_WORDS = {"agent", "person", "someone", "somebody", "human", "operator", "representative", "advisor", "adviser", "people"}
_AGENT_ASK = re.compile(
    r"\b(speak|talk|chat|put me through|connect me|transfer me|get me)\b.*\b(agent|person|someone|somebody|human|"
    r"operator|representative|advisor|adviser|colleague|people)\b|\b(real person|customer service|live agent)\b"
)
_TRACK = re.compile(r"\b(track|tracking|where(?:'s| is) my|status of my|order status|delivery status)\b")
_ORDER = re.compile(r"\b(order|buy|purchase|ordering)\b")
_SHORT = 5  # words: a menu answer ("track my order", "I want to order"); longer speech is for the bot


def _plain(text: str) -> str:
    return " ".join(_bare(t) for t in text.split() if _bare(t))


def wants_agent(speech: str) -> bool:
    """Whether the caller asked for a person ("agent", "a real person please", "can I speak to someone")."""
    plain = _plain(speech)
    words = plain.split()
    if not words:
        return False
    if len(words) <= 4 and any(w in _AGENT_WORDS for w in words):
        return True
    return bool(_AGENT_ASK.search(plain))


def _keys(digits: str) -> str:
    return "".join(ch for ch in digits if ch.isdigit() or ch in "*#").rstrip("#")


def interpret(digits: str, speech: str, mode: Mode | str = Mode.MENU, choices: Sequence[str] = (), count: int = 0) -> Meaning:
    """What the caller meant by a ``<Gather>``'s ``Digits`` and ``SpeechResult``.

    :param mode: the menu, a bot turn, or the bot's numbered choices (``choices``: their titles; ``count``:
        how many there are when the titles are not known).
    """
    mode = Mode(mode)
    keys, said = _keys(digits or ""), " ".join((speech or "").split())
    if not keys and not said:
        return Meaning(Heard.SILENCE)
    if keys == AGENT_DIGIT or (said and not keys and wants_agent(said)):
        return Meaning(Heard.AGENT, text=keys or said)
    if mode is Mode.CHOICES:
        picked = pick_choice(keys or said, choices, count or len(choices))
        if picked is not None:
            return Meaning(Heard.CHOICE, text=str(picked + 1), choice=picked + 1)
    if keys:
        if mode is Mode.MENU:
            if keys == MENU_ORDER_DIGIT:
                return Meaning(Heard.ORDER, text=keys, bot_text=ORDER_BOT_TEXT)
            if keys == MENU_TRACK_DIGIT:
                return Meaning(Heard.TRACK, text=keys, bot_text=TRACK_BOT_TEXT)
            if keys.isdigit() and len(keys) >= MIN_ORDER_DIGITS:
                return Meaning(Heard.ORDER_NUMBER, text=keys, bot_text=track_payload(keys), order_id=keys)
            return Meaning(Heard.INVALID, text=keys)
        return Meaning(Heard.SPEECH, text=keys)  # a quantity, a phone number, an order number the bot asked for
    normalized = normalize_speech(said)
    bot_text = normalized if normalized != said else None
    if mode is Mode.MENU:
        plain = _plain(normalized)
        number = re.search(r"\b\d{%d,}\b" % MIN_ORDER_DIGITS, plain)
        alone = spoken_digits(said)
        if alone is not None and len(alone) >= MIN_ORDER_DIGITS:
            return Meaning(Heard.ORDER_NUMBER, text=said, bot_text=track_payload(alone), order_id=alone)
        if _TRACK.search(plain) and len(plain.split()) <= _SHORT + 3:
            if number:
                return Meaning(Heard.ORDER_NUMBER, text=said, bot_text=track_payload(number.group()), order_id=number.group())
            if len(plain.split()) <= _SHORT:
                return Meaning(Heard.TRACK, text=said, bot_text=TRACK_BOT_TEXT)
        if _ORDER.search(plain) and len(plain.split()) <= 4 and not number:
            return Meaning(Heard.ORDER, text=said, bot_text=ORDER_BOT_TEXT)
    return Meaning(Heard.SPEECH, text=said, bot_text=bot_text)


def track_payload(order_id: str) -> str:
    """The bot's payload for "track this order" (Rasa's ``/intent{"entity": "value"}``)."""
    return TRACK_BOT_TEXT + '{"order_id": "%s"}' % order_id


# --- numbered choices -------------------------------------------------------------------------------------

_CHOICE_LINE = re.compile(r"^\s*(\d{1,2})[.)]\s+(.+?)\s*$")
_REPLY_LINE = re.compile(r"^\s*Reply\s+[\d ,or]+\.?\s*$", re.IGNORECASE)


def parse_choices(text: str) -> tuple[str, list[str]]:
    """A message whose buttons were written out as numbered lines (``contact_center.domain.channels.
    numbered_choices``: "Which size?\\n1. Small\\n2. Large\\nReply 1 or 2.") as (the question, the titles)."""
    lines = text.rstrip().split("\n")
    if len(lines) < 2 or not _REPLY_LINE.match(lines[-1]):
        return text, []
    body = lines[:-1]
    k = len(body)
    while k > 0 and _CHOICE_LINE.match(body[k - 1]):
        k -= 1
    items = [m for m in (_CHOICE_LINE.match(line) for line in body[k:]) if m is not None]
    if not items or [int(m.group(1)) for m in items] != list(range(1, len(items) + 1)):
        return text, []
    return "\n".join(body[:k]).strip(), [m.group(2) for m in items]


def choices_sentence(titles: Sequence[str]) -> str:
    """"Say or press 1 for Small, 2 for Large." (the spoken form of numbered choices)."""
    if not titles:
        return ""
    parts = [f"{i} for {clean_for_speech(t)}" for i, t in enumerate(titles, 1)]
    return "Say or press " + ", ".join(parts) + "."


def spoken_choices(text: str) -> tuple[str, list[str]]:
    """A message with numbered choices as the caller hears it, and the choices' titles."""
    question, titles = parse_choices(text)
    if not titles:
        return text, []
    return (f"{question} {choices_sentence(titles)}".strip(), titles)


def _number_in(words: Sequence[str]) -> list[int]:
    ordinals = [_ORDINALS[w] for w in words if w in _ORDINALS]
    if ordinals:  # "the second one": the ordinal says it
        return ordinals
    found: list[int] = []
    for w in words:
        if w.isdigit() and len(w) <= 2:
            found.append(int(w))
        elif w in _ORDINALS:
            found.append(_ORDINALS[w])
        elif w in _UNITS and _UNITS[w] > 0:
            found.append(_UNITS[w])
        elif w == "ten":
            found.append(10)
    return found


def pick_choice(reply: str, choices: Sequence[str] = (), count: int | None = None) -> int | None:
    """The 0-based choice a caller's answer picks among the offered ones ("2", "two", "the second", "number
    two", "the large one", "last"), or None.

    :param choices: the choices' titles (a title said picks it; the longest title said wins).
    :param count: how many were offered (default: ``len(choices)``).
    """
    n = len(choices) if count is None else count
    plain = _plain(reply)
    if not plain or n <= 0:
        return None
    words = plain.split()
    if len(words) == 1 and words[0].isdigit():
        value = int(words[0])
        return value - 1 if 1 <= value <= n else None
    best: tuple[int, int] | None = None
    for index, title in enumerate(choices[:n]):
        t = _plain(title)
        if t and re.search(r"\b%s\b" % re.escape(t), plain) and (best is None or len(t) > best[1]):
            best = (index, len(t))
    if best is not None:
        return best[0]
    if len(words) > 6:
        return None
    if "last" in words and n > 0:
        return n - 1
    numbers = set(_number_in(words))
    if len(numbers) == 1:
        value = numbers.pop()
        return value - 1 if 1 <= value <= n else None
    return None


# --- speaking text ----------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n+")


def clean_for_speech(text: str) -> str:
    """Text as a voice reads it: no emoji or control characters, markdown emphasis dropped, one space between words."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("So", "Cs", "Co", "Cn") or (cat == "Cc" and ch not in "\n\t"):
            continue
        out.append(ch)
    cleaned = "".join(out).replace("**", "").replace("__", "")
    cleaned = re.sub(r"https?://\S+", "the link we sent you", cleaned)
    return "\n".join(" ".join(line.split()) for line in cleaned.split("\n") if line.strip())


def _hard_split(piece: str, limit: int) -> list[str]:
    """A sentence longer than the limit: cut after a comma or semicolon, else a space, else anywhere."""
    parts: list[str] = []
    rest = piece
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "))
        cut = cut + 1 if cut > limit // 3 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts.append(rest)
    return parts


def split_for_say(text: str, limit: int = SAY_LIMIT) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters for consecutive ``<Say>``s, cut between sentences
    (a sentence that is itself too long is cut after a comma, else between words)."""
    if limit < 20:
        raise ValueError("a <Say> limit under 20 characters cannot hold a sentence")
    spoken = clean_for_speech(text)
    sentences: list[str] = []
    for sentence in _SENTENCE_END.split(spoken):
        sentence = sentence.strip()
        if sentence:
            sentences.extend(_hard_split(sentence, limit) if len(sentence) > limit else [sentence])
    pieces: list[str] = []
    for sentence in sentences:
        if pieces and len(pieces[-1]) + 1 + len(sentence) <= limit:
            pieces[-1] = f"{pieces[-1]} {sentence}"
        else:
            pieces.append(sentence)
    return pieces


def say_all(texts: Iterable[str], limit: int = SAY_LIMIT) -> list[str]:
    """Several messages, each split for ``<Say>`` (a message's choices spoken as numbered choices)."""
    pieces: list[str] = []
    for text in texts:
        pieces.extend(split_for_say(spoken_choices(text)[0], limit))
    return pieces


# --- the sentences of a call -----------------------------------------------------------------------------

OPEN_ORDER_STATUSES = ("placed", "confirmed", "picking", "shipped")
_OPEN_ORDER_STATUSES = OPEN_ORDER_STATUSES


def is_open_order(status: str) -> bool:
    """An order the caller may be calling about: placed and not yet delivered (or cancelled)."""
    return status in _OPEN_ORDER_STATUSES


def spoken_day(day: date, today: date) -> str:
    """"today", "tomorrow", "on Friday" (this week), "on Friday 12 June" (later), "on 3 May" (earlier)."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == -1:
        return "yesterday"
    if 1 < delta < 7:
        return f"on {day:%A}"
    if delta > 0:
        return f"on {day:%A} {day.day} {day:%B}"
    return f"on {day.day} {day:%B}"


def order_status_phrase(order_id: int | str, status: str, promised: date | None, today: date) -> str | None:
    """What the caller hears about their latest open order ("your order 10234 should arrive tomorrow"); None
    when the order is not open."""
    if status == "shipped":
        if promised is not None and promised >= today:
            return f"your order {order_id} has shipped and should arrive {spoken_day(promised, today)}"
        return f"your order {order_id} has shipped and is on its way"
    if status not in _OPEN_ORDER_STATUSES:
        return None
    if promised is None:
        return f"your order {order_id} is being prepared"
    if promised < today:
        return f"your order {order_id} is running late, sorry: it was due {spoken_day(promised, today)}"
    ships = "is being packed and" if status == "picking" else "is confirmed and" if status == "confirmed" else "is"
    return f"your order {order_id} {ships} should arrive {spoken_day(promised, today)}".replace(" is should", " should")


def greeting(name: str = "", order_phrase: str | None = None) -> str:
    """"Hello Alice, thanks for calling. Your order 10234 should arrive tomorrow." """
    first = " ".join(clean_for_speech(name).split()[:3])
    text = f"Hello {first}, thanks for calling." if first else "Hello, thanks for calling."
    if order_phrase:
        text += f" {order_phrase[0].upper()}{order_phrase[1:]}."
    return text


def queue_phrase(position: int | None, estimated_wait_seconds: int | None) -> str:
    """"You are number 2 in the queue. The estimated wait is about 3 minutes." """
    if not position:
        return "Please stay on the line: a colleague will be with you shortly."
    text = "You are next in the queue." if position == 1 else f"You are number {position} in the queue."
    if estimated_wait_seconds is None:
        return text
    if estimated_wait_seconds < 60:
        return text + " Someone will be with you in under a minute."
    minutes = -(-estimated_wait_seconds // 60)
    return text + f" The estimated wait is about {minutes} minute{'s' if minutes != 1 else ''}."


def hints(extra: Iterable[str] = (), limit: int = 100) -> str:
    """``<Gather hints>``: the menu's words and then ``extra`` (the catalogue's products), each phrase at most
    100 characters, without repeats, at most ``limit`` of them."""
    seen: dict[str, None] = {}
    for phrase in [*MENU_HINTS, *extra]:
        cleaned = " ".join(str(phrase).replace(",", " ").split())[:100].strip()
        if cleaned and cleaned.lower() not in {k.lower() for k in seen}:
            seen[cleaned] = None
        if len(seen) >= limit:
            break
    return ", ".join(seen)
