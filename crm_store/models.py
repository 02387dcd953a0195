"""SQLModel tables of the contact repository: the single source of truth for the hub."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional

from sqlalchemy import false as sa_false
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Integer primary keys that are BIGINT on PostgreSQL and INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store the instant in UTC; naive values are taken to be UTC already."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc) if dialect.name != "sqlite" else value
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Read the instant back with its UTC zone."""
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _created() -> Any:
    """A required timestamp that defaults to now."""
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _when() -> Any:
    """An optional timestamp."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


def _id() -> Any:
    """An auto-incrementing big integer primary key."""
    return Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))


def _json(default: Any) -> Any:
    """A JSON column (JSONB-compatible on PostgreSQL, TEXT on SQLite)."""
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class Customer(SQLModel, table=True):
    """A person the shop deals with, on any channel."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_name_lower", text("lower(display_name)")),)

    id: Optional[int] = _id()
    display_name: str = Field(default="", max_length=200)
    tier: str = Field(default="standard", max_length=20)  # standard / silver / gold
    merged_into_id: Optional[int] = Field(default=None, foreign_key="customers.id", index=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class ContactPoint(SQLModel, table=True):
    """One address a customer is reached at (phone, email, web visitor id, SMS, WhatsApp)."""

    __tablename__ = "contact_points"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_contact_points_kind_value"),)

    id: Optional[int] = _id()
    customer_id: int = Field(foreign_key="customers.id", index=True)
    kind: str = Field(max_length=16)
    value: str = Field(max_length=254)
    verified: bool = Field(default=False)
    opted_out_at: Optional[datetime] = _when()  # the customer texted STOP from this address: send nothing
    # a permanent delivery failure (an email's 5.x.x bounce): replies are refused until they write again
    undeliverable_at: Optional[datetime] = _when()
    undeliverable_reason: Optional[str] = Field(default=None, max_length=300)
    created_at: datetime = _created()


class CustomerMerge(SQLModel, table=True):
    """Audit record of two customers merged into one, with what moved."""

    __tablename__ = "customer_merges"

    id: Optional[int] = _id()
    source_customer_id: int = Field(index=True)
    target_customer_id: int = Field(foreign_key="customers.id", index=True)
    actor: str = Field(max_length=120)
    reason: str = Field(default="", max_length=500)
    moved: dict[str, Any] = _json(dict)
    created_at: datetime = _created()


class Agent(SQLModel, table=True):
    """A person working in the console: agent, supervisor or admin."""

    __tablename__ = "agents"

    id: Optional[int] = _id()
    username: str = Field(max_length=80, unique=True)
    display_name: str = Field(max_length=120)
    password_hash: str = Field(max_length=255)
    role: str = Field(default="agent", max_length=20)  # agent / supervisor / admin
    skills: dict[str, int] = _json(dict)  # skill -> level 1..5
    capacity: dict[str, int] = _json(dict)  # channel -> max concurrent contacts
    active: bool = Field(default=True)
    # calls ring this E.164 number instead of the console's softphone (None: the softphone)
    phone_number: Optional[str] = Field(default=None, max_length=20)
    created_at: datetime = _created()


class RevokedSession(SQLModel, table=True):
    """An agent session ended by logout before its cookie expired: its cookie is refused on every node."""

    __tablename__ = "revoked_sessions"

    session_id: str = Field(primary_key=True, max_length=64)
    agent_id: int = Field(foreign_key="agents.id")
    revoked_at: datetime = _created()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))  # the cookie's own end


class Queue(SQLModel, table=True):
    """A queue contacts wait in, with the skills it needs and its service-level target."""

    __tablename__ = "queues"

    id: Optional[int] = _id()
    name: str = Field(max_length=80, unique=True)
    skills_required: list[str] = _json(list)
    channels: list[str] = _json(list)
    sl_target_seconds: int = Field(default=20)
    sl_target_ratio: float = Field(default=0.8)
    max_waiting: int = Field(default=50)
    overflow_queue_id: Optional[int] = Field(default=None, foreign_key="queues.id")
    overflow_after_seconds: Optional[int] = Field(default=None)
    # the phone: calls bridged from this queue are recorded (the caller hears a consent notice first); off by default
    record_calls: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    # web callback (migration 0014): agent_first (default) or customer_first; a voicemail left on a machine ("" : none);
    # the queue's own opening hours for callback slots ("0,1,2,3,4 09:00-17:00 +60", "always"; "" : the hub's)
    callback_mode: str = Field(default="agent_first", max_length=16, sa_column_kwargs={"server_default": "agent_first"})
    callback_voicemail: str = Field(default="", max_length=500, sa_column_kwargs={"server_default": ""})
    callback_hours: str = Field(default="", max_length=80, sa_column_kwargs={"server_default": ""})


# Per-customer channels (chat, SMS, WhatsApp): at most one conversation that is not closed per customer
# and channel. Per-thread and per-call channels (email, voice) carry a thread key instead, unique per channel.
OPEN_PER_CUSTOMER_WHERE = "thread_key IS NULL AND status <> 'closed'"
THREAD_WHERE = "thread_key IS NOT NULL"


class Conversation(SQLModel, table=True):
    """One contact with a customer on one channel, from first message to wrap-up."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_customer_created", "customer_id", "created_at"),
        Index("ix_conversations_queue_queued", "queue_id", "queued_at"),
        # Two hub processes that receive a new customer's first messages at once both try to open the
        # conversation; the second one's insert fails and finds the first.
        Index(
            "uq_conversations_open_per_channel", "customer_id", "channel", unique=True,
            sqlite_where=text(OPEN_PER_CUSTOMER_WHERE), postgresql_where=text(OPEN_PER_CUSTOMER_WHERE),
        ),
        Index(
            "uq_conversations_thread", "channel", "thread_key", unique=True,
            sqlite_where=text(THREAD_WHERE), postgresql_where=text(THREAD_WHERE),
        ),
    )

    id: Optional[int] = _id()
    customer_id: int = Field(foreign_key="customers.id")
    channel: str = Field(max_length=16)
    thread_key: Optional[str] = Field(default=None, max_length=200)  # per-thread / per-call channels only
    customer_address: str = Field(default="", max_length=254)  # the customer's address on the channel
    our_address: str = Field(default="", max_length=254)  # the shop's address it came to (a number, a mailbox)
    status: str = Field(default="open", max_length=16, index=True)
    queue_id: Optional[int] = Field(default=None, foreign_key="queues.id")
    priority: int = Field(default=0)
    assigned_agent_id: Optional[int] = Field(default=None, foreign_key="agents.id", index=True)
    subject: str = Field(default="", max_length=300)
    last_seq: int = Field(default=0)
    disposition: Optional[str] = Field(default=None, max_length=40)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    assigned_at: Optional[datetime] = _when()
    closed_at: Optional[datetime] = _when()
    queued_at: Optional[datetime] = _when()  # when it first entered an agent queue
    abandoned_at: Optional[datetime] = _when()  # when the customer left before being answered
    # the place it takes in its queue when not its creation (a callback keeps the place of the call it replaces)
    queue_since: Optional[datetime] = _when()
    # the only agent it may be offered to until first answered (an agent's click-to-call: the call is theirs)
    pinned_agent_id: Optional[int] = Field(default=None, foreign_key="agents.id")


class Message(SQLModel, table=True):
    """One message in a conversation, with its strictly increasing sequence number."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        UniqueConstraint("conversation_id", "client_msg_id", name="uq_messages_client_msg_id"),
        UniqueConstraint("provider_id", name="uq_messages_provider_id"),
    )

    id: Optional[int] = _id()
    conversation_id: int = Field(foreign_key="conversations.id")
    seq: int
    sender_kind: str = Field(max_length=16)  # customer / agent / bot / system
    sender_id: Optional[str] = Field(default=None, max_length=80)
    body: str = Field(default="")
    attachments: list[dict[str, Any]] = _json(list)
    internal: bool = Field(default=False)  # an internal note, never shown to the customer
    client_msg_id: Optional[str] = Field(default=None, max_length=100)
    provider_id: Optional[str] = Field(default=None, max_length=100)
    # outbound messages of provider channels: queued / sent / delivered / read / failed / undelivered,
    # only ever moved forward (contact_center.domain.channels.moves_forward)
    delivery_status: Optional[str] = Field(default=None, max_length=16)
    delivery_error_code: Optional[str] = Field(default=None, max_length=20)
    delivery_error: Optional[str] = Field(default=None, max_length=300)
    created_at: datetime = _created()


class Interaction(SQLModel, table=True):
    """One touch with a customer on any channel: the customer contact repository's unit."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_timeline", "customer_id", "occurred_at", "id"),)

    id: Optional[int] = _id()
    customer_id: int = Field(foreign_key="customers.id")
    kind: str = Field(max_length=24)
    channel: str = Field(max_length=16)
    occurred_at: datetime = _created()
    agent_id: Optional[int] = Field(default=None, foreign_key="agents.id")
    conversation_id: Optional[int] = Field(default=None, foreign_key="conversations.id")
    order_id: Optional[int] = Field(default=None, foreign_key="orders.id")
    summary: str = Field(default="", max_length=500)
    payload: dict[str, Any] = _json(dict)


class Product(SQLModel, table=True):
    """A product the shop sells, with its stock and options."""

    __tablename__ = "products"

    id: Optional[int] = _id()
    sku: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=200)
    description: str = Field(default="")
    category: str = Field(default="", max_length=80)
    price_minor: int
    currency: str = Field(default="EUR", max_length=3)
    stock: int = Field(default=0)
    low_stock_threshold: int = Field(default=5)
    lead_time_days: int = Field(default=1)
    options: dict[str, list[str]] = _json(dict)
    active: bool = Field(default=True)


class Order(SQLModel, table=True):
    """A customer's order, with its price and promised delivery date."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_created", "customer_id", "created_at"),
        Index("ix_orders_open_promised", "status", "promised_date"),
    )

    id: Optional[int] = _id()
    customer_id: int = Field(foreign_key="customers.id")
    status: str = Field(default="placed", max_length=16)
    channel: str = Field(default="web", max_length=16)
    subtotal_minor: int = Field(default=0)
    shipping_minor: int = Field(default=0)
    total_minor: int = Field(default=0)
    currency: str = Field(default="EUR", max_length=3)
    delivery_address: str = Field(default="", max_length=500)
    contact_phone: Optional[str] = Field(default=None, max_length=32)
    contact_email: Optional[str] = Field(default=None, max_length=254)
    notes: str = Field(default="")
    promised_date: Optional[date] = Field(default=None)
    idempotency_key: Optional[str] = Field(default=None, max_length=100, unique=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OrderLine(SQLModel, table=True):
    """One product line of an order, priced when the order was placed."""

    __tablename__ = "order_lines"

    id: Optional[int] = _id()
    order_id: int = Field(foreign_key="orders.id", index=True)
    product_id: int = Field(foreign_key="products.id")
    sku: str = Field(max_length=40)
    name: str = Field(max_length=200)
    options: dict[str, str] = _json(dict)
    quantity: int
    unit_price_minor: int
    line_total_minor: int


class OrderEvent(SQLModel, table=True):
    """One step in an order's status history."""

    __tablename__ = "order_events"

    id: Optional[int] = _id()
    order_id: int = Field(foreign_key="orders.id", index=True)
    from_status: Optional[str] = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    actor: str = Field(default="system", max_length=120)
    note: str = Field(default="", max_length=500)
    occurred_at: datetime = _created()


class AgentStateLog(SQLModel, table=True):
    """One stretch of time an agent spent in one state (available, busy, wrap_up, away, offline).

    The open stretch has no ``ended_at``; recording a new state closes it. Time in state and occupancy
    are computed from these rows, so they survive a restart.
    """

    __tablename__ = "agent_state_log"
    __table_args__ = (Index("ix_agent_state_log_agent_started", "agent_id", "started_at"),)

    id: Optional[int] = _id()
    agent_id: int = Field(foreign_key="agents.id")
    state: str = Field(max_length=16)
    started_at: datetime = _created()
    ended_at: Optional[datetime] = _when()


class WebhookReceipt(SQLModel, table=True):
    """A provider webhook we have taken in (a Twilio MessageSid, a status callback): a repeat is dropped.

    ``payload`` keeps the form as it arrived (without secrets), for audit and for a status callback that
    arrived before the message it speaks of had its provider id.
    """

    __tablename__ = "webhook_receipts"
    __table_args__ = (UniqueConstraint("provider", "kind", "key", name="uq_webhook_receipts_key"),)

    id: Optional[int] = _id()
    provider: str = Field(max_length=16)
    kind: str = Field(max_length=24)
    key: str = Field(max_length=160)
    payload: dict[str, Any] = _json(dict)
    received_at: datetime = _created()


class EmailMessage(SQLModel, table=True):
    """An email the hub took in (SMTP or IMAP) or sent: its raw bytes' key, its headers for threading.

    ``dedup_key`` is the Message-ID (angle brackets stripped, case kept) or ``sha256:<hex of the raw
    bytes>`` when it has none; unique per ``mailbox`` (the shop's address it reached, lower-cased), so
    one message fetched by IMAP and delivered by SMTP is one row. ``state``: ``received`` (raw bytes kept,
    not yet in a conversation: a crash here is finished by the recovery pass), ``stored`` (in the
    conversation ``conversation_id`` as its message ``message_seq``), ``sent`` (ours), ``ignored``
    (a loop or a list: kept, never answered), ``failed`` (could not be parsed into a conversation).
    """

    __tablename__ = "email_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "dedup_key", name="uq_email_messages_mailbox_key"),
        Index("ix_email_messages_message_id", "message_id"),
        Index("ix_email_messages_state", "state"),
    )

    id: Optional[int] = _id()
    mailbox: str = Field(max_length=254)
    dedup_key: str = Field(max_length=300)
    message_id: Optional[str] = Field(default=None, max_length=300)  # without angle brackets
    direction: str = Field(max_length=4)  # in / out
    source: str = Field(default="smtp", max_length=8)  # smtp / imap / hub
    state: str = Field(default="received", max_length=12)
    raw_key: str = Field(default="", max_length=100)  # the media store's key of the raw bytes
    size: int = Field(default=0)
    from_addr: str = Field(default="", max_length=254)
    subject: str = Field(default="", max_length=500)
    in_reply_to: Optional[str] = Field(default=None, max_length=300)
    references: list[str] = _json(list)
    conversation_id: Optional[int] = Field(default=None, foreign_key="conversations.id", index=True)
    message_seq: Optional[int] = Field(default=None)
    detail: dict[str, Any] = _json(dict)  # classification (auto, bounce, spoofed), errors
    created_at: datetime = _created()


class ImapCursor(SQLModel, table=True):
    """Where the IMAP poller stands in one folder of one mailbox: UIDVALIDITY and the last UID taken in."""

    __tablename__ = "imap_cursors"
    __table_args__ = (UniqueConstraint("account", "folder", name="uq_imap_cursors_account_folder"),)

    id: Optional[int] = _id()
    account: str = Field(max_length=254)  # user@host, never the password
    folder: str = Field(max_length=200)
    uidvalidity: int = Field(default=0, sa_type=BigInteger)
    last_uid: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = _created()


# --- order evaluation and one-to-one marketing (issue 18; docs/subsystems/order-evaluation.md) ------------


class EvaluationSettings(SQLModel, table=True):
    """A shop's settings for the fulfilment queue (ELECTRE II thresholds), customer value and associations.

    One row per shop (the demo has one, ``default``); missing rows mean the defaults of
    ``crm_store.domain.fulfilment`` / ``rfm`` / ``associations``. ``version`` grows with every change, so
    the queue knows to re-rank.
    """

    __tablename__ = "evaluation_settings"

    shop: str = Field(primary_key=True, max_length=40)
    concordance_low: float = Field(default=0.6)
    concordance_high: float = Field(default=0.75)
    discordance_low: float = Field(default=0.3)
    discordance_high: float = Field(default=0.6)
    batch_size: int = Field(default=2000)
    preferred_channels: list[str] = _json(list)
    rfm_window_days: int = Field(default=365)
    segment_tiers: dict[str, str] = _json(dict)  # RFM segment -> routing tier (customers.tier)
    min_support: float = Field(default=0.002)
    min_confidence: float = Field(default=0.05)
    min_lift: float = Field(default=1.2)
    ship_lead_days: int = Field(default=2, sa_column_kwargs={"server_default": "2"})  # at risk: not shipped this long before the promised date
    bot_cross_sell: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})  # the bot offers the top association after an order
    version: int = Field(default=1)
    updated_by: str = Field(default="system", max_length=120)
    updated_at: datetime = _created()


class OrderCriterion(SQLModel, table=True):
    """One criterion of a shop's fulfilment ranking: on or off, weight, direction, scale."""

    __tablename__ = "order_criteria"
    __table_args__ = (UniqueConstraint("shop", "key", name="uq_order_criteria_shop_key"),)

    id: Optional[int] = _id()
    shop: str = Field(max_length=40)
    key: str = Field(max_length=40)
    weight: float
    direction: str = Field(max_length=3)  # max / min
    scale_min: float
    scale_max: float
    enabled: bool = Field(default=True)


class FulfilmentRank(SQLModel, table=True):
    """An open order's place in the fulfilment queue, as last ranked, with the explanation."""

    __tablename__ = "fulfilment_ranks"

    order_id: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    position: int
    level: int
    batch: int = Field(default=1)
    criteria_values: dict[str, float] = _json(dict)
    raw_values: dict[str, float] = _json(dict)
    above: Optional[str] = Field(default=None)
    notes: list[str] = _json(list)
    tied_with: list[int] = _json(list)
    incomparable_with: list[int] = _json(list)
    tie_break: bool = Field(default=False)
    fingerprint: str = Field(default="", max_length=120)
    ranked_at: datetime = _created()


class CustomerValue(SQLModel, table=True):
    """A customer's RFM scores, segment and attrition risk, as last computed."""

    __tablename__ = "customer_values"
    __table_args__ = (Index("ix_customer_values_segment", "segment"),)

    customer_id: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    recency_days: float
    frequency: int
    monetary_minor: int = Field(sa_type=BigInteger)
    r: int
    f: int
    m: int
    segment: str = Field(max_length=24)
    value_score: float
    orders_total: int
    usual_gap_days: float
    own_gap: bool
    attrition: str = Field(max_length=8)  # low / medium / high
    attrition_score: float
    reason: str = Field(default="", max_length=300)
    computed_at: datetime = _created()


class ProductAssociation(SQLModel, table=True):
    """A co-purchase rule ``antecedent -> consequent`` (one product each) with its measures."""

    __tablename__ = "product_associations"
    __table_args__ = (UniqueConstraint("antecedent_id", "consequent_id", name="uq_product_associations_pair"),)

    id: Optional[int] = _id()
    antecedent_id: int = Field(foreign_key="products.id", index=True)
    consequent_id: int = Field(foreign_key="products.id")
    count: int
    support: float
    confidence: float
    lift: float
    computed_at: datetime = _created()


class OfferRuleRow(SQLModel, table=True):
    """A business rule of the next best offer (crm_store.domain.offers), edited by admins."""

    __tablename__ = "offer_rules"

    id: Optional[int] = _id()
    name: str = Field(max_length=120)
    priority: int = Field(default=0)
    active: bool = Field(default=True)
    valid_from: Optional[date] = Field(default=None)
    valid_until: Optional[date] = Field(default=None)
    conditions: dict[str, Any] = _json(dict)
    offer_sku: Optional[str] = Field(default=None, max_length=40)
    offer: str = Field(max_length=200)
    script: str = Field(default="")
    updated_by: str = Field(default="system", max_length=120)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OfferEvent(SQLModel, table=True):
    """An offer shown to an agent, or marked offered, accepted or declined."""

    __tablename__ = "offer_events"
    __table_args__ = (Index("ix_offer_events_customer_created", "customer_id", "created_at"),)

    id: Optional[int] = _id()
    customer_id: int = Field(foreign_key="customers.id")
    conversation_id: Optional[int] = Field(default=None, foreign_key="conversations.id")
    agent_id: Optional[int] = Field(default=None, foreign_key="agents.id")
    rule_id: Optional[int] = Field(default=None, foreign_key="offer_rules.id")
    source: str = Field(max_length=16)  # rule / association
    sku: Optional[str] = Field(default=None, max_length=40)
    title: str = Field(default="", max_length=200)
    outcome: str = Field(max_length=12)  # shown / offered / accepted / declined
    actor: str = Field(default="", max_length=120)
    created_at: datetime = _created()


class EvaluationAlert(SQLModel, table=True):
    """An order or stock alert, raised once (one row per ``key``) and cleared when its condition ends.

    ``key`` names the condition (``at_risk:order:12``, ``overdue:order:12``, ``low_stock:product:3``); a
    condition that ends sets ``cleared_at``, and one that comes back re-opens the row (``times_raised`` + 1).
    """

    __tablename__ = "evaluation_alerts"
    __table_args__ = (Index("ix_evaluation_alerts_open", "cleared_at", "raised_at"),)

    id: Optional[int] = _id()
    key: str = Field(max_length=80, unique=True)
    kind: str = Field(max_length=16)  # at_risk / overdue / low_stock
    severity: str = Field(default="warning", max_length=12)  # warning / critical
    order_id: Optional[int] = Field(default=None)
    product_id: Optional[int] = Field(default=None)
    customer_id: Optional[int] = Field(default=None, index=True)
    message: str = Field(default="", max_length=300)
    times_raised: int = Field(default=1)
    raised_at: datetime = _created()
    cleared_at: Optional[datetime] = _when()


# --- web callback (issue 15; docs/subsystems/callback.md) -----------------------------------------------------------


class Callback(SQLModel, table=True):
    """A customer to be called back: durable from the request until completed, failed or cancelled.

    ``state`` follows ``contact_center/domain/callbacks.py``; ``due_at`` is when it (next) enters the queue;
    ``lease_owner``/``lease_until`` mark the hub process that moved it into the queue (a process that dies halfway
    leaves a lease that runs out, and another one finishes the move); ``conversation_id`` is the contact routed to
    agents for the current attempt. ``cancel_token_hash`` is the SHA-256 of the customer's cancel token.
    """

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_state_due", "state", "due_at"),
        Index("ix_callbacks_customer_state", "customer_id", "state"),
        Index("ix_callbacks_number_created", "number", "created_at"),
        Index("ix_callbacks_conversation", "conversation_id"),
    )

    id: Optional[int] = _id()
    customer_id: int = Field(foreign_key="customers.id")
    number: str = Field(max_length=20)  # E.164
    topic: str = Field(default="", max_length=300)
    queue: str = Field(default="", max_length=80)
    source: str = Field(default="web", max_length=16)  # web / wait_offer / fallback / agent / agent_call
    state: str = Field(default="requested", max_length=16)
    requested_for: Optional[datetime] = _when()  # the chosen slot (None: "now")
    due_at: datetime = _created()
    enqueued_at: Optional[datetime] = _when()  # the place it keeps in the queue (virtual hold: the call's)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=3)
    conversation_id: Optional[int] = Field(default=None, foreign_key="conversations.id")
    origin_conversation_id: Optional[int] = Field(default=None, foreign_key="conversations.id")  # the call it came from
    pinned_agent_id: Optional[int] = Field(default=None, foreign_key="agents.id")  # click-to-call: that agent's call only
    lease_owner: Optional[str] = Field(default=None, max_length=80)
    lease_until: Optional[datetime] = _when()
    last_outcome: Optional[str] = Field(default=None, max_length=16)
    visitor: str = Field(default="", max_length=80)  # the widget's visitor id or the client's IP (abuse limits)
    cancel_token_hash: str = Field(default="", max_length=64)
    created_at: datetime = _created()
    updated_at: datetime = _created()
    connected_at: Optional[datetime] = _when()
    closed_at: Optional[datetime] = _when()


class CallbackAttempt(SQLModel, table=True):
    """One attempt to reach the customer of a callback: a dialled call. ``(callback_id, n)`` is unique: one attempt
    is dialled once, whichever hub process claims it."""

    __tablename__ = "callback_attempts"
    __table_args__ = (
        UniqueConstraint("callback_id", "n", name="uq_callback_attempts_n"),
        Index("ix_callback_attempts_call_sid", "call_sid"),
    )

    id: Optional[int] = _id()
    callback_id: int = Field(foreign_key="callbacks.id")
    n: int
    agent_id: Optional[int] = Field(default=None, foreign_key="agents.id")
    conversation_id: Optional[int] = Field(default=None, foreign_key="conversations.id")
    call_sid: Optional[str] = Field(default=None, max_length=40)
    outcome: Optional[str] = Field(default=None, max_length=16)  # connected / busy / no-answer / failed / machine / canceled
    claimed_by: str = Field(default="", max_length=80)
    started_at: datetime = _created()
    ended_at: Optional[datetime] = _when()


class Document(SQLModel, table=True):
    """A file of the document library (issue 17): what agents push onto a customer's page.

    The bytes live in the media store under ``media_key`` (the SHA-256 of the bytes, also the file's hash on the
    timeline); only PDF, PNG, JPEG and WebP, up to 10 MB, the type read from the bytes."""

    __tablename__ = "documents"

    id: Optional[int] = _id()
    name: str = Field(max_length=200)
    content_type: str = Field(max_length=40)
    size: int
    media_key: str = Field(max_length=64)
    uploaded_by: Optional[int] = Field(default=None, foreign_key="agents.id")
    created_at: datetime = _created()
    active: bool = Field(default=True)
