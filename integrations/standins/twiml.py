"""A strict reader of TwiML for Voice, for the Twilio stand-in: what it accepts, and how it refuses.

:func:`parse` turns a TwiML document into :class:`Node` trees, or raises :class:`TwiMLError` with the
code Twilio's debugger gives for that fault:

=======  =====================================================================================
code     when
=======  =====================================================================================
12100    the document is not well-formed XML (or is empty)
12102    the root element is not ``<Response>``
12200    the document does not follow Twilio's TwiML schema: an unknown verb, noun or attribute,
         text where none belongs, a value outside an attribute's list, or bad nesting with no
         code of its own
13xxx,   a bad value of an attribute that has its own code (``13313`` Gather timeout, ``13310``
14xxx    finishOnKey, ``13212`` Dial timeout, ``13223`` a dialled number's format, ``13320`` a
         verb nested in ``<Gather>`` other than Say/Play/Pause, ``13215`` a noun ``<Dial>``
         cannot hold, ``13910`` Pause length, ``13510`` Say loop, ...)
=======  =====================================================================================

The attribute names and value lists are those of Twilio's TwiML reference (and of the ``twilio``
package's ``VoiceResponse``, generated from it); the codes those of Twilio's error dictionary. Twilio
itself logs several of the 13xxx faults as warnings and carries on with the default value; the
stand-in refuses them all, so that a test through it means something. Valid TwiML that the stand-in
does not imitate (``<Connect>``, ``<Pay>``, ``<Start>``, ``<Dial><Sip>``, ...) raises
:class:`Unsupported` (no Twilio code: Twilio would have run it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping
from urllib.parse import urlsplit
from xml.etree import ElementTree

import phonenumbers  # type: ignore[import-untyped,unused-ignore]

MAX_DOCUMENT_BYTES = 64 * 1024  # Twilio refuses larger TwiML answers (11750)

# Twilio's words for the codes the stand-in records (its error dictionary's titles).
ERROR_WORDS: dict[int, str] = {
    11100: "Invalid URL format",
    11200: "HTTP retrieval failure",
    11205: "HTTP connection failure",
    11215: "HTTP too many redirects",
    11750: "TwiML response body too large",
    12100: "Document parse failure",
    12102: "The root element must be Response",
    12200: "Schema validation warning",
    12300: "Invalid Content-Type",
    13201: "Dial: Cannot Dial out from a Dial Call Segment",
    13210: "Dial: Invalid method value",
    13212: "Dial: Invalid timeout value",
    13213: "Dial: Invalid hangupOnStar value",
    13214: "Dial: Invalid callerId value",
    13215: "Dial: Invalid nested element",
    13216: "Dial: Invalid timeLimit value",
    13217: "Dial: Invalid record value",
    13221: "Dial->Number: Invalid method value",
    13222: "Dial->Number: Invalid sendDigits value",
    13223: "Dial: Invalid phone number format",
    13224: "Dial: Invalid phone number",
    13230: "Dial->Conference: Invalid muted value",
    13231: "Dial->Conference: Invalid endConferenceOnExit value",
    13232: "Dial->Conference: Invalid startConferenceOnEnter value",
    13233: "Dial->Conference: Invalid waitUrl value",
    13234: "Dial->Conference: Invalid waitMethod value",
    13235: "Dial->Conference: Invalid beep value",
    13237: "Dial->Conference: Invalid conference name",
    13238: "Dial->Conference: Invalid verb for waitUrl TwiML",
    13310: "Gather: Invalid finishOnKey value",
    13312: "Gather: Invalid method value",
    13313: "Gather: Invalid timeout value",
    13314: "Gather: Invalid numDigits value",
    13320: "Gather: Invalid nested verb",
    13321: "Gather->Say: Invalid voice value",
    13322: "Gather->Say: Invalid loop value",
    13410: "Play: Invalid loop value",
    13510: "Say: Invalid loop value",
    13511: "Say: Invalid voice value",
    13520: "Say: Invalid text",
    13610: "Record: Invalid method value",
    13611: "Record: Invalid timeout value",
    13612: "Record: Invalid maxLength value",
    13613: "Record: Invalid finishOnKey value",
    13614: "Record: Invalid transcribe value",
    13616: "Record: playBeep must be true or false",
    13710: "Redirect: Invalid method value",
    13910: "Pause: Invalid length value",
    14201: "Enqueue: Invalid method value",
    14202: "Enqueue: Invalid waitUrl",
    14203: "Enqueue: Invalid action URL",
    14204: "Enqueue: Queue name too short",
    14205: "Enqueue: Queue name too long",
    14206: "Enqueue: Invalid waitUrlMethod value",
    14212: "Dial->Queue: Queue name too short",
    14213: "Dial->Queue: Queue name too long",
}


class TwiMLError(Exception):
    """TwiML that Twilio would not run: ``code`` (Twilio's), its words, and what exactly was wrong."""

    def __init__(self, code: int | None, detail: str) -> None:
        self.code = code
        self.words = ERROR_WORDS.get(code or 0, "")
        self.detail = detail
        super().__init__(f"{code} {self.words}: {detail}" if code else detail)


class Unsupported(TwiMLError):
    """Valid TwiML that the stand-in does not imitate (no Twilio code: Twilio would have run it)."""

    def __init__(self, detail: str) -> None:
        super().__init__(None, detail + " (valid TwiML that the Twilio stand-in does not imitate)")


@dataclass(frozen=True)
class Node:
    """One TwiML element: its tag, attributes, its own text (stripped) and its element children."""

    tag: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    children: tuple["Node", ...] = ()
    spoken: str = ""  # <Say>: every word inside it (SSML included), whitespace collapsed

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute's value (or ``default``)."""
        return self.attrs.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean attribute (already validated)."""
        value = self.attrs.get(name)
        return default if value is None else value.lower() == "true"

    def number(self, name: str, default: int) -> int:
        """An integer attribute (already validated)."""
        value = self.attrs.get(name)
        return default if value is None or value == "" else int(value)


# --- value checks --------------------------------------------------------------------------------

Check = Callable[[str], bool]


def _int(low: int, high: int | None = None) -> Check:
    def check(value: str) -> bool:
        if not re.fullmatch(r"[0-9]+", value.strip()):
            return False
        number = int(value)
        return number >= low and (high is None or number <= high)
    return check


def _one_of(*values: str, case: bool = True) -> Check:
    allowed = set(values) if case else {v.lower() for v in values}
    return lambda value: (value if case else value.lower()) in allowed


def _words_of(*values: str) -> Check:
    """A space-separated (or comma-separated) list of some of ``values``."""
    allowed = set(values)
    return lambda value: bool(value.strip()) and all(w in allowed for w in re.split(r"[\s,]+", value.strip()))


def is_url(value: str) -> bool:
    """An absolute http(s) URL or a relative one (resolved against the document's URL)."""
    text = value.strip()
    if not text or any(c in text for c in "\r\n\t "):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    if parts.scheme:
        return parts.scheme in ("http", "https") and bool(parts.netloc)
    return not text.startswith("//")


def _url_or_empty(value: str) -> bool:
    return value == "" or is_url(value)


_BOOL = _one_of("true", "false", case=False)
_METHOD = _one_of("GET", "POST", case=False)
_KEYS = "0123456789#*"
_LANGUAGE = re.compile(r"[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*")
_VOICE = re.compile(r"man|woman|alice|(Polly|Google|ElevenLabs|Amazon)\.[\w.-]+")
_IDENTITY = re.compile(r"[A-Za-z0-9_]{1,121}")
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_SPEECH_MODELS = ("default", "numbers_and_commands", "phone_call", "experimental_conversations",
                  "experimental_utterances")


def _speech_model(value: str) -> bool:
    return value in _SPEECH_MODELS or bool(re.fullmatch(r"(googlev2|deepgram)_[a-z0-9_-]+|(Google|Deepgram)\.[\w.-]+", value))


def _language(value: str) -> bool:
    return bool(_LANGUAGE.fullmatch(value))


def _voice(value: str) -> bool:
    return bool(_VOICE.fullmatch(value))


def _finish_key(value: str) -> bool:
    return value == "" or (len(value) == 1 and value in _KEYS)


def _finish_keys(value: str) -> bool:
    return all(c in _KEYS for c in value)


def _dtmf(value: str) -> bool:
    return bool(value) and all(c in _KEYS + "wW" for c in value)


def _speech_timeout(value: str) -> bool:
    return value == "auto" or _int(0)(value)


def _hints(value: str) -> bool:
    phrases = [p.strip() for p in value.split(",")]
    return len(phrases) <= 500 and all(len(p) <= 100 for p in phrases)


def _call_sid(value: str) -> bool:
    return bool(_CALL_SID.fullmatch(value))


# --- the schema ----------------------------------------------------------------------------------

# (check, code when the value fails it)
Attr = tuple[Check, int]
_CALL_EVENTS = _words_of("initiated", "ringing", "answered", "completed")
_RECORDING_EVENTS = _words_of("in-progress", "completed", "absent")
_CONFERENCE_EVENTS = _words_of("start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement")


@dataclass(frozen=True)
class Spec:
    """What one element may carry.

    :param text: ``forbidden``, ``optional`` or ``required`` (non-blank text inside the element).
    :param children: the element children it may have; ``child_code`` when another one is found.
    """

    attrs: Mapping[str, Attr]
    children: frozenset[str] = frozenset()
    child_code: int = 12200
    text: str = "forbidden"
    text_code: int = 12200


_SSML = frozenset({"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w",
                   "amazon:domain", "amazon:effect"})
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_SSML_ATTRS: dict[str, Mapping[str, Attr]] = {
    "break": {"strength": (_one_of("none", "x-weak", "weak", "medium", "strong", "x-strong"), 12200),
              "time": (lambda v: bool(re.fullmatch(r"[0-9]+(ms|s)", v)), 12200)},
    "emphasis": {"level": (_one_of("strong", "moderate", "reduced"), 12200)},
    "lang": {_XML_LANG: (_language, 12200)},
    "p": {}, "s": {},
    "phoneme": {"alphabet": (_one_of("ipa", "x-sampa", "x-amazon-jyutping", "x-amazon-pinyin", "x-amazon-pron-kana",
                                     "x-amazon-yomigana"), 12200), "ph": (lambda v: bool(v), 12200)},
    "prosody": {"volume": (lambda v: bool(v), 12200), "rate": (lambda v: bool(v), 12200), "pitch": (lambda v: bool(v), 12200)},
    "say-as": {"interpret-as": (lambda v: bool(v), 12200), "format": (lambda v: bool(v), 12200)},
    "sub": {"alias": (lambda v: bool(v), 12200)},
    "w": {"role": (lambda v: bool(v), 12200)},
    "amazon:domain": {"name": (lambda v: bool(v), 12200)},
    "amazon:effect": {"name": (lambda v: bool(v), 12200), "vocal-tract-length": (lambda v: bool(v), 12200),
                      "phonation": (lambda v: bool(v), 12200)},
}


def _say(in_gather: bool) -> Spec:
    return Spec(
        attrs={"voice": (_voice, 13321 if in_gather else 13511), "loop": (_int(0), 13322 if in_gather else 13510),
               "language": (_language, 12200)},
        children=_SSML, text="required", text_code=13520,
    )


_PLAY = Spec(attrs={"loop": (_int(0), 13410), "digits": (_dtmf, 12200)}, text="optional")
_PAUSE = Spec(attrs={"length": (_int(1), 13910)})
_PARAMETER = Spec(attrs={"name": (lambda v: bool(v), 12200), "value": (lambda v: True, 12200)})

VERBS: dict[str, Spec] = {
    "Say": _say(False),
    "Play": _PLAY,
    "Pause": _PAUSE,
    "Gather": Spec(
        attrs={
            "input": (lambda v: bool(v.split()) and set(v.split()) <= {"dtmf", "speech"}, 12200),
            "action": (is_url, 11100), "method": (_METHOD, 13312), "timeout": (_int(1), 13313),
            "speechTimeout": (_speech_timeout, 12200), "maxSpeechTime": (_int(1, 60), 12200),
            "profanityFilter": (_BOOL, 12200), "finishOnKey": (_finish_key, 13310), "numDigits": (_int(1), 13314),
            "partialResultCallback": (is_url, 11100), "partialResultCallbackMethod": (_METHOD, 12200),
            "language": (_language, 12200), "hints": (_hints, 12200), "bargeIn": (_BOOL, 12200),
            "debug": (_BOOL, 12200), "actionOnEmptyResult": (_BOOL, 12200), "speechModel": (_speech_model, 12200),
            "enhanced": (_BOOL, 12200),
        },
        children=frozenset({"Say", "Play", "Pause"}), child_code=13320,
    ),
    "Redirect": Spec(attrs={"method": (_METHOD, 13710)}, text="required"),
    "Hangup": Spec(attrs={}, children=frozenset({"Parameter"})),
    "Reject": Spec(attrs={"reason": (_one_of("rejected", "busy"), 12200)}, children=frozenset({"Parameter"})),
    "Leave": Spec(attrs={}),
    "Record": Spec(attrs={
        "action": (is_url, 11100), "method": (_METHOD, 13610), "timeout": (_int(0), 13611),
        "finishOnKey": (_finish_keys, 13613), "maxLength": (_int(1), 13612), "playBeep": (_BOOL, 13616),
        "trim": (_one_of("trim-silence", "do-not-trim"), 12200), "recordingStatusCallback": (is_url, 11100),
        "recordingStatusCallbackMethod": (_METHOD, 12200), "recordingStatusCallbackEvent": (_RECORDING_EVENTS, 12200),
        "transcribe": (_BOOL, 13614), "transcribeCallback": (is_url, 11100),
        "recordingChannels": (_one_of("mono", "dual"), 12200), "storageUrl": (is_url, 11100),
        "storageUrlMethod": (_METHOD, 12200), "recordingConfigurationId": (lambda v: bool(v), 12200),
    }),
    "Dial": Spec(
        attrs={
            "action": (is_url, 11100), "method": (_METHOD, 13210), "timeout": (_int(1, 600), 13212),
            "hangupOnStar": (_BOOL, 13213), "timeLimit": (_int(1, 86400), 13216),
            "callerId": (lambda v: bool(re.fullmatch(r"(\+?[0-9]{3,20}|client:[A-Za-z0-9_]{1,121})", v)), 13214),
            "record": (_one_of("do-not-record", "record-from-answer", "record-from-ringing", "record-from-answer-dual",
                               "record-from-ringing-dual", "true", "false"), 13217),
            "trim": (_one_of("trim-silence", "do-not-trim"), 12200), "recordingStatusCallback": (is_url, 11100),
            "recordingStatusCallbackMethod": (_METHOD, 12200), "recordingStatusCallbackEvent": (_RECORDING_EVENTS, 12200),
            "recordingConfigurationId": (lambda v: bool(v), 12200), "answerOnBridge": (_BOOL, 12200),
            "ringTone": (lambda v: bool(re.fullmatch(r"[a-z]{2}", v)), 12200),
            "recordingTrack": (_one_of("both", "inbound", "outbound"), 12200), "sequential": (_BOOL, 12200),
            "referUrl": (is_url, 11100), "referMethod": (_METHOD, 12200), "events": (lambda v: bool(v), 12200),
            "passports": (lambda v: bool(v), 12200),
        },
        children=frozenset({"Number", "Client", "Conference", "Queue", "Sip", "Sim", "Application", "WhatsApp"}),
        child_code=13215, text="optional", text_code=13223,
    ),
    "Enqueue": Spec(
        attrs={"action": (is_url, 14203), "method": (_METHOD, 14201), "waitUrl": (_url_or_empty, 14202),
               "waitUrlMethod": (_METHOD, 14206), "maxQueueSize": (_int(1, 5000), 12200),
               "workflowSid": (lambda v: bool(re.fullmatch(r"WW[0-9a-fA-F]{32}", v)), 12200)},
        children=frozenset({"Task"}), text="optional",
    ),
    # Valid Twilio verbs the stand-in does not imitate (answered with Unsupported).
    **{name: Spec(attrs={}) for name in ("Connect", "Echo", "Pay", "Prompt", "Refer", "Sms", "Start", "Stop")},
}
UNSUPPORTED_VERBS = frozenset({"Connect", "Echo", "Pay", "Prompt", "Refer", "Sms", "Start", "Stop"})
UNSUPPORTED_NOUNS = frozenset({"Sip", "Sim", "Application", "WhatsApp"})

NOUNS: dict[str, Spec] = {
    "Number": Spec(attrs={
        "sendDigits": (_dtmf, 13222), "url": (is_url, 11100), "method": (_METHOD, 13221),
        "statusCallbackEvent": (_CALL_EVENTS, 12200), "statusCallback": (is_url, 11100),
        "statusCallbackMethod": (_METHOD, 12200), "byoc": (lambda v: bool(v), 12200),
        "machineDetection": (_one_of("Enable", "DetectMessageEnd"), 12200), "amdStatusCallback": (is_url, 11100),
        "amdStatusCallbackMethod": (_METHOD, 12200), "machineDetectionTimeout": (_int(3, 59), 12200),
        "machineDetectionSpeechThreshold": (_int(1000, 6000), 12200),
        "machineDetectionSpeechEndThreshold": (_int(500, 5000), 12200),
        "machineDetectionSilenceTimeout": (_int(2000, 10000), 12200),
    }, text="required", text_code=13223),
    "Client": Spec(attrs={
        "url": (is_url, 11100), "method": (_METHOD, 12200), "statusCallbackEvent": (_CALL_EVENTS, 12200),
        "statusCallback": (is_url, 11100), "statusCallbackMethod": (_METHOD, 12200),
    }, children=frozenset({"Identity", "Parameter"}), text="optional"),
    "Conference": Spec(attrs={
        "muted": (_BOOL, 13230), "beep": (_one_of("true", "false", "onEnter", "onExit"), 13235),
        "startConferenceOnEnter": (_BOOL, 13232), "endConferenceOnExit": (_BOOL, 13231),
        "waitUrl": (_url_or_empty, 13233), "waitMethod": (_METHOD, 13234), "maxParticipants": (_int(2, 250), 12200),
        "record": (_one_of("do-not-record", "record-from-start"), 12200), "region": (lambda v: bool(v), 12200),
        "coach": (_call_sid, 12200), "trim": (_one_of("trim-silence", "do-not-trim"), 12200),
        "statusCallbackEvent": (_CONFERENCE_EVENTS, 12200), "statusCallback": (is_url, 11100),
        "statusCallbackMethod": (_METHOD, 12200), "recordingStatusCallback": (is_url, 11100),
        "recordingStatusCallbackMethod": (_METHOD, 12200), "recordingStatusCallbackEvent": (_RECORDING_EVENTS, 12200),
        "eventCallbackUrl": (is_url, 11100), "jitterBufferSize": (_one_of("large", "medium", "small", "off"), 12200),
        "participantLabel": (lambda v: 0 < len(v) <= 128, 12200), "recordingConfigurationId": (lambda v: bool(v), 12200),
    }, text="required", text_code=13237),
    "Queue": Spec(attrs={
        "url": (is_url, 11100), "method": (_METHOD, 12200),
        "reservationSid": (lambda v: bool(re.fullmatch(r"WR[0-9a-fA-F]{32}", v)), 12200),
        "postWorkActivitySid": (lambda v: bool(re.fullmatch(r"WA[0-9a-fA-F]{32}", v)), 12200),
    }, text="required", text_code=14212),
    **{name: Spec(attrs={}) for name in ("Sip", "Sim", "Application", "WhatsApp")},
}
_LEAVES: dict[str, Spec] = {
    "Identity": Spec(attrs={}, text="required"),
    "Parameter": _PARAMETER,
    "Task": Spec(attrs={"priority": (_int(0), 12200), "timeout": (_int(1), 12200)}, text="required"),
}
# What a conference's waitUrl / a participant's holdUrl TwiML may use (13238 otherwise).
WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})
# What an <Enqueue>'s waitUrl TwiML may use.
QUEUE_WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Redirect", "Hangup", "Leave", "Gather"})


# --- reading -------------------------------------------------------------------------------------


def parse(document: str | bytes) -> list[Node]:
    """The verbs of a TwiML document, checked against Twilio's schema; :class:`TwiMLError` if Twilio would refuse it."""
    if isinstance(document, bytes):
        if len(document) > MAX_DOCUMENT_BYTES:
            raise TwiMLError(11750, f"the document has {len(document)} bytes (at most {MAX_DOCUMENT_BYTES})")
        raw: str | bytes = document
    else:
        raw = document
    if not (raw.strip() if isinstance(raw, str) else raw.strip()):
        raise TwiMLError(12100, "the document is empty")
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError as exc:
        raise TwiMLError(12100, f"not well-formed XML: {exc}") from None
    if root.tag != "Response":
        raise TwiMLError(12102, f"the root element is <{root.tag}>")
    _no_attrs(root, "Response")
    _no_text(root.text, "Response", 12200)
    verbs = []
    for element in root:
        _no_text(element.tail, "Response", 12200)
        verbs.append(_verb(element))
    return verbs


def _no_attrs(element: ElementTree.Element, where: str) -> None:
    if element.attrib:
        raise TwiMLError(12200, f"<{where}> takes no attribute, found {sorted(element.attrib)}")


def _no_text(text: str | None, where: str, code: int) -> None:
    if text and text.strip():
        raise TwiMLError(code, f"text {text.strip()[:40]!r} is not allowed inside <{where}>")


def _check_attrs(element: ElementTree.Element, spec: Spec, where: str) -> dict[str, str]:
    for name, value in element.attrib.items():
        if name not in spec.attrs:
            raise TwiMLError(12200, f"<{where}> has no attribute {name!r}")
        check, code = spec.attrs[name]
        if not check(value):
            raise TwiMLError(code, f"<{where} {name}={value!r}> is not a valid value")
    return dict(element.attrib)


def _text_of(element: ElementTree.Element, spec: Spec, where: str) -> str:
    text = (element.text or "").strip()
    if spec.text == "forbidden":
        _no_text(element.text, where, 12200)
    if spec.text == "required" and not text and not len(element):
        raise TwiMLError(spec.text_code, f"<{where}> needs text")
    return text


def _children(element: ElementTree.Element, allowed: frozenset[str], code: int, where: str) -> Iterator[ElementTree.Element]:
    for child in element:
        if child.tag not in allowed:
            raise TwiMLError(code, f"<{child.tag}> cannot be inside <{where}>")
        yield child


def _verb(element: ElementTree.Element, where: str = "Response") -> Node:
    tag = element.tag
    spec = VERBS.get(tag)
    if spec is None:
        raise TwiMLError(12200, f"<{tag}> is not a TwiML Voice verb")
    if tag in UNSUPPORTED_VERBS:
        raise Unsupported(f"<{tag}>")
    if tag == "Say" and where == "Gather":
        spec = _say(True)
    attrs = _check_attrs(element, spec, tag)
    text = _text_of(element, spec, tag)
    if tag == "Say":
        return _say_node(element, attrs)
    if tag == "Gather":
        children = tuple(_verb(c, "Gather") for c in _children(element, spec.children, spec.child_code, tag))
        _tails(element, tag)
        return Node(tag, attrs, text, children)
    if tag == "Dial":
        return _dial(element, attrs, text)
    if tag == "Play" and not text and "digits" not in attrs:
        raise TwiMLError(12200, "<Play> needs a URL or digits")
    if tag == "Redirect" and not is_url(text):
        raise TwiMLError(11100, f"<Redirect> to {text!r}")
    if tag == "Enqueue":
        _queue_name(text, 14204, 14205, "Enqueue")
        if "workflowSid" not in attrs and len(element):
            raise TwiMLError(12200, "<Enqueue><Task> needs workflowSid")
    children = tuple(_leaf(c, tag) for c in _children(element, spec.children, spec.child_code, tag))
    _tails(element, tag)
    return Node(tag, attrs, text, children)


def _tails(element: ElementTree.Element, where: str) -> None:
    for child in element:
        _no_text(child.tail, where, 12200)


def _leaf(element: ElementTree.Element, where: str) -> Node:
    spec = _LEAVES[element.tag]
    attrs = _check_attrs(element, spec, element.tag)
    text = _text_of(element, spec, element.tag)
    if len(element):
        raise TwiMLError(12200, f"<{element.tag}> inside <{where}> holds no element")
    return Node(element.tag, attrs, text)


def _say_node(element: ElementTree.Element, attrs: dict[str, str]) -> Node:
    def check_ssml(node: ElementTree.Element) -> None:
        for child in node:
            if child.tag not in _SSML:
                raise TwiMLError(12200, f"<{child.tag}> cannot be inside <Say>")
            spec = Spec(attrs=_SSML_ATTRS.get(child.tag, {}))
            _check_attrs(child, spec, child.tag)
            check_ssml(child)

    check_ssml(element)
    spoken = " ".join("".join(element.itertext()).split())
    if not spoken:
        raise TwiMLError(13520, "<Say> has nothing to say")
    return Node("Say", attrs, (element.text or "").strip(), (), spoken)


def _queue_name(name: str, short: int, long: int, where: str) -> None:
    if not name:
        raise TwiMLError(short, f"<{where}> needs a queue name")
    if len(name) > 64:
        raise TwiMLError(long, f"<{where}> queue name has {len(name)} characters (at most 64)")


def _dial(element: ElementTree.Element, attrs: dict[str, str], text: str) -> Node:
    spec = VERBS["Dial"]
    nouns: list[Node] = []
    for child in _children(element, spec.children, spec.child_code, "Dial"):
        nouns.append(_noun(child))
    _tails(element, "Dial")
    if text and nouns:
        raise TwiMLError(13215, "<Dial> holds either a number as text or nouns, not both")
    if not text and not nouns:
        raise TwiMLError(13223, "<Dial> has nothing to dial")
    kinds = {n.tag for n in nouns}
    if ("Conference" in kinds or "Queue" in kinds) and len(nouns) > 1:
        raise TwiMLError(13215, "<Dial> with a <Conference> or a <Queue> holds nothing else")
    if text:
        _phone(text)
    return Node("Dial", attrs, text, tuple(nouns))


def _phone(number: str) -> None:
    if not re.fullmatch(r"\+?[0-9][0-9 ().\-]{2,30}", number):
        raise TwiMLError(13223, f"{number!r} is not a phone number")
    digits = "+" + re.sub(r"[^0-9]", "", number) if number.startswith("+") else number
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(digits, None if digits.startswith("+") else "US"))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise TwiMLError(13224, f"{number!r} is not a valid phone number")


def _noun(element: ElementTree.Element) -> Node:
    tag = element.tag
    if tag in UNSUPPORTED_NOUNS:
        raise Unsupported(f"<Dial><{tag}>")
    spec = NOUNS[tag]
    attrs = _check_attrs(element, spec, tag)
    text = _text_of(element, spec, tag)
    children = tuple(_leaf(c, tag) for c in _children(element, spec.children, 12200, tag))
    _tails(element, tag)
    if tag == "Number":
        _phone(text)
    elif tag == "Client":
        identities = [c.text for c in children if c.tag == "Identity"]
        if text and identities or len(identities) > 1:
            raise TwiMLError(12200, "<Client> names one identity, as text or in <Identity>")
        identity = text or (identities[0] if identities else "")
        if not _IDENTITY.fullmatch(identity):
            raise TwiMLError(12200, f"<Client> identity {identity!r} (letters, digits and _ only, at most 121)")
        text = identity
    elif tag == "Queue":
        _queue_name(text, 14212, 14213, "Dial><Queue")
    elif tag == "Conference" and len(text) > 128:
        raise TwiMLError(13237, "the conference name is longer than 128 characters")
    return Node(tag, attrs, text, children)


def check_wait(verbs: list[Node], allowed: frozenset[str] = WAIT_VERBS) -> None:
    """A waitUrl / holdUrl document may only use these verbs (13238, Twilio's code for a conference's waitUrl)."""
    for verb in verbs:
        if verb.tag not in allowed:
            raise TwiMLError(13238, f"<{verb.tag}> cannot be used in wait or hold music TwiML")
