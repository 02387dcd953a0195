"""A Rasa tracker store that keeps the conversation trackers themselves in memory (no JSON per turn).

Rasa's ``InMemoryTrackerStore`` keeps each conversation as JSON text: every turn it decodes the whole
history back into events and replays them (``retrieve``), then encodes it all again (``save``). A profile
of the bot's turn (py-spy on ``rasa run`` under ``bench/bot_latency.py``) put that round trip at about 15 %
of Rasa's time, growing with the conversation's length. This store keeps the ``DialogueStateTracker``
objects: ``retrieve`` hands out the stored tracker, ``save`` stores it again.

What differs from Rasa's store, on purpose:

* Rasa's processor updates the tracker it retrieved in place; a turn that fails half-way (an action error,
  Rasa answering 500) keeps the events it had logged, where Rasa's store would drop them with the unsaved
  copy. The hub hands such a conversation to a person anyway.
* The whole history is kept and handed out, not only the last session's events; Rasa's policies read the
  events after the last ``session_started`` only (``applied_events``), so predictions are the same.
* At most ``max_conversations`` trackers (default 10,000), the least recently used dropped first: a chat
  idle for that long starts again as a new conversation for the bot. Rasa's store grows without bound.

Like Rasa's in-memory store, it lives in one Rasa process and is lost when Rasa stops (the hub's SQL
transcript is the record). Configured in ``endpoints.yml``:

    tracker_store:
      type: runtime.tracker_store.LiveTrackerStore
      max_conversations: 10000
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Iterable, Optional, Text

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)


class LiveTrackerStore(TrackerStore):
    """Conversation trackers as objects, least recently used dropped beyond ``max_conversations``."""

    def __init__(
        self, domain: Domain, host: Optional[str] = None, event_broker: Optional[EventBroker] = None,
        max_conversations: int = 10_000, **kwargs: Any,
    ) -> None:
        self._trackers: "OrderedDict[str, DialogueStateTracker]" = OrderedDict()
        self.max_conversations = max(1, int(max_conversations))
        super().__init__(domain, event_broker, **kwargs)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Keep the tracker (and stream its new events when an event broker is configured)."""
        if self.event_broker is not None:
            await self.stream_events(tracker)
        self._trackers[tracker.sender_id] = tracker
        self._trackers.move_to_end(tracker.sender_id)
        while len(self._trackers) > self.max_conversations:
            dropped, _ = self._trackers.popitem(last=False)
            logger.debug("LiveTrackerStore: dropped the least recently used conversation %s", dropped)

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The conversation's tracker, or None for a new conversation."""
        tracker = self._trackers.get(sender_id)
        if tracker is not None:
            self._trackers.move_to_end(sender_id)
        return tracker

    async def retrieve_full_tracker(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The same tracker (it holds every session of the conversation)."""
        return await self.retrieve(sender_id)

    async def keys(self) -> Iterable[Text]:
        """The conversations held."""
        return list(self._trackers.keys())
