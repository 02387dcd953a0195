"""Twilio's REST API from the hub: Messages.create, and the media customers send.

The official ``twilio`` package does the talking (``Client.messages.create_async`` over its aiohttp
client), so the wire format is Twilio's own. Pointing it elsewhere (the local stand-in) changes only
the API domain's ``base_url`` (``TWILIO_API_BASE_URL``) and the credentials; paths, form fields and
JSON stay the same. Around it: a per-sender send rate, bounded retries with exponential back-off on
429 and 5xx, a ``StatusCallback`` on every message, and Twilio's refusals turned into ``failed``
reports an agent can read. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import aiohttp
from twilio.base import values  # type: ignore[import-untyped,unused-ignore]
from twilio.base.exceptions import TwilioException  # type: ignore[import-untyped,unused-ignore]
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped,unused-ignore]
from twilio.http.response import Response  # type: ignore[import-untyped,unused-ignore]
from twilio.rest import Client  # type: ignore[import-untyped,unused-ignore]

from contact_center.domain.channels import DeliveryStatus, delivery_status
from contact_center.ports import DeliveryReport
from integrations.twilio.config import TwilioConfig
from integrations.twilio.errors import agent_words
from integrations.twilio.media import MediaRefused, checked_type
from integrations.twilio.ratelimit import SendRateLimiter

log = logging.getLogger(__name__)

DEFAULT_TRIES = 4
DEFAULT_BACKOFF = 0.5  # seconds before the 2nd try; doubled for each later one
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
# A non-empty mapping keeps ClientBase from reading TWILIO_EDGE / TWILIO_REGION from os.environ,
# which would rewrite the host of TWILIO_API_BASE_URL.
NO_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


def basic_authorization(login: str, password: str) -> str:
    """The ``Authorization`` header of HTTP Basic credentials."""
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode("ascii")


class TimedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc,unused-ignore]
    """The package's aiohttp client with a time limit on every request (it passes none of its own)."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """One request, limited to ``timeout`` or the client's own limit, its credentials in the header."""
        if auth is not None:
            headers = {**(headers or {}), "Authorization": basic_authorization(*auth)}
        return await super().request(
            method, url, params, data, headers, None, timeout or self.timeout, allow_redirects
        )


def _retryable(status: int | None) -> bool:
    return status == 429 or (status is not None and status >= 500)


def _provider_text(exc: TwilioException) -> str:
    text = str(getattr(exc, "msg", "") or getattr(exc, "detail", "") or getattr(exc, "title", "") or "")
    return text.removeprefix("Unable to create record: ").strip()


def refusal_report(exc: TwilioException) -> DeliveryReport:
    """A ``failed`` report for an error answer of Twilio's API."""
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None) or status
    if isinstance(status, int) and status >= 500:
        words = f"Twilio is not answering properly (HTTP {status}); the message was not sent. Try again later."
    else:
        words = agent_words(code, _provider_text(exc))
    return DeliveryReport(status=DeliveryStatus.FAILED.value, error_code=str(code) if code else None, error_message=words)


def unreachable_report(exc: BaseException) -> DeliveryReport:
    """A ``failed`` report for a Twilio the hub could not talk to."""
    return DeliveryReport(
        status=DeliveryStatus.FAILED.value,
        error_message=f"The hub could not reach Twilio ({type(exc).__name__}); the message was not sent.",
    )


def accepted_report(created: Any) -> DeliveryReport:
    """The report for a message Twilio took (``queued``, usually)."""
    status = delivery_status(str(getattr(created, "status", "") or "")) or DeliveryStatus.QUEUED
    return DeliveryReport(status=status.value, provider_id=getattr(created, "sid", None))


class TwilioRestClient:
    """One Twilio account's REST API, used by the messaging adapter and the webhooks.

    :param tries: attempts at most for one message (429 and 5xx answers and refused connections are retried).
    :param backoff: seconds before the second attempt; each later wait doubles.
    :param timeout: seconds one API request may take.
    :param media_timeout: seconds one media download may take (the downloads run while Twilio
        waits for the webhook's answer, which it waits for 15 seconds by default).
    """

    def __init__(
        self,
        config: TwilioConfig,
        *,
        tries: int = DEFAULT_TRIES,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float = 15.0,
        media_timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        limiter: SendRateLimiter | None = None,
    ) -> None:
        self.config = config
        self.tries = max(1, tries)
        self.backoff = backoff
        self.timeout = timeout
        self.media_timeout = media_timeout
        self._sleep = sleep
        self.limiter = limiter or SendRateLimiter(config.send_rate)
        self._twilio: Client | None = None
        self._http: TimedHttpClient | None = None
        self._media: aiohttp.ClientSession | None = None

    def _client(self) -> Client:
        """The ``twilio`` client, made on first use (its aiohttp session needs the running loop)."""
        if self._twilio is None:
            self._http = TimedHttpClient(timeout=self.timeout, logger=logging.getLogger("integrations.twilio.http"))
            self._twilio = Client(
                self.config.account_sid, self.config.auth_token, http_client=self._http, environment=NO_ENVIRONMENT
            )
            self._twilio.api.base_url = self.config.api_base_url
        return self._twilio

    async def send_message(self, *, from_: str, to: str, body: str, media_urls: Sequence[str] = ()) -> DeliveryReport:
        """Messages.create with our StatusCallback; never raises for Twilio's refusals (a ``failed`` report)."""
        fields: dict[str, Any] = {
            "to": to,
            "from_": from_,
            "body": body if body else values.unset,
            "media_url": list(media_urls) if media_urls else values.unset,
            "status_callback": self.config.status_callback_url,
        }
        attempt = 1
        while True:
            await self.limiter.acquire(from_)
            report, retry = await self._attempt(fields)
            if not retry or attempt >= self.tries:
                return report
            log.warning("twilio send retried", extra={"attempt": attempt, "error_code": report.error_code})
            await self._sleep(self.backoff * 2 ** (attempt - 1))
            attempt += 1

    async def _attempt(self, fields: dict[str, Any]) -> tuple[DeliveryReport, bool]:
        """One Messages.create: the report, and whether trying again may help."""
        try:
            created = await self._client().messages.create_async(**fields)
        except TwilioException as exc:
            return refusal_report(exc), _retryable(getattr(exc, "status", None))
        except aiohttp.ClientConnectorError as exc:
            return unreachable_report(exc), True
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # The request may have reached Twilio: sending it again could text the customer twice.
            return unreachable_report(exc), False
        return accepted_report(created), False

    def _media_session(self) -> aiohttp.ClientSession:
        if self._media is None or self._media.closed:
            self._media = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.media_timeout))
        return self._media

    def _check_media_url(self, url: str) -> None:
        """Only Twilio's own media URLs get the account's credentials."""
        wanted = urlsplit(self.config.api_base_url)
        got = urlsplit(url)
        if (got.scheme, got.netloc) != (wanted.scheme, wanted.netloc) or not got.path.startswith(wanted.path + "/"):
            raise MediaRefused(f"the media URL is not on Twilio's API ({self.config.api_base_url})")

    async def download_media(self, url: str, declared_type: str = "") -> tuple[bytes, str]:
        """The bytes of a customer's attachment and their sniffed type (raises MediaRefused).

        Sent with the account's Basic credentials; Twilio answers with a redirect to its CDN, which
        is followed (aiohttp drops the Authorization header when a redirect leaves Twilio's host). More than
        ``MEDIA_MAX_BYTES`` is refused without reading the rest.
        """
        self._check_media_url(url)
        headers = {"Authorization": basic_authorization(self.config.account_sid, self.config.auth_token)}
        try:
            async with self._media_session().get(url, headers=headers, max_redirects=_MAX_REDIRECTS) as resp:
                if resp.status != 200:
                    raise MediaRefused(f"Twilio answered HTTP {resp.status} for the media")
                data = await self._read_bounded(resp)
                return data, checked_type(data, (declared_type, resp.headers.get("Content-Type")))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise MediaRefused(f"could not download it ({type(exc).__name__})") from exc

    async def _read_bounded(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.config.media_max_bytes
        too_big = MediaRefused(f"the file is larger than {limit} bytes (MEDIA_MAX_BYTES)")
        if resp.content_length is not None and resp.content_length > limit:
            raise too_big
        data = bytearray()
        async for chunk in resp.content.iter_chunked(_CHUNK):
            data += chunk
            if len(data) > limit:
                raise too_big
        return bytes(data)

    async def close(self) -> None:
        """Close the HTTP sessions."""
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._twilio = None
        if self._media is not None:
            await self._media.close()
            self._media = None
