"""``X-Twilio-Signature``: Twilio signs every webhook with the account's auth token; the hub checks it.

Twilio computes HMAC-SHA1 (base64) over the URL it requested followed by every POST parameter,
sorted by name, as ``name + value``. The URL is the one configured in Twilio, which is how the hub
is reached from outside (``PUBLIC_BASE_URL``), not what the hub sees behind a TLS-terminating proxy
(``http://127.0.0.1:8080``): so it is rebuilt from ``PUBLIC_BASE_URL`` and the request's raw path and
query. The ``twilio`` package's :class:`~twilio.request_validator.RequestValidator` does the
arithmetic and tries the URL both with and without the scheme's default port (Twilio's back end
signs either form), so ``https://hub.example.com`` and ``https://hub.example.com:443`` both pass.
"""

from __future__ import annotations

import hmac
from typing import Mapping
from urllib.parse import urlparse, urlsplit

from twilio.request_validator import RequestValidator, add_port, remove_port  # type: ignore[import-untyped,unused-ignore]

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(public_base_url: str, path_qs: str) -> str:
    """The URL Twilio requested: ``PUBLIC_BASE_URL`` + the request's path and query.

    When the hub is published under a path (``https://example.com/hub``) and the proxy passes that
    prefix on, the prefix is not written twice.
    """
    base = public_base_url.rstrip("/")
    path = path_qs if path_qs.startswith("/") else "/" + path_qs
    prefix = urlsplit(base).path
    if prefix and (path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "?")):
        path = path[len(prefix):]
    return base + path


def is_valid_signature(
    auth_token: str, public_base_url: str, path_qs: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Whether ``signature`` is Twilio's for this request (False when it is missing or empty).

    :param params: the POST form (a multidict keeps repeated fields, which Twilio signs one by one).
    """
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    url = public_url(public_base_url, path_qs)
    parsed = urlparse(url)
    if "bodySHA256" in parsed.query:  # a JSON body's hash in the query: Twilio's own check does it all
        return bool(validator.validate(url, params, signature.strip()))
    # RequestValidator.validate computes both URL forms (with and without the port) every time; the
    # same two are tried here, the URL as published first and the other only when it fails: the same
    # answer, half the HMACs for every good request
    given = signature.strip().encode("utf-8", "replace")
    forms = sorted((remove_port(parsed), add_port(parsed)), key=lambda form: form != url)
    for candidate in dict.fromkeys(forms):
        if hmac.compare_digest(validator.compute_signature(candidate, params).encode(), given):
            return True
    return False


def compute_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The signature Twilio would send for a POST of ``params`` to ``url`` (tests, stand-ins)."""
    return str(RequestValidator(auth_token).compute_signature(url, params))
