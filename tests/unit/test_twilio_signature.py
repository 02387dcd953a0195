"""``X-Twilio-Signature`` as the hub checks it: Twilio's own test vectors, ports, proxies, bad and missing signatures.

The vectors are those of the twilio-python library's tests (tests/unit/test_request_validator.py):
auth token ``12345``, the URL ``https://mycompany.com/myapp.php?foo=1&bar=2`` and a voice webhook's
parameters.
"""

from __future__ import annotations

import pytest
from multidict import MultiDict

from integrations.twilio.signature import compute_signature, is_valid_signature, public_url

TOKEN = "12345"
PATH = "/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="  # over https://mycompany.com/myapp.php?foo=1&bar=2
WITH_443 = "kvajT1Ptam85bY51eRf/AJRuM3w="  # over the same URL written with :443
HTTP_WITH_1234 = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="  # over http://mycompany.com:1234/...
HTTP_WITH_80 = "0ZXoZLH/DfblKGATFgpif+LLRf4="  # over http://mycompany.com:80/...
DUPLICATES = "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_the_library_vector_computes_and_validates() -> None:
    assert compute_signature(TOKEN, "https://mycompany.com" + PATH, PARAMS) == EXPECTED
    assert is_valid_signature(TOKEN, "https://mycompany.com", PATH, PARAMS, EXPECTED)


def test_repeated_fields_are_signed_one_by_one() -> None:
    params = MultiDict([("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")])
    assert compute_signature(TOKEN, "https://mycompany.com" + PATH, params) == DUPLICATES
    assert is_valid_signature(TOKEN, "https://mycompany.com", PATH, params, DUPLICATES)


@pytest.mark.parametrize(
    "base, signature",
    [
        ("https://mycompany.com:1234", EXPECTED),  # signed without the port, configured with one
        ("https://mycompany.com", WITH_443),  # Twilio signed the URL with :443
        ("https://mycompany.com:443", EXPECTED),  # and the other way round
        ("http://mycompany.com:1234", HTTP_WITH_1234),
        ("http://mycompany.com", HTTP_WITH_80),
    ],
)
def test_with_and_without_the_port(base: str, signature: str) -> None:
    assert is_valid_signature(TOKEN, base, PATH, PARAMS, signature)


def test_behind_a_tls_terminating_proxy_the_public_url_counts() -> None:
    # The hub hears http://127.0.0.1:8080/webhooks/...; Twilio signed https://hub.example.com/webhooks/...
    params = {"MessageSid": "SM" + "a" * 32, "Body": "hello"}
    signature = compute_signature("tok", "https://hub.example.com/webhooks/twilio/messaging", params)
    assert is_valid_signature("tok", "https://hub.example.com", "/webhooks/twilio/messaging", params, signature)
    assert not is_valid_signature("tok", "http://127.0.0.1:8080", "/webhooks/twilio/messaging", params, signature)


def test_a_path_prefix_is_not_written_twice() -> None:
    assert public_url("https://example.com/hub", "/webhooks/x?a=1") == "https://example.com/hub/webhooks/x?a=1"
    assert public_url("https://example.com/hub/", "/hub/webhooks/x") == "https://example.com/hub/webhooks/x"
    assert public_url("https://example.com", "webhooks/x") == "https://example.com/webhooks/x"


def test_the_query_string_is_part_of_what_is_signed() -> None:
    assert not is_valid_signature(TOKEN, "https://mycompany.com", "/myapp.php?foo=1&bar=3", PARAMS, EXPECTED)


@pytest.mark.parametrize("signature", [None, "", "   ", "RSOYDt4T1cUTdK1PDd93/VVr8B8", EXPECTED.lower()])
def test_missing_or_bad_signatures_fail(signature: str | None) -> None:
    assert not is_valid_signature(TOKEN, "https://mycompany.com", PATH, PARAMS, signature)


def test_a_changed_parameter_or_another_token_fails() -> None:
    assert not is_valid_signature(TOKEN, "https://mycompany.com", PATH, {**PARAMS, "Digits": "1235"}, EXPECTED)
    assert not is_valid_signature("54321", "https://mycompany.com", PATH, PARAMS, EXPECTED)
    assert not is_valid_signature("", "https://mycompany.com", PATH, PARAMS, EXPECTED)
