"""The channel registry: every channel the hub serves, as data, with the adapter that delivers on it.

The composition root builds it (``contact_center.app``); the use cases look channels up by name and
never test a channel's name themselves. Adding a channel is a :class:`ChannelSpec` here (or from the
adapter's package) plus ``register`` with its adapter: no use case changes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from contact_center.domain.channels import ChannelSpec, ConversationPolicy, UnknownChannel
from contact_center.ports import ChannelAdapter

# The channels the hub knows how to speak, with their defaults (the share of an agent's attention each
# takes is the routing core's CHANNEL_WEIGHT: a chat a third, an SMS or WhatsApp thread a quarter).
WEB_CHAT = ChannelSpec(
    name="chat", label="Web chat", contact_kind="web", interaction_kind="chat",
    policy=ConversationPolicy.PER_CUSTOMER, concurrency=3.0, max_text=4000, tracks_presence=True,
    noun="chat",
)
SMS = ChannelSpec(
    name="sms", label="SMS", contact_kind="sms", interaction_kind="sms",
    policy=ConversationPolicy.PER_CUSTOMER, concurrency=4.0, max_text=1600, buttons_as_text=True,
    counts_segments=True, noun="SMS conversation", media=True,
)
WHATSAPP = ChannelSpec(
    name="whatsapp", label="WhatsApp", contact_kind="whatsapp", interaction_kind="whatsapp",
    policy=ConversationPolicy.PER_CUSTOMER, concurrency=4.0, max_text=4096, buttons_as_text=True,
    reply_window_seconds=24 * 3600, noun="WhatsApp conversation", media=True,
)
EMAIL = ChannelSpec(
    name="email", label="Email", contact_kind="email", interaction_kind="email",
    policy=ConversationPolicy.PER_THREAD, concurrency=2.0, max_text=100_000, noun="email thread",
    reopen_window_seconds=14 * 24 * 3600, media=True, rich_text=True,
)
VOICE = ChannelSpec(
    name="phone", label="Phone", contact_kind="phone", interaction_kind="call",
    policy=ConversationPolicy.PER_CALL, concurrency=1.0, max_text=2000, buttons_as_text=True, noun="call",
    self_service_first=True, connects_agent=True,
    call_actions=("hold", "unhold", "mute", "unmute", "hang_up", "transfer", "consult", "complete_transfer", "cancel_consult"),
)
# Web callback (docs/subsystems/callback.md): one conversation per attempt (thread ``cb-<callback>-<attempt>``), routed
# like a call (the routing core's weight 1); when an agent accepts, the adapter rings the agent and dials the customer
CALLBACK = ChannelSpec(
    name="callback", label="Web callback", contact_kind="phone", interaction_kind="call",
    policy=ConversationPolicy.PER_CALL, concurrency=1.0, max_text=2000, buttons_as_text=True, noun="callback",
    connects_agent=True, call_actions=("hold", "unhold", "mute", "unmute", "hang_up", "consult", "complete_transfer", "cancel_consult"),
)
KNOWN: tuple[ChannelSpec, ...] = (WEB_CHAT, SMS, WHATSAPP, EMAIL, VOICE, CALLBACK)


class ChannelRegistry:
    """Channel name -> (spec, outbound adapter). An adapter of ``None`` means a live channel: the
    customer is connected to the hub (web chat's ``/customer`` room) and gets messages as they are
    published."""

    def __init__(self) -> None:
        self._specs: dict[str, ChannelSpec] = {}
        self._adapters: dict[str, ChannelAdapter | None] = {}

    def register(self, spec: ChannelSpec, adapter: ChannelAdapter | None = None) -> None:
        """Add (or replace) a channel."""
        self._specs[spec.name] = spec
        self._adapters[spec.name] = adapter

    def spec(self, name: str) -> ChannelSpec:
        """The channel's spec (raises UnknownChannel)."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownChannel(name) from None

    def get(self, name: str) -> ChannelSpec | None:
        """The channel's spec, or None when it is not registered."""
        return self._specs.get(name)

    def adapter(self, name: str) -> ChannelAdapter | None:
        """The channel's outbound adapter (None: live over the hub's own socket)."""
        self.spec(name)
        return self._adapters.get(name)

    def specs(self) -> list[ChannelSpec]:
        """Every registered channel, in registration order."""
        return list(self._specs.values())

    def names(self) -> list[str]:
        """The registered channels' names."""
        return list(self._specs)

    def live(self) -> list[ChannelSpec]:
        """The channels whose customers are connected to the hub while they wait (web chat)."""
        return [s for s in self._specs.values() if s.tracks_presence]

    def with_defaults(self, *, bot_channels: Iterable[str] | None = None, default_queues: dict[str, str] | None = None) -> None:
        """Apply the settings: which channels go to the bot first (None: unchanged), and default queues."""
        bots = None if bot_channels is None else set(bot_channels)
        queues = default_queues or {}
        for name, spec in list(self._specs.items()):
            self._specs[name] = replace(
                spec, bot_first=spec.bot_first if bots is None else name in bots,
                default_queue=queues.get(name, spec.default_queue),
            )

    def describe(self) -> list[dict[str, object]]:
        """What the console needs to know of each channel (``hello.channels``)."""
        return [
            {
                "name": s.name, "label": s.label, "max_text": s.max_text, "segments": s.counts_segments,
                "buttons_as_text": s.buttons_as_text, "reply_window_seconds": s.reply_window_seconds,
                "media": s.media, "rich_text": s.rich_text, "policy": s.policy.value,
                "call_actions": list(s.call_actions), "bot": s.bot_first,
            }
            for s in self._specs.values()
        ]
