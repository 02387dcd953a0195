"""Unit tests of the pure order domain: statuses, identity, validation, pricing."""

from __future__ import annotations

import pickle
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_store.domain.identity import (
    ContactKind,
    InvalidAddress,
    normalize_address,
    normalize_email,
    normalize_phone,
    normalize_web_id,
)
from crm_store.domain.money import format_money
from crm_store.domain.orders import (
    OPEN_STATUSES,
    IllegalTransition,
    OrderStatus,
    allowed_transitions,
    check_transition,
    holds_stock,
    is_at_risk,
    is_overdue,
    releases_stock,
)
from crm_store.domain.pricing import (
    FREE_SHIPPING_FROM_MINOR,
    SHIPPING_FEE_MINOR,
    TRANSIT_BUSINESS_DAYS,
    add_business_days,
    estimate_delivery,
    quote,
)
from crm_store.domain.validation import (
    MAX_ADDRESS_LENGTH,
    MAX_LINES,
    MAX_NOTES_LENGTH,
    FieldError,
    LineRequest,
    OrderRequest,
    ProductInfo,
    ValidationFailed,
    ValidLine,
    ValidOrder,
    validate_contact,
    validate_order,
)

S = OrderStatus

# The table of the brief, written out independently of the module under test.
LEGAL: set[tuple[OrderStatus, OrderStatus]] = {
    (S.DRAFT, S.PLACED),
    (S.DRAFT, S.CANCELLED),
    (S.PLACED, S.CONFIRMED),
    (S.PLACED, S.CANCELLED),
    (S.CONFIRMED, S.PICKING),
    (S.CONFIRMED, S.CANCELLED),
    (S.PICKING, S.SHIPPED),
    (S.PICKING, S.CANCELLED),
    (S.SHIPPED, S.DELIVERED),
    (S.DELIVERED, S.RETURNED),
    (S.RETURNED, S.REFUNDED),
}
ALL_PAIRS = [(a, b) for a in OrderStatus for b in OrderStatus]
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]
TERMINAL = {S.CANCELLED, S.REFUNDED}

# 2024-06-03 is a Monday.
MON = date(2024, 6, 3)
TUE, WED, THU, FRI, SAT, SUN = (MON + timedelta(days=n) for n in range(1, 7))
NEXT_MON = MON + timedelta(days=7)


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (1999, "EUR", "19.99 EUR"),
        (0, "EUR", "0.00 EUR"),
        (5, "EUR", "0.05 EUR"),
        (100, "usd", "1.00 USD"),
        (-1999, "EUR", "-19.99 EUR"),
        (-5, "EUR", "-0.05 EUR"),
        (123456789, "GBP", "1234567.89 GBP"),
        (500, "JPY", "500 JPY"),
    ],
)
def test_format_money(minor: int, currency: str, shown: str) -> None:
    assert format_money(minor, currency) == shown


def test_format_money_defaults_to_euro_and_refuses_floats() -> None:
    assert format_money(495) == "4.95 EUR"
    with pytest.raises(TypeError):
        format_money(19.99)  # type: ignore[arg-type]


# --- order statuses ----------------------------------------------------------------------------


def test_status_values() -> None:
    assert [s.value for s in OrderStatus] == [
        "draft", "placed", "confirmed", "picking", "shipped",
        "delivered", "cancelled", "returned", "refunded",
    ]


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_every_legal_transition_is_accepted(current: OrderStatus, target: OrderStatus) -> None:
    check_transition(current, target)
    assert target in allowed_transitions(current)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_every_illegal_transition_is_rejected(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, target)
    err = info.value
    assert err.current is current
    assert err.target is target
    assert isinstance(err, ValueError)
    message = str(err)
    assert f"from {current.value} to {target.value}" in message
    assert target not in allowed_transitions(current)


def test_illegal_pair_count_matches_table() -> None:
    assert len(LEGAL) == 11
    assert len(ILLEGAL) == 81 - 11


def test_allowed_transitions_match_table_exactly() -> None:
    for status in OrderStatus:
        assert allowed_transitions(status) == {b for a, b in LEGAL if a is status}


def test_illegal_transition_message_lists_next_steps() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(S.SHIPPED, S.CANCELLED)
    assert str(info.value) == (
        "cannot move an order from shipped to cancelled: allowed next steps are delivered"
    )
    with pytest.raises(IllegalTransition) as info:
        check_transition(S.PLACED, S.SHIPPED)
    assert str(info.value).endswith("allowed next steps are confirmed, cancelled")


def test_illegal_transition_from_final_status_says_so() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(S.REFUNDED, S.DELIVERED)
    assert "refunded is final" in str(info.value)


def test_same_status_is_not_a_transition() -> None:
    for status in OrderStatus:
        with pytest.raises(IllegalTransition):
            check_transition(status, status)


def test_illegal_transition_survives_pickling() -> None:
    err = IllegalTransition(S.SHIPPED, S.CANCELLED)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.current, copy.target, str(copy)) == (err.current, err.target, str(err))


def test_statuses_given_as_plain_strings_are_understood() -> None:
    check_transition("draft", "placed")  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition):
        check_transition("draft", "shipped")  # type: ignore[arg-type]


def test_holds_stock() -> None:
    assert {s for s in OrderStatus if holds_stock(s)} == {S.PLACED, S.CONFIRMED, S.PICKING}
    assert OPEN_STATUSES == {S.PLACED, S.CONFIRMED, S.PICKING}


def test_releases_stock_only_when_cancelling_a_reserving_order() -> None:
    released = {pair for pair in ALL_PAIRS if releases_stock(*pair)}
    assert released == {(S.PLACED, S.CANCELLED), (S.CONFIRMED, S.CANCELLED), (S.PICKING, S.CANCELLED)}
    assert not releases_stock(S.DRAFT, S.CANCELLED)
    assert not releases_stock(S.PICKING, S.SHIPPED)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2024, 6, 9), False),
        (date(2024, 6, 10), False),  # promised day itself is not late
        (date(2024, 6, 11), True),
        (date(2024, 7, 1), True),
    ],
)
def test_overdue_boundary(today: date, expected: bool) -> None:
    assert is_overdue(S.CONFIRMED, date(2024, 6, 10), today) is expected


@pytest.mark.parametrize("status", [S.DRAFT, S.SHIPPED, S.DELIVERED, S.CANCELLED, S.RETURNED, S.REFUNDED])
def test_not_open_orders_are_never_overdue_or_at_risk(status: OrderStatus) -> None:
    promised = date(2024, 6, 10)
    assert not is_overdue(status, promised, date(2024, 7, 10))
    assert not is_at_risk(status, promised, date(2024, 6, 10))


@pytest.mark.parametrize("status", sorted(OPEN_STATUSES))
def test_open_orders_can_be_overdue(status: OrderStatus) -> None:
    assert is_overdue(status, date(2024, 6, 10), date(2024, 6, 11))


@pytest.mark.parametrize(
    ("today", "margin", "expected"),
    [
        (date(2024, 6, 7), 1, False),  # three days left
        (date(2024, 6, 8), 1, False),  # two days left
        (date(2024, 6, 9), 1, True),  # one day left
        (date(2024, 6, 10), 1, True),  # due today
        (date(2024, 6, 11), 1, False),  # already overdue, not "at risk"
        (date(2024, 6, 8), 2, True),
        (date(2024, 6, 9), 0, False),
        (date(2024, 6, 10), 0, True),
    ],
)
def test_at_risk_boundary(today: date, margin: int, expected: bool) -> None:
    assert is_at_risk(S.PICKING, date(2024, 6, 10), today, margin_days=margin) is expected


def test_at_risk_default_margin_is_one_day() -> None:
    promised = date(2024, 6, 10)
    assert is_at_risk(S.PLACED, promised, date(2024, 6, 9))
    assert not is_at_risk(S.PLACED, promised, date(2024, 6, 8))


@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=40), st.sampled_from(list(OrderStatus)))
def test_random_transition_attempts_only_follow_the_table(
    attempts: list[OrderStatus], start: OrderStatus
) -> None:
    status = start
    for target in attempts:
        before = status
        try:
            check_transition(status, target)
        except IllegalTransition as err:
            assert (before, target) not in LEGAL
            assert (err.current, err.target) == (before, target)
        else:
            assert (before, target) in LEGAL
            assert before not in TERMINAL
            status = target
        if before in TERMINAL:
            assert status is before


# --- identity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("  +1 415 555 2671  ", "US", "+14155552671"),
        ("tel:+1-415-555-2671", "US", "+14155552671"),
        ("TEL:+14155552671", "US", "+14155552671"),
        ("whatsapp:+14155552671", "US", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "gb", "+442079460958"),
        ("030 123456", "DE", "+4930123456"),
        ("+14155552671", "DE", "+14155552671"),  # an explicit country code wins over the region
    ],
)
def test_normalize_phone(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


def test_normalize_phone_defaults_to_us() -> None:
    assert normalize_phone("415-555-2671") == "+14155552671"


@pytest.mark.parametrize("raw", ["12345", "555-0000", "hello", "+1 000 000 0000", "+999 1234567", "4" * 80])
def test_normalize_phone_rejects_invalid(raw: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        normalize_phone(raw)
    assert info.value.kind is ContactKind.PHONE
    assert info.value.reason


def test_invalid_phone_reason_names_the_region() -> None:
    with pytest.raises(InvalidAddress) as info:
        normalize_phone("020 7946 0958")  # a UK number written without +44
    assert info.value.reason == "not a valid phone number for region US"
    assert info.value.kind == "phone"


@pytest.mark.parametrize("raw", ["", "   ", "tel:", "whatsapp:  "])
def test_empty_phone(raw: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        normalize_phone(raw)
    assert info.value.reason == "empty"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice.Smith@Example.COM ", "alice.smith@example.com"),
        ("BOB+orders@mail.example.co.uk", "bob+orders@mail.example.co.uk"),
        ("o'brien_x-y@sub-domain.example.org", "o'brien_x-y@sub-domain.example.org"),
        ("a@b.io", "a@b.io"),
        ("user@123.example.net", "user@123.example.net"),
    ],
)
def test_normalize_email(raw: str, canonical: str) -> None:
    assert normalize_email(raw) == canonical


def test_email_case_folding_makes_one_key() -> None:
    assert normalize_email("JOHN@EXAMPLE.COM") == normalize_email("john@example.com")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plainaddress",
        "@example.com",
        "alice@",
        "alice@@example.com",
        "alice@bob@example.com",
        "alice smith@example.com",
        "alice@example",
        "alice@example.c",
        "alice@example.c0m",
        "alice@-example.com",
        "alice@example-.com",
        "alice@exa_mple.com",
        "alice@example..com",
        "alice@.example.com",
        "alice@example.com.",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "al(ice)@example.com",
        "a" * 65 + "@example.com",
        "alice@" + "a" * 64 + ".com",
        "alice@" + ".".join(["abcdefghi"] * 25) + ".com",  # longer than 254
    ],
)
def test_normalize_email_rejects_malformed(raw: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        normalize_email(raw)
    assert info.value.kind is ContactKind.EMAIL
    assert info.value.reason


def test_email_local_part_of_64_is_accepted() -> None:
    local = "a" * 64
    assert normalize_email(f"{local}@example.com") == f"{local}@example.com"


@pytest.mark.parametrize("raw", ["abcdefgh", "visitor_12-AB", "x" * 128])
def test_normalize_web_id_accepts(raw: str) -> None:
    assert normalize_web_id(raw) == raw


@pytest.mark.parametrize("raw", ["", "abcdefg", "x" * 129, "abc def gh", "abcdefgh!", "visitør123"])
def test_normalize_web_id_rejects(raw: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        normalize_web_id(raw)
    assert info.value.kind is ContactKind.WEB


def test_normalize_address_dispatches_on_kind() -> None:
    assert normalize_address(ContactKind.PHONE, "(415) 555-2671") == "+14155552671"
    assert normalize_address(ContactKind.SMS, "+1 415 555 2671") == "+14155552671"
    assert normalize_address(ContactKind.WHATSAPP, "whatsapp:+442079460958") == "+442079460958"
    assert normalize_address(ContactKind.PHONE, "020 7946 0958", default_region="GB") == "+442079460958"
    assert normalize_address(ContactKind.EMAIL, "Bob@Example.com") == "bob@example.com"
    assert normalize_address(ContactKind.WEB, "visitor-0001") == "visitor-0001"


def test_normalize_address_reports_the_kind_asked_for() -> None:
    with pytest.raises(InvalidAddress) as info:
        normalize_address(ContactKind.WHATSAPP, "nope")
    assert info.value.kind is ContactKind.WHATSAPP
    with pytest.raises(InvalidAddress) as info:
        normalize_address(ContactKind.WEB, "short")
    assert info.value.kind is ContactKind.WEB


# --- validation --------------------------------------------------------------------------------

TSHIRT = ProductInfo(
    sku="TS-1",
    name="T-shirt",
    price_minor=1999,
    stock=3,
    lead_time_days=1,
    options={"size": ["S", "M", "L"], "color": ["red", "blue"]},
)
MUG = ProductInfo(sku="MUG", name="Mug", price_minor=899, stock=50, lead_time_days=0, options={})
POSTER = ProductInfo(
    sku="POSTER", name="Poster", price_minor=1500, stock=10, lead_time_days=4, options={}
)
OLD = ProductInfo(
    sku="OLD", name="Old hat", price_minor=500, stock=10, lead_time_days=0, options={}, active=False
)
EMPTY = ProductInfo(sku="GONE", name="Sold-out cap", price_minor=700, stock=0, lead_time_days=0, options={})
CATALOGUE = {p.sku: p for p in (TSHIRT, MUG, POSTER, OLD, EMPTY)}


def _request(*lines: LineRequest, **kw: object) -> OrderRequest:
    fields: dict[str, object] = {"delivery_address": "1 Main St, Springfield", "email": "a@example.com"}
    fields.update(kw)
    return OrderRequest(lines=list(lines), **fields)  # type: ignore[arg-type]


def _errors(request: OrderRequest) -> list[FieldError]:
    with pytest.raises(ValidationFailed) as info:
        validate_order(request, CATALOGUE)
    return info.value.errors


def _fields(request: OrderRequest) -> dict[str, str]:
    return {e.field: e.reason for e in _errors(request)}


def test_valid_order_is_cleaned() -> None:
    order = validate_order(
        _request(
            LineRequest("TS-1", 2, {"Size": "m", "COLOR": "Blue"}),
            LineRequest("MUG", 1),
            phone="(415) 555-2671",
            email=" Alice@Example.com ",
            delivery_address="  1 Main St  ",
            notes=" ring twice ",
        ),
        CATALOGUE,
    )
    assert order == ValidOrder(
        lines=(
            ValidLine(product=TSHIRT, quantity=2, options={"size": "M", "color": "blue"}),
            ValidLine(product=MUG, quantity=1, options={}),
        ),
        delivery_address="1 Main St",
        phone="+14155552671",
        email="alice@example.com",
        notes="ring twice",
    )


def test_validation_collects_every_error_with_field_names() -> None:
    fields = _fields(
        _request(
            LineRequest("NOPE", 1),
            LineRequest("TS-1", 0, {"size": "XL", "flavour": "mint"}),
            LineRequest("OLD", 1),
            delivery_address="   ",
            email=None,
            phone=None,
            notes="x" * (MAX_NOTES_LENGTH + 1),
        )
    )
    assert fields == {
        "lines[0].sku": "unknown product NOPE",
        "lines[1].quantity": "must be a whole number from 1 to 100",
        "lines[1].options.size": "size must be one of S, M, L",
        "lines[1].options": "product T-shirt has no option 'flavour'",
        "lines[1].options.color": "choose a color: red, blue",
        "lines[2].sku": "product OLD is no longer sold",
        "delivery_address": "required",
        "contact": "give a phone number or an email address",
        "notes": f"must be at most {MAX_NOTES_LENGTH} characters",
    }


def test_validation_failed_message_and_dicts() -> None:
    errors = _errors(_request(LineRequest("NOPE", 1), delivery_address=""))
    assert [e.as_dict() for e in errors] == [
        {"field": "lines[0].sku", "reason": "unknown product NOPE"},
        {"field": "delivery_address", "reason": "required"},
    ]
    failed = ValidationFailed(errors)
    assert str(failed) == "lines[0].sku: unknown product NOPE; delivery_address: required"
    assert pickle.loads(pickle.dumps(failed)).errors == errors


def test_no_lines_and_too_many_lines() -> None:
    assert _fields(_request()) == {"lines": "give at least one product"}
    many = [LineRequest("MUG", 1)] * (MAX_LINES + 1)
    assert set(_fields(_request(*many))) == {"lines"}
    ok = validate_order(_request(*[LineRequest("MUG", 1)] * MAX_LINES), CATALOGUE)
    assert len(ok.lines) == MAX_LINES


@pytest.mark.parametrize("quantity", [0, -1, 101, True, False, 1.0, 2.5, "2", None])
def test_bad_quantities_are_rejected(quantity: object) -> None:
    fields = _fields(_request(LineRequest("MUG", quantity)))  # type: ignore[arg-type]
    assert fields == {"lines[0].quantity": "must be a whole number from 1 to 100"}


@pytest.mark.parametrize("quantity", [1, 50, 100])
def test_good_quantities_are_accepted(quantity: int) -> None:
    big = ProductInfo(sku="MUG", name="Mug", price_minor=899, stock=1000, lead_time_days=0, options={})
    order = validate_order(_request(LineRequest("MUG", quantity)), {"MUG": big})
    assert order.lines[0].quantity == quantity


def test_stock_is_summed_across_lines_of_the_same_sku() -> None:
    # 2 + 2 T-shirts in different sizes: 4 > 3 in stock, reported on the first T-shirt line.
    fields = _fields(
        _request(
            LineRequest("MUG", 1),
            LineRequest("TS-1", 2, {"size": "S", "color": "red"}),
            LineRequest("TS-1", 2, {"size": "L", "color": "red"}),
        )
    )
    assert fields == {"lines[1].quantity": "only 3 left of T-shirt"}


def test_stock_exactly_available_is_fine() -> None:
    order = validate_order(
        _request(
            LineRequest("TS-1", 2, {"size": "S", "color": "red"}),
            LineRequest("TS-1", 1, {"size": "L", "color": "red"}),
        ),
        CATALOGUE,
    )
    assert sum(line.quantity for line in order.lines) == TSHIRT.stock


def test_out_of_stock() -> None:
    assert _fields(_request(LineRequest("GONE", 1))) == {
        "lines[0].quantity": "Sold-out cap is out of stock"
    }


def test_option_matching_is_case_insensitive_and_returns_catalogue_spelling() -> None:
    product = ProductInfo(
        sku="HOOD", name="Hoodie", price_minor=4000, stock=5, lead_time_days=2,
        options={"Size": ["Small", "Large"], "Colour": ["Forest Green", "navy"]},
    )
    order = validate_order(
        _request(LineRequest("HOOD", 1, {"SIZE": "large", "colour": "FOREST GREEN"})),
        {"HOOD": product},
    )
    assert order.lines[0].options == {"Size": "Large", "Colour": "Forest Green"}


def test_option_given_twice_in_different_case() -> None:
    fields = _fields(_request(LineRequest("TS-1", 1, {"size": "S", "SIZE": "M", "color": "red"})))
    assert fields == {"lines[0].options.size": "size is chosen more than once"}


def test_option_on_product_without_options() -> None:
    assert _fields(_request(LineRequest("MUG", 1, {"colour": "red"}))) == {
        "lines[0].options": "product Mug has no option 'colour'"
    }


def test_missing_options_are_each_reported() -> None:
    fields = _fields(_request(LineRequest("TS-1", 1)))
    assert fields == {
        "lines[0].options.size": "choose a size: S, M, L",
        "lines[0].options.color": "choose a color: red, blue",
    }


def test_delivery_address_too_long() -> None:
    long = "x" * (MAX_ADDRESS_LENGTH + 1)
    assert _fields(_request(LineRequest("MUG", 1), delivery_address=long)) == {
        "delivery_address": f"must be at most {MAX_ADDRESS_LENGTH} characters"
    }
    ok = validate_order(
        _request(LineRequest("MUG", 1), delivery_address="x" * MAX_ADDRESS_LENGTH), CATALOGUE
    )
    assert len(ok.delivery_address) == MAX_ADDRESS_LENGTH


def test_bad_phone_and_email_are_both_reported_in_the_order() -> None:
    fields = _fields(_request(LineRequest("MUG", 1), phone="12", email="not-an-email"))
    assert fields == {
        "phone": "not a valid phone number for region US",
        "email": "must contain exactly one @",
    }


def test_order_uses_the_default_region_for_phones() -> None:
    order = validate_order(
        _request(LineRequest("MUG", 1), phone="020 7946 0958", email=None), CATALOGUE, default_region="GB"
    )
    assert (order.phone, order.email) == ("+442079460958", None)


def test_validate_contact() -> None:
    assert validate_contact("(415) 555-2671", None) == ("+14155552671", None)
    assert validate_contact(None, "Bob@Example.com") == (None, "bob@example.com")
    assert validate_contact("+442079460958", "a@b.co") == ("+442079460958", "a@b.co")
    with pytest.raises(ValidationFailed) as info:
        validate_contact(None, None)
    assert info.value.errors == [FieldError("contact", "give a phone number or an email address")]
    with pytest.raises(ValidationFailed) as info:
        validate_contact("  ", "")
    assert [e.field for e in info.value.errors] == ["contact"]
    with pytest.raises(ValidationFailed) as info:
        validate_contact("bad", None)
    assert [e.field for e in info.value.errors] == ["phone"]


# --- pricing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (MON, 0, MON),
        (MON, 1, TUE),
        (MON, 4, FRI),
        (MON, 5, NEXT_MON),
        (THU, 1, FRI),
        (THU, 2, NEXT_MON),
        (FRI, 1, NEXT_MON),
        (FRI, 3, NEXT_MON + timedelta(days=2)),
        (SAT, 0, NEXT_MON),
        (SUN, 0, NEXT_MON),
        (SAT, 1, NEXT_MON + timedelta(days=1)),
        (SUN, 5, NEXT_MON + timedelta(days=7)),
        (MON, 10, MON + timedelta(days=14)),
        (WED, 7, WED + timedelta(days=9)),
    ],
)
def test_add_business_days(start: date, days: int, expected: date) -> None:
    assert add_business_days(start, days) == expected


def test_add_business_days_refuses_negative() -> None:
    with pytest.raises(ValueError):
        add_business_days(MON, -1)


def test_estimate_delivery_uses_the_slowest_line() -> None:
    lines = [
        ValidLine(product=MUG, quantity=1, options={}),
        ValidLine(product=POSTER, quantity=1, options={}),
    ]
    # lead 4 + transit 2 = 6 business days from Monday 3 June -> Tuesday 11 June.
    assert TRANSIT_BUSINESS_DAYS == 2
    assert estimate_delivery(lines, MON) == date(2024, 6, 11)
    assert estimate_delivery(lines[:1], FRI) == TUE + timedelta(days=7)


def _order(*lines: ValidLine) -> ValidOrder:
    return ValidOrder(lines=lines, delivery_address="x", phone=None, email="a@b.co", notes="")


def test_quote_below_free_shipping() -> None:
    q = quote(
        _order(
            ValidLine(product=TSHIRT, quantity=2, options={"size": "M", "color": "red"}),
            ValidLine(product=MUG, quantity=1, options={}),
        ),
        MON,
    )
    assert [(p.sku, p.quantity, p.unit_price_minor, p.line_total_minor) for p in q.lines] == [
        ("TS-1", 2, 1999, 3998),
        ("MUG", 1, 899, 899),
    ]
    assert q.lines[0].name == "T-shirt"
    assert q.lines[0].options == {"size": "M", "color": "red"}
    assert q.subtotal_minor == 4897
    assert q.shipping_minor == SHIPPING_FEE_MINOR == 495
    assert q.total_minor == 5392
    assert q.estimated_delivery == date(2024, 6, 6)  # lead 1 + transit 2 from Monday


@pytest.mark.parametrize(
    ("price", "shipping"),
    [(FREE_SHIPPING_FROM_MINOR - 1, SHIPPING_FEE_MINOR), (FREE_SHIPPING_FROM_MINOR, 0), (FREE_SHIPPING_FROM_MINOR + 1, 0)],
)
def test_free_shipping_threshold(price: int, shipping: int) -> None:
    product = ProductInfo(sku="P", name="P", price_minor=price, stock=1, lead_time_days=0, options={})
    q = quote(_order(ValidLine(product=product, quantity=1, options={})), MON)
    assert q.subtotal_minor == price
    assert q.shipping_minor == shipping
    assert q.total_minor == price + shipping


def test_validated_order_can_be_quoted() -> None:
    order = validate_order(_request(LineRequest("POSTER", 3), LineRequest("MUG", 2)), CATALOGUE)
    q = quote(order, FRI)
    assert q.subtotal_minor == 3 * 1500 + 2 * 899
    assert q.shipping_minor == 0
    assert q.total_minor == 6298
    assert format_money(q.total_minor) == "62.98 EUR"
    assert q.estimated_delivery == FRI + timedelta(days=10)  # 6 business days from a Friday


_products = st.builds(
    ProductInfo,
    sku=st.text(alphabet="ABCDEFGHIJ0123456789-", min_size=1, max_size=8),
    name=st.text(min_size=1, max_size=20),
    price_minor=st.integers(min_value=0, max_value=1_000_000),
    stock=st.integers(min_value=0, max_value=1000),
    lead_time_days=st.integers(min_value=0, max_value=30),
    options=st.just({}),
)
_lines = st.builds(
    ValidLine,
    product=_products,
    quantity=st.integers(min_value=1, max_value=100),
    options=st.just({}),
)


@given(st.lists(_lines, max_size=20), st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_quote_total_is_line_totals_plus_shipping(lines: list[ValidLine], placed_on: date) -> None:
    q = quote(_order(*lines), placed_on)
    line_totals = [line.product.price_minor * line.quantity for line in lines]
    assert [p.line_total_minor for p in q.lines] == line_totals
    assert q.subtotal_minor == sum(line_totals)
    assert q.shipping_minor == (0 if sum(line_totals) >= FREE_SHIPPING_FROM_MINOR else SHIPPING_FEE_MINOR)
    assert q.total_minor == sum(line_totals) + q.shipping_minor
    assert all(isinstance(v, int) for v in (q.subtotal_minor, q.shipping_minor, q.total_minor))
    assert q.estimated_delivery.weekday() < 5
    assert q.estimated_delivery > placed_on


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=400),
)
def test_add_business_days_is_a_weekday_and_monotone(start: date, a: int, b: int) -> None:
    low, high = sorted((a, b))
    d_low, d_high = add_business_days(start, low), add_business_days(start, high)
    assert d_low.weekday() < 5
    assert d_high.weekday() < 5
    assert d_low >= start
    if low < high:
        assert d_low < d_high
    else:
        assert d_low == d_high
    # Counting the business days between start and the result gives back the number asked for.
    counted = sum(
        1
        for n in range(1, (d_high - start).days + 1)
        if (start + timedelta(days=n)).weekday() < 5
    )
    first_business_day_was_skipped = start.weekday() >= 5
    assert counted == high + (1 if first_business_day_was_skipped else 0)
