"""Checking an order request against the catalogue before it becomes an order, reporting every problem at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from crm_store.domain.identity import InvalidAddress, normalize_email, normalize_phone

MAX_LINE_QUANTITY = 100
MAX_LINES = 50
MAX_ADDRESS_LENGTH = 500
MAX_NOTES_LENGTH = 2000


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one field of a request."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The error as the API and the bot report it: {"field": ..., "reason": ...}."""
        return {"field": self.field, "reason": self.reason}


class ValidationFailed(ValueError):
    """A request was refused; carries every field error found, not just the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in self.errors))

    def __reduce__(self) -> tuple[type[ValidationFailed], tuple[list[FieldError]]]:
        return (type(self), (self.errors,))


@dataclass(frozen=True)
class ProductInfo:
    """What the catalogue says about a product: price, stock, lead time and the options a customer must choose."""

    sku: str
    name: str
    price_minor: int
    stock: int
    lead_time_days: int
    options: Mapping[str, Sequence[str]]
    active: bool = True


@dataclass(frozen=True)
class LineRequest:
    """One line as the customer asked for it: a product, how many, and chosen options."""

    sku: str
    quantity: int
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderRequest:
    """An order as the customer (or the bot on their behalf) asked for it, not yet checked."""

    lines: Sequence[LineRequest]
    delivery_address: str
    phone: str | None = None
    email: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class ValidLine:
    """A checked line: a sellable product, an allowed quantity, and options in the catalogue's own spelling."""

    product: ProductInfo
    quantity: int
    options: Mapping[str, str]


@dataclass(frozen=True)
class ValidOrder:
    """A checked order, ready to be priced and placed; phone in E.164, email canonical."""

    lines: tuple[ValidLine, ...]
    delivery_address: str
    phone: str | None
    email: str | None
    notes: str


def _given(value: object) -> bool:
    """Blank strings count as not given, so an empty form field is the same as a missing one."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def validate_contact(
    phone: str | None, email: str | None, default_region: str = "US"
) -> tuple[str | None, str | None]:
    """The customer's phone (E.164) and email (canonical); at least one must be given (raises ValidationFailed)."""
    errors: list[FieldError] = []
    clean_phone: str | None = None
    clean_email: str | None = None
    if phone is not None and _given(phone):
        try:
            clean_phone = normalize_phone(phone, default_region)
        except InvalidAddress as exc:
            errors.append(FieldError("phone", exc.reason))
    if email is not None and _given(email):
        try:
            clean_email = normalize_email(email)
        except InvalidAddress as exc:
            errors.append(FieldError("email", exc.reason))
    if not _given(phone) and not _given(email):
        errors.append(FieldError("contact", "give a phone number or an email address"))
    if errors:
        raise ValidationFailed(errors)
    return clean_phone, clean_email


def _is_quantity(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 1 <= value <= MAX_LINE_QUANTITY
    )


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" and noun[:1] else "a"


def _match_options(
    prefix: str, product: ProductInfo, chosen: object, errors: list[FieldError]
) -> dict[str, str] | None:
    """Match chosen options to the product's, case-insensitively; the product's spelling is returned."""
    offered = {name.casefold(): name for name in product.options}
    if not isinstance(chosen, Mapping):
        errors.append(FieldError(f"{prefix}.options", "options must be name/value pairs"))
        return None
    result: dict[str, str] = {}
    ok = True
    for raw_name, raw_value in chosen.items():
        key = raw_name.strip().casefold() if isinstance(raw_name, str) else None
        name = offered.get(key) if key is not None else None
        if name is None:
            errors.append(
                FieldError(f"{prefix}.options", f"product {product.name} has no option '{raw_name}'")
            )
            ok = False
            continue
        values = list(product.options[name])
        if name in result:
            errors.append(FieldError(f"{prefix}.options.{name}", f"{name} is chosen more than once"))
            ok = False
            continue
        wanted = raw_value.strip().casefold() if isinstance(raw_value, str) else None
        match = next((v for v in values if v.casefold() == wanted), None)
        if match is None:
            errors.append(
                FieldError(f"{prefix}.options.{name}", f"{name} must be one of {', '.join(values)}")
            )
            ok = False
            # Mark as chosen so it is not also reported as missing.
            result[name] = ""
            continue
        result[name] = match
    for name, choices in product.options.items():
        if name not in result:
            reason = f"choose {_article(name)} {name}: {', '.join(choices)}"
            errors.append(FieldError(f"{prefix}.options.{name}", reason))
            ok = False
    if not ok:
        return None
    return {name: result[name] for name in product.options}


def _check_lines(
    lines: Sequence[LineRequest],
    catalogue: Mapping[str, ProductInfo],
    errors: list[FieldError],
) -> list[ValidLine]:
    valid: list[ValidLine] = []
    # sku -> (index of first counted line, total quantity asked for, product)
    demand: dict[str, tuple[int, int, ProductInfo]] = {}
    for i, line in enumerate(lines):
        prefix = f"lines[{i}]"
        sku = getattr(line, "sku", None)
        product = catalogue.get(sku) if isinstance(sku, str) else None
        if product is None:
            errors.append(FieldError(f"{prefix}.sku", f"unknown product {sku}"))
        elif not product.active:
            errors.append(FieldError(f"{prefix}.sku", f"product {sku} is no longer sold"))
            product = None
        quantity = getattr(line, "quantity", None)
        quantity_ok = _is_quantity(quantity)
        if not quantity_ok:
            errors.append(
                FieldError(
                    f"{prefix}.quantity",
                    f"must be a whole number from 1 to {MAX_LINE_QUANTITY}",
                )
            )
        if product is None:
            continue
        options = _match_options(prefix, product, getattr(line, "options", {}), errors)
        if not quantity_ok:
            continue
        assert isinstance(quantity, int)
        first, total, _ = demand.get(product.sku, (i, 0, product))
        demand[product.sku] = (first, total + quantity, product)
        if options is not None:
            valid.append(ValidLine(product=product, quantity=quantity, options=options))
    for first, total, product in demand.values():
        if total > product.stock:
            reason = (
                f"{product.name} is out of stock"
                if product.stock <= 0
                else f"only {product.stock} left of {product.name}"
            )
            errors.append(FieldError(f"lines[{first}].quantity", reason))
    return valid


def _check_text(
    value: object, name: str, limit: int, required: bool, errors: list[FieldError]
) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be text"))
        return ""
    text = value.strip()
    if required and not text:
        errors.append(FieldError(name, "required"))
    elif len(text) > limit:
        errors.append(FieldError(name, f"must be at most {limit} characters"))
    return text


def validate_order(
    request: OrderRequest, catalogue: Mapping[str, ProductInfo], default_region: str = "US"
) -> ValidOrder:
    """Check an order request against the catalogue and return it clean, or raise ValidationFailed with every problem."""
    errors: list[FieldError] = []
    lines: list[ValidLine] = []
    raw_lines = request.lines
    if not raw_lines:
        errors.append(FieldError("lines", "give at least one product"))
    elif len(raw_lines) > MAX_LINES:
        # Lines are not checked one by one: the request must be split first.
        errors.append(FieldError("lines", f"at most {MAX_LINES} lines per order"))
    else:
        lines = _check_lines(raw_lines, catalogue, errors)
    address = _check_text(
        request.delivery_address, "delivery_address", MAX_ADDRESS_LENGTH, True, errors
    )
    phone: str | None = None
    email: str | None = None
    try:
        phone, email = validate_contact(request.phone, request.email, default_region)
    except ValidationFailed as exc:
        errors.extend(exc.errors)
    notes = _check_text(request.notes, "notes", MAX_NOTES_LENGTH, False, errors)
    if errors:
        raise ValidationFailed(errors)
    return ValidOrder(
        lines=tuple(lines),
        delivery_address=address,
        phone=phone,
        email=email,
        notes=notes,
    )
