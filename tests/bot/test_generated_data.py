"""The bot's catalogue vocabulary is generated from the demo catalogue and cannot drift from it."""

from __future__ import annotations

from crm_store.demo import _CATALOGUE
from crm_store.domain import pricing, validation

from tests.bot.helpers import BOT, ROOT, load_module

gen = load_module("bot_generate_data", BOT / "generate_data.py")
shop = load_module("bot_shop", BOT / "actions" / "shop.py")


def test_regenerating_gives_the_committed_files() -> None:
    for path, content in gen.outputs().items():
        assert path.exists(), f"{path.relative_to(ROOT)} is missing: run .venv/bin/python bot/generate_data.py"
        assert path.read_text(encoding="utf-8") == content, (
            f"{path.relative_to(ROOT)} differs from what the catalogue gives: run .venv/bin/python bot/generate_data.py"
        )


def test_generation_is_deterministic() -> None:
    assert gen.outputs() == gen.outputs()


def test_every_product_has_synonyms_and_typos() -> None:
    items = gen.catalogue()
    vocab = gen.build_vocabulary(items)
    assert {it.sku for it in items} == {c[1] for c in _CATALOGUE}
    for it in items:
        forms = vocab.product_synonyms[it.sku]
        assert len(forms) >= 2, it.sku
        assert vocab.product_typos[it.sku], f"no typo variants for {it.sku}"
    assert "t-shirt" in vocab.category_synonyms["t-shirts"]
    assert "tshirts" in vocab.category_synonyms["t-shirts"]


def test_the_alias_table_resolves_real_forms() -> None:
    catalogue = [shop.Product(sku=c[1], name=c[2], category=c[0], price_minor=c[4], currency="EUR", stock=10,
                              lead_time_days=2, options={k: list(v) for k, v in c[5].items()}) for c in _CATALOGUE]
    assert shop.resolve_product("classic tees", catalogue).sku == "TSH-CLASSIC"
    assert shop.resolve_product("Zip Hoodies", catalogue).sku == "HOD-ZIP"
    assert shop.resolve_product("clasic t-shirt", catalogue).sku == "TSH-CLASSIC"
    assert shop.resolve_product("the wave one", catalogue).sku == "TSH-WAVE"
    hoodies = shop.resolve_product("hoodies", catalogue)
    assert hoodies.sku is None and "HOD-ZIP" in hoodies.candidates and hoodies.category == "hoodies"
    tshirts = shop.resolve_product("t-shirts", catalogue).candidates
    assert shop.narrow_by_options(tshirts, catalogue, {"size": "L", "color": "red"}) == ["TSH-CLASSIC"]
    assert shop.resolve_product("the classic one", catalogue, candidates=tshirts).sku == "TSH-CLASSIC"
    assert not shop.resolve_product("a unicorn", catalogue).found


def test_option_slots_cover_every_option_of_the_catalogue() -> None:
    options = {name for c in _CATALOGUE for name in c[5]}
    assert options <= set(shop.OPTION_SLOTS), options - set(shop.OPTION_SLOTS)
    domain = (BOT / "domain.yml").read_text(encoding="utf-8")
    for slot in shop.OPTION_SLOTS.values():
        assert f"  {slot}:\n" in domain and f"action_ask_{slot}" in domain


def test_the_bots_explanations_match_the_hubs_rules() -> None:
    assert shop.FREE_SHIPPING_FROM_MINOR == pricing.FREE_SHIPPING_FROM_MINOR
    assert shop.SHIPPING_FEE_MINOR == pricing.SHIPPING_FEE_MINOR
    assert shop.TRANSIT_BUSINESS_DAYS == pricing.TRANSIT_BUSINESS_DAYS
    assert shop.MAX_QUANTITY == validation.MAX_LINE_QUANTITY
