"""A small client of Rasa's REST channel (``POST /webhooks/rest/webhook``) with a token and a time limit.

Rasa runs in its own process and virtual environment (it cannot share the hub's dependencies), bound
to loopback, and requires ``?token=`` on every call (``rasa run --enable-api --auth-token``). One
customer message in gives the list of the bot's replies out; each reply may carry ``text``,
``buttons`` and ``custom`` JSON (the bot's handoff signal, see bot/README.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp


class BotUnavailable(Exception):
    """Rasa could not be reached, answered with an error, or took longer than the limit."""


@dataclass(frozen=True)
class BotReply:
    """One message from the bot."""

    text: str = ""
    buttons: tuple[dict[str, str], ...] = ()
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def handoff(self) -> bool:
        """Whether the bot asks for a person to take over."""
        return bool(self.custom.get("handoff"))


def parse_replies(data: Any) -> list[BotReply]:
    """Rasa's REST response turned into replies; anything malformed is dropped, never trusted."""
    if not isinstance(data, list):
        raise BotUnavailable("the bot's answer is not a list of messages")
    out = []
    for item in data:
        if not isinstance(item, dict):
            continue
        text = item.get("text") if isinstance(item.get("text"), str) else ""
        buttons = []
        for b in item.get("buttons") or ():
            if isinstance(b, dict) and isinstance(b.get("title"), str):
                payload = b.get("payload") if isinstance(b.get("payload"), str) else b["title"]
                buttons.append({"title": b["title"][:80], "payload": payload[:200]})
        custom = item.get("custom") if isinstance(item.get("custom"), dict) else {}
        if text or buttons or custom:
            out.append(BotReply(text[:4000], tuple(buttons[:10]), custom))
    return out


class RasaClient:
    """Talks to one Rasa server.

    :param base_url: e.g. ``http://127.0.0.1:5005``.
    :param token: Rasa's ``--auth-token`` (sent as ``?token=``).
    :param timeout: seconds a turn may take before the bot counts as unavailable.
    """

    def __init__(self, base_url: str, token: str = "", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    def _params(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    async def send(self, sender: str, text: str, metadata: dict[str, Any] | None = None) -> list[BotReply]:
        """One turn: the customer's text in, the bot's replies out."""
        body = {"sender": sender, "message": text, "metadata": metadata or {}}
        try:
            async with self._http().post(f"{self.base_url}/webhooks/rest/webhook", json=body, params=self._params()) as resp:
                if resp.status != 200:
                    raise BotUnavailable(f"the bot answered HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise BotUnavailable(f"the bot did not answer: {type(exc).__name__}: {exc}") from exc
        return parse_replies(data)

    async def parse(self, text: str) -> dict[str, Any]:
        """What the NLU makes of one text, without a conversation (``POST /model/parse``):
        ``{"intent": name, "confidence": 0..1, "entities": {name: value}}``."""
        try:
            async with self._http().post(f"{self.base_url}/model/parse", json={"text": text[:2000]}, params=self._params()) as resp:
                if resp.status != 200:
                    raise BotUnavailable(f"the bot answered HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise BotUnavailable(f"the bot did not answer: {type(exc).__name__}: {exc}") from exc
        intent = data.get("intent") if isinstance(data, dict) else None
        entities = data.get("entities") if isinstance(data, dict) else None
        return {
            "intent": str((intent or {}).get("name") or "") if isinstance(intent, dict) else "",
            "confidence": float((intent or {}).get("confidence") or 0.0) if isinstance(intent, dict) else 0.0,
            "entities": {str(e.get("entity")): e.get("value") for e in entities or [] if isinstance(e, dict) and e.get("entity")},
        }

    async def ready(self) -> bool:
        """Whether Rasa is up with a model loaded (``GET /status``)."""
        try:
            async with self._http().get(f"{self.base_url}/status", params=self._params()) as resp:
                if resp.status != 200:
                    return False
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return False
        return isinstance(data, dict) and bool(data.get("model_file") or data.get("model_id"))

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
