"""A believable demo shop (catalogue, customers, order history, timelines, agents, queues), seeded deterministically."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Sequence, cast

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_store.db import Database
from crm_store.domain.identity import InvalidAddress, normalize_email, normalize_phone
from crm_store.domain.interactions import InteractionKind
from crm_store.domain.money import format_money
from crm_store.domain.orders import OrderStatus
from crm_store.domain.pricing import add_business_days, quote
from crm_store.domain.validation import ProductInfo, ValidLine, ValidOrder
from crm_store.models import (
    Agent,
    ContactPoint,
    Customer,
    Interaction,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Queue,
)
from crm_store.passwords import hash_password

DEMO_PASSWORD = "demo-password"

_UTC = timezone.utc
_CHUNK = 2000
_SEED_LOCK = 0x64656D6F  # "demo": serialises concurrent seeders on PostgreSQL
_CURRENCY = "EUR"
_S = OrderStatus


@dataclass(frozen=True)
class DemoSummary:
    """What seed_demo wrote (or found already there, when skipped)."""

    products: int
    customers: int
    contact_points: int
    orders: int
    interactions: int
    agents: int
    queues: int
    skipped: bool


# --------------------------------------------------------------------------- catalogue

_SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
_KID_SIZES = ["110", "122", "134", "146", "158"]
_SHOE_SIZES = [str(n) for n in range(37, 47)]
_SOCK_SIZES = ["35-38", "39-42", "43-46"]
_WAIST = ["28", "30", "32", "34", "36", "38"]
_LENGTH = ["30", "32", "34"]
_PHONES = ["iPhone 15", "iPhone 15 Pro", "iPhone 16", "Pixel 8", "Galaxy S24"]
_RULING = ["lined", "dotted", "blank"]
_POSTER = ["A3", "A2", "50x70 cm"]


def _apparel(*colors: str, sizes: Sequence[str] = _SIZES) -> dict[str, list[str]]:
    """Size and colour options of a garment."""
    return {"size": list(sizes), "color": list(colors)}


def _colors(*colors: str) -> dict[str, list[str]]:
    """A colour choice only."""
    return {"color": list(colors)}


# category, sku, name, description, price in cents, options, (min, max) lead time in days
_CATALOGUE: tuple[tuple[str, str, str, str, int, dict[str, list[str]], tuple[int, int]], ...] = (
    ("t-shirts", "TSH-CLASSIC", "Classic T-shirt", "Our everyday crew-neck in soft 180 g cotton.", 1999,
     _apparel("black", "white", "red", "navy"), (1, 2)),
    ("t-shirts", "TSH-VNECK", "V-neck T-shirt", "A slim V-neck in combed cotton, cut a little longer.", 2199,
     _apparel("black", "white", "grey", "olive"), (1, 2)),
    ("t-shirts", "TSH-POCKET", "Pocket T-shirt", "Relaxed tee with a chest pocket and double-stitched hems.", 2299,
     _apparel("white", "navy", "sand", "forest green"), (1, 3)),
    ("t-shirts", "TSH-LONGSLEEVE", "Long-sleeve T-shirt", "Mid-weight long-sleeve tee with ribbed cuffs.", 2699,
     _apparel("black", "white", "burgundy", "navy"), (1, 3)),
    ("t-shirts", "TSH-ORGANIC", "Organic Cotton T-shirt", "GOTS-certified organic cotton, garment-dyed.", 2499,
     _apparel("off-white", "sage", "terracotta", "black"), (2, 4)),
    ("t-shirts", "TSH-WAVE", "Wave Graphic T-shirt", "Screen-printed wave artwork on a heavyweight tee.", 2499,
     _apparel("white", "sky blue"), (2, 5)),
    ("t-shirts", "TSH-RINGER", "Retro Ringer T-shirt", "A 70s-style tee with contrast collar and cuffs.", 2299,
     _apparel("white/red", "white/navy", "yellow/black"), (1, 3)),
    ("t-shirts", "TSH-OVERSIZED", "Oversized Boxy T-shirt",
     "Dropped shoulders and a boxy fit; size down for a regular fit.", 2799,
     _apparel("black", "washed grey", "cream"), (1, 3)),
    ("hoodies", "HOD-ZIP", "Zip Hoodie", "Brushed-back fleece hoodie with a full metal zip.", 4999,
     _apparel("black", "grey marl", "navy", "bottle green"), (1, 3)),
    ("hoodies", "HOD-PULLOVER", "Pullover Hoodie", "Classic pullover with a kangaroo pocket and flat drawcords.", 4599,
     _apparel("black", "heather grey", "red", "navy"), (1, 3)),
    ("hoodies", "HOD-HEAVY", "Heavyweight Hoodie", "450 g loopback cotton that keeps its shape for years.", 5999,
     _apparel("black", "oatmeal", "charcoal"), (2, 4)),
    ("hoodies", "HOD-CROP", "Cropped Hoodie", "A cropped, boxy hoodie with raw hems.", 4299,
     _apparel("lilac", "black", "stone"), (1, 3)),
    ("hoodies", "HOD-KIDS", "Kids' Hoodie", "Soft, washable hoodie for ages 4 to 13.", 2999,
     _apparel("navy", "red", "yellow", sizes=_KID_SIZES), (1, 3)),
    ("hoodies", "HOD-FLEECE", "Fleece Quarter-Zip", "Recycled polar fleece with a quarter zip and stand collar.", 5499,
     _apparel("navy", "forest green", "black"), (2, 5)),
    ("jeans", "JNS-SLIM", "Slim Fit Jeans", "Slim through the hip and thigh with a tapered leg, 2% stretch.", 6999,
     {"waist": _WAIST, "length": _LENGTH}, (1, 3)),
    ("jeans", "JNS-STRAIGHT", "Straight Leg Jeans", "A classic five-pocket straight leg in mid-blue denim.", 6999,
     {"waist": _WAIST, "length": _LENGTH}, (1, 3)),
    ("jeans", "JNS-RELAXED", "Relaxed Fit Jeans", "Roomy seat and thigh with a slight taper.", 7499,
     {"waist": _WAIST, "length": _LENGTH}, (2, 4)),
    ("jeans", "JNS-BLACK", "Black Skinny Jeans", "Jet-black skinny jeans that do not fade in the wash.", 6499,
     {"waist": _WAIST, "length": _LENGTH}, (1, 3)),
    ("jeans", "JNS-SELVEDGE", "Raw Selvedge Jeans", "14 oz Japanese raw selvedge denim; soak before the first wear.",
     11999, {"waist": _WAIST, "length": _LENGTH}, (4, 7)),
    ("sneakers", "SNK-RUNNER", "Everyday Runner Sneakers", "Light knit runners with a cushioned foam sole.", 8999,
     _apparel("black", "white", "grey", sizes=_SHOE_SIZES), (2, 4)),
    ("sneakers", "SNK-CANVAS", "Canvas Low-top Sneakers", "Vulcanised canvas low-tops with a natural rubber sole.",
     4999,
     _apparel("white", "black", "navy", "red", sizes=_SHOE_SIZES), (1, 3)),
    ("sneakers", "SNK-HIGHTOP", "Canvas High-top Sneakers", "The high-top version of our canvas classic.", 5499,
     _apparel("white", "black", sizes=_SHOE_SIZES), (1, 3)),
    ("sneakers", "SNK-LEATHER", "White Leather Sneakers", "Minimal full-grain leather court shoe, made in Portugal.",
     10999, _apparel("white", "white/green", sizes=_SHOE_SIZES), (3, 6)),
    ("sneakers", "SNK-TRAIL", "Trail Sneakers", "Grippy lugged sole and a water-repellent upper.", 11999,
     _apparel("olive", "black", "slate blue", sizes=_SHOE_SIZES), (3, 6)),
    ("sneakers", "SNK-SLIPON", "Slip-on Sneakers", "Elastic-gusset canvas slip-ons for easy summer days.", 4499,
     _apparel("black", "checkerboard", "white", sizes=_SHOE_SIZES), (1, 3)),
    ("caps", "CAP-BASEBALL", "Baseball Cap", "Six-panel cotton twill cap with an adjustable strap.", 2199,
     _colors("black", "navy", "khaki", "red"), (1, 2)),
    ("caps", "CAP-SNAPBACK", "Snapback Cap", "Flat-brim snapback with an embroidered logo.", 2499,
     _colors("black", "white", "green"), (1, 3)),
    ("caps", "CAP-BEANIE", "Ribbed Beanie", "A warm rib-knit beanie in a wool blend.", 1899,
     _colors("black", "grey", "mustard", "navy", "orange"), (1, 2)),
    ("caps", "CAP-BUCKET", "Bucket Hat", "Reversible cotton bucket hat.", 2499,
     _colors("black", "beige", "denim"), (1, 3)),
    ("caps", "CAP-TRUCKER", "Trucker Cap", "Mesh-back trucker cap with a foam front.", 1999,
     _colors("white/navy", "black", "red/white"), (1, 2)),
    ("socks", "SCK-CREW", "Crew Socks (3-pack)", "Combed cotton crew socks with a cushioned sole.", 1299,
     {"size": _SOCK_SIZES, "color": ["black", "white", "mixed"]}, (1, 2)),
    ("socks", "SCK-ANKLE", "Ankle Socks (3-pack)", "Low-cut socks with a heel tab.", 1199,
     {"size": _SOCK_SIZES, "color": ["black", "white"]}, (1, 2)),
    ("socks", "SCK-WOOL", "Merino Wool Socks", "Warm, odour-resistant merino socks for hiking and winter.", 1699,
     {"size": _SOCK_SIZES, "color": ["charcoal", "forest green"]}, (2, 4)),
    ("socks", "SCK-STRIPE", "Striped Socks", "Bright striped cotton socks.", 999,
     {"size": _SOCK_SIZES}, (1, 2)),
    ("socks", "SCK-SPORT", "Sport Socks (5-pack)", "Breathable sport socks with arch support.", 1799,
     {"size": _SOCK_SIZES}, (1, 2)),
    ("mugs", "MUG-CLASSIC", "Classic Logo Mug", "A 350 ml stoneware mug with our logo; dishwasher safe.", 1299,
     {}, (1, 2)),
    ("mugs", "MUG-ENAMEL", "Enamel Camp Mug", "A light enamel mug for the campsite and the desk.", 1499,
     _colors("white", "black", "blue"), (1, 3)),
    ("mugs", "MUG-TRAVEL", "Insulated Travel Mug", "Double-walled steel; keeps coffee hot for 6 hours.", 2499,
     _colors("black", "sage", "sand"), (1, 3)),
    ("mugs", "MUG-LATTE", "Large Latte Mug", "A generous 500 ml mug in speckled glaze.", 1599, {}, (2, 4)),
    ("mugs", "MUG-ESPRESSO", "Espresso Cup Set", "Two porcelain espresso cups with saucers.", 1999, {}, (2, 5)),
    ("posters", "PST-CITY", "City Skyline Poster", "A night skyline printed on 200 g matte paper.", 1999,
     {"size": _POSTER}, (2, 5)),
    ("posters", "PST-MOUNTAIN", "Mountain Sunrise Poster", "Alpine sunrise in soft pastel tones.", 1999,
     {"size": _POSTER}, (2, 5)),
    ("posters", "PST-ARCADE", "Retro Arcade Poster", "Eighties arcade artwork in neon colours.", 1799,
     {"size": _POSTER}, (2, 5)),
    ("posters", "PST-BOTANICAL", "Botanical Print Poster", "Vintage fern illustrations, museum-grade print.", 2299,
     {"size": _POSTER}, (3, 6)),
    ("posters", "PST-MAP", "Vintage World Map Poster", "An antique-style world map in sepia tones.", 2499,
     {"size": _POSTER}, (3, 7)),
    ("backpacks", "BPK-DAYPACK", "Daypack 20L", "A light everyday backpack with a padded back panel.", 5999,
     _colors("black", "navy", "olive"), (1, 3)),
    ("backpacks", "BPK-ROLLTOP", "Roll-top Backpack", "Waterproof roll-top backpack in recycled tarpaulin.", 7999,
     _colors("black", "yellow", "grey"), (2, 4)),
    ("backpacks", "BPK-LAPTOP", "Laptop Backpack 15\"",
     "Padded sleeve for laptops up to 15 inches and a luggage strap.", 6999, _colors("black", "charcoal"), (1, 3)),
    ("backpacks", "BPK-MINI", "Mini Backpack", "A compact backpack for city days.", 3999,
     _colors("black", "pink", "beige"), (1, 3)),
    ("backpacks", "BPK-HIKING", "Hiking Backpack 35L", "Ventilated back, hip belt and a rain cover included.", 9999,
     _colors("green", "blue", "black"), (3, 6)),
    ("water bottles", "BTL-STEEL", "Stainless Steel Bottle 750 ml", "Vacuum-insulated: cold for 24 hours, hot for 12.",
     2499, _colors("black", "white", "teal", "coral"), (1, 2)),
    ("water bottles", "BTL-SPORT", "Sport Squeeze Bottle", "BPA-free squeeze bottle with a push-pull cap.", 1299,
     _colors("clear", "blue", "green"), (1, 2)),
    ("water bottles", "BTL-GLASS", "Glass Bottle with Sleeve", "Borosilicate glass with a protective silicone sleeve.",
     1999, _colors("grey", "mint"), (1, 3)),
    ("water bottles", "BTL-KIDS", "Kids' Water Bottle", "Leak-proof bottle with a straw and dinosaur print.", 1499,
     _colors("green", "purple"), (1, 2)),
    ("notebooks", "NTB-A5", "A5 Hardcover Notebook", "192 pages of 100 g paper, lay-flat binding.", 1499,
     {"ruling": _RULING}, (1, 2)),
    ("notebooks", "NTB-POCKET", "Pocket Notebook (2-pack)", "Two slim notebooks that fit a back pocket.", 899,
     {"ruling": _RULING}, (1, 2)),
    ("notebooks", "NTB-SPIRAL", "Spiral Notebook A4", "A4 spiral notebook with perforated pages.", 1199,
     {"ruling": ["lined", "squared"]}, (1, 2)),
    ("notebooks", "NTB-PLANNER", "Weekly Planner", "Undated weekly planner with a linen cover.", 1999, {}, (1, 3)),
    ("phone cases", "PHC-CLEAR", "Clear Phone Case", "Slim, clear case with raised edges around the camera.", 1999,
     {"model": _PHONES}, (1, 3)),
    ("phone cases", "PHC-SILICONE", "Silicone Phone Case", "Soft-touch silicone with a microfibre lining.", 2499,
     {"model": _PHONES, "color": ["black", "sand", "sage"]}, (1, 3)),
    ("phone cases", "PHC-LEATHER", "Leather Wallet Case", "Vegetable-tanned leather folio with three card slots.", 3999,
     {"model": _PHONES}, (3, 6)),
    ("phone cases", "PHC-RUGGED", "Rugged Phone Case", "Drop-tested to 3 metres, with a shock-absorbing frame.", 2999,
     {"model": _PHONES}, (2, 4)),
    ("bags", "TOT-CANVAS", "Canvas Tote Bag", "Heavy cotton canvas tote with an inside pocket.", 1499,
     _colors("natural", "black"), (1, 2)),
    ("bags", "TOT-ZIP", "Zip Tote Bag", "A zip-top tote in water-repellent nylon.", 2499,
     _colors("black", "navy", "rust"), (1, 3)),
    ("jackets", "JKT-RAIN", "Packable Rain Jacket", "A waterproof shell that packs into its own pocket.", 7999,
     _apparel("black", "yellow", "navy"), (2, 4)),
    ("jackets", "JKT-DENIM", "Denim Jacket", "A classic trucker jacket in rigid mid-blue denim.", 8999,
     {"size": _SIZES}, (2, 5)),
)

# Questions a customer asks about a product, by category ("{p}" is the product's name).
_PRODUCT_QUESTIONS: dict[str, tuple[str, ...]] = {
    "t-shirts": ("Asked whether the {p} runs small", "Asked if the {p} shrinks in the wash",
                 "Asked whether the {p} is 100% cotton"),
    "hoodies": ("Asked whether the {p} runs small", "Asked if the {p} comes in a tall fit",
                "Asked how warm the {p} is for winter"),
    "jeans": ("Asked which length of the {p} fits someone 1.80 m tall", "Asked if the {p} stretches over time",
              "Asked whether the {p} can be hemmed"),
    "sneakers": ("Asked whether the {p} fits true to EU size", "Asked if the {p} is waterproof",
                 "Asked whether the {p} suits wide feet"),
    "caps": ("Asked whether the {p} is adjustable", "Asked if the {p} can be washed in the machine"),
    "socks": ("Asked which size of the {p} fits EU 42", "Asked if the {p} comes in a bigger pack"),
    "mugs": ("Asked whether the {p} is dishwasher safe", "Asked if the {p} can go in the microwave"),
    "posters": ("Asked whether the {p} ships rolled or folded", "Asked if the {p} comes with a frame"),
    "backpacks": ("Asked whether the {p} fits a 15-inch laptop", "Asked if the {p} is allowed as cabin luggage"),
    "water bottles": ("Asked whether the {p} keeps drinks cold for 24 hours", "Asked if the {p} is dishwasher safe"),
    "notebooks": ("Asked whether the {p} paper takes fountain pen ink", "Asked how many pages the {p} has"),
    "phone cases": ("Asked whether the {p} fits the iPhone 16 Plus", "Asked if the {p} works with wireless charging"),
    "bags": ("Asked whether the {p} fits a laptop", "Asked if the {p} can be washed"),
    "jackets": ("Asked whether the {p} runs small", "Asked if the {p} is fully waterproof"),
}
_GENERIC_QUESTIONS = (
    "Asked whether the {p} is back in stock soon",
    "Asked if the {p} comes in another colour",
    "Asked about the care instructions for the {p}",
)

# --------------------------------------------------------------------------- people and places

# culture -> (first names, last names, preferred countries)
_CULTURES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "english": (
        ("Emma", "Olivia", "Amelia", "Grace", "Charlotte", "Jack", "Oliver", "Harry", "George", "Thomas",
         "Sophie", "James", "Emily", "Daniel", "Hannah", "Michael", "Sarah", "David", "Laura", "Ryan"),
        ("Smith", "Johnson", "Williams", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker", "Wright",
         "Thompson", "Roberts", "Clarke", "Hughes", "Green", "Baker", "Carter", "Mitchell", "Cooper", "Hall"),
        ("US", "GB", "US", "GB", "IE"),
    ),
    "irish": (
        ("Aoife", "Ciara", "Niamh", "Saoirse", "Siobhan", "Conor", "Sean", "Cian", "Eoin", "Padraig"),
        ("Murphy", "Kelly", "O'Brien", "Byrne", "Ryan", "O'Sullivan", "Walsh", "McCarthy", "Doyle", "Gallagher"),
        ("IE", "IE", "GB", "US"),
    ),
    "german": (
        ("Lukas", "Jonas", "Leon", "Felix", "Maximilian", "Anna", "Lena", "Marie", "Katharina", "Jürgen",
         "Sabine", "Stefan", "Julia", "Tobias", "Franziska"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
         "Schäfer", "Koch", "Richter", "Klein", "Wolf", "Schröder"),
        ("DE", "DE", "DE", "GB", "US"),
    ),
    "hispanic": (
        ("Sofía", "Valentina", "Lucía", "Camila", "Isabel", "Mateo", "Santiago", "Diego", "Alejandro", "José",
         "Carmen", "Javier", "Gabriela", "Andrés"),
        ("García", "Martínez", "Rodríguez", "López", "Hernández", "González", "Pérez", "Sánchez", "Ramírez",
         "Torres", "Flores", "Rivera", "Morales", "Ortiz"),
        ("US", "US", "FR", "DE"),
    ),
    "french": (
        ("Camille", "Chloé", "Manon", "Léa", "Inès", "Hugo", "Louis", "Gabriel", "Théo", "Antoine", "Élodie"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
         "Lefèvre"),
        ("FR", "FR", "GB", "DE"),
    ),
    "italian": (
        ("Giulia", "Francesca", "Chiara", "Alessandro", "Lorenzo", "Matteo", "Marco", "Federica", "Giorgio"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Conti"),
        ("DE", "GB", "US", "FR"),
    ),
    "polish": (
        ("Zofia", "Agnieszka", "Katarzyna", "Małgorzata", "Piotr", "Krzysztof", "Tomasz", "Paweł", "Michał"),
        ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński", "Szymański"),
        ("DE", "GB", "IE"),
    ),
    "nigerian": (
        ("Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Emeka", "Funmilayo", "Tunde", "Chiamaka", "Ifeanyi", "Yetunde"),
        ("Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Nwosu", "Adebayo", "Obi", "Ogunleye"),
        ("GB", "US", "GB", "IE"),
    ),
    "indian": (
        ("Aarav", "Priya", "Ananya", "Rohan", "Vikram", "Sneha", "Arjun", "Kavya", "Rahul", "Neha", "Aditya", "Divya"),
        ("Sharma", "Patel", "Singh", "Gupta", "Kumar", "Reddy", "Iyer", "Nair", "Mehta", "Chopra", "Desai"),
        ("GB", "US", "US", "DE"),
    ),
    "chinese": (
        ("Wei", "Fang", "Jing", "Li Na", "Hao", "Xiaoming", "Mei", "Yan", "Jun", "Lin"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"),
        ("US", "GB", "DE", "US"),
    ),
    "japanese": (
        ("Yuki", "Haruto", "Sakura", "Ren", "Aoi", "Sota", "Hina", "Kenji", "Yui"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi"),
        ("US", "DE", "GB"),
    ),
    "korean": (
        ("Ji-woo", "Seo-yeon", "Min-jun", "Ha-eun", "Do-yun", "Ji-ho", "Soo-ah"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Yoon"),
        ("US", "DE", "GB"),
    ),
    "vietnamese": (
        ("Linh", "Minh", "Thảo", "Quang", "Huong", "Tuan", "Anh"),
        ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng"),
        ("US", "FR", "DE"),
    ),
    "arabic": (
        ("Omar", "Layla", "Youssef", "Fatima", "Karim", "Amira", "Hassan", "Nour", "Samir", "Yasmin"),
        ("Haddad", "Khalil", "Nasser", "Mansour", "Saleh", "Aziz", "Farah", "Hamdan", "Rahman"),
        ("FR", "DE", "GB", "US"),
    ),
    "turkish": (
        ("Emre", "Elif", "Mehmet", "Zeynep", "Burak", "Ayşe", "Can", "Deniz"),
        ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Arslan"),
        ("DE", "DE", "GB"),
    ),
    "nordic": (
        ("Astrid", "Ingrid", "Freja", "Lars", "Erik", "Magnus", "Sigrid", "Nils", "Sven"),
        ("Andersen", "Johansson", "Lindqvist", "Nilsson", "Hansen", "Berg", "Lund", "Dahl"),
        ("DE", "GB", "US"),
    ),
    "dutch": (
        ("Daan", "Sem", "Fenna", "Sanne", "Joris", "Lotte", "Bram", "Noor"),
        ("de Jong", "Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit", "van der Berg"),
        ("DE", "GB", "FR"),
    ),
    "brazilian": (
        ("João", "Ana", "Pedro", "Beatriz", "Lucas", "Mariana", "Rafael", "Larissa"),
        ("Silva", "Santos", "Oliveira", "Souza", "Costa", "Pereira", "Almeida", "Carvalho"),
        ("US", "FR", "GB"),
    ),
}
_CULTURE_WEIGHTS: dict[str, int] = {
    "english": 22, "irish": 5, "german": 14, "hispanic": 9, "french": 6, "italian": 5, "polish": 4,
    "nigerian": 5, "indian": 7, "chinese": 5, "japanese": 2, "korean": 2, "vietnamese": 2, "arabic": 4,
    "turkish": 3, "nordic": 2, "dutch": 2, "brazilian": 3,
}

# country -> cities: (city, region/postcode format, phone patterns in national digits appended to the country code)
_CITIES: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "US": (
        ("New York, NY 100{d2}", "{n} {street}", ("1212{x7}", "1718{x7}", "1917{x7}")),
        ("San Francisco, CA 941{d2}", "{n} {street}", ("1415{x7}",)),
        ("Boston, MA 021{d2}", "{n} {street}", ("1617{x7}",)),
        ("Chicago, IL 606{d2}", "{n} {street}", ("1312{x7}", "1773{x7}")),
        ("Seattle, WA 981{d2}", "{n} {street}", ("1206{x7}",)),
        ("Denver, CO 802{d2}", "{n} {street}", ("1303{x7}",)),
        ("Austin, TX 787{d2}", "{n} {street}", ("1512{x7}",)),
    ),
    "GB": (
        ("London {pc_london}", "{n} {street}", ("4420 7{x7}", "4420 8{x7}", "447{m9}")),
        ("Manchester M{d1} {pc_in}", "{n} {street}", ("44161 {x7}", "447{m9}")),
        ("Edinburgh EH{d1} {pc_in}", "{n} {street}", ("44131 {x7}", "447{m9}")),
        ("Bristol BS{d1} {pc_in}", "{n} {street}", ("44117 {x7}", "447{m9}")),
    ),
    "DE": (
        ("10{d3} Berlin", "{street} {n}", ("4930 {x8}", "4915{mde}", "4917{mde}")),
        ("80{d3} München", "{street} {n}", ("4989 {x8}", "4916{mde}")),
        ("20{d3} Hamburg", "{street} {n}", ("4940 {x8}", "4915{mde}")),
        ("50{d3} Köln", "{street} {n}", ("49221 {x7}", "4917{mde}")),
    ),
    "IE": (
        ("Dublin D0{d1}", "{n} {street}", ("3531 {x7}", "35383{x7}", "35387{x7}")),
        ("Cork T12", "{n} {street}", ("35321 {x7}", "35385{x7}")),
    ),
    "FR": (
        ("750{d2} Paris", "{n} {street}", ("331{x8}", "336{x8}", "337{x8}")),
        ("690{d2} Lyon", "{n} {street}", ("334{x8}", "336{x8}")),
    ),
}
_STREETS: dict[str, tuple[str, ...]] = {
    "US": ("Maple Avenue", "Oak Street", "Elm Street", "Cedar Lane", "Washington Street", "Park Avenue",
           "Lake Shore Drive", "Sunset Boulevard", "Hillside Road", "Pine Street", "Market Street", "2nd Avenue"),
    "GB": ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "Park Road",
           "Queen's Road", "King Street", "The Crescent", "Albert Street"),
    "DE": ("Hauptstraße", "Lindenstraße", "Schillerstraße", "Goethestraße", "Bahnhofstraße", "Gartenweg",
           "Bergstraße", "Kirchplatz", "Am Markt", "Rosenweg"),
    "IE": ("Main Street", "Church Road", "Harbour View", "Seafield Avenue", "Grafton Street", "Strand Road"),
    "FR": ("rue de la Paix", "avenue Victor Hugo", "rue Lafayette", "boulevard Voltaire", "rue des Lilas",
           "place de la République"),
}
_COUNTRY_WEIGHTS = {"US": 40, "GB": 25, "DE": 20, "IE": 7, "FR": 8}
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "post.example.org")
_TRANSLIT = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ı": "i", "þ": "th"})

# --------------------------------------------------------------------------- agents and queues

_AGENTS: tuple[tuple[str, str, str, dict[str, int], dict[str, int]], ...] = (
    ("admin", "Shop Admin", "admin", {"orders": 2, "english": 4}, {"chat": 2, "phone": 1, "email": 2, "sms": 4, "whatsapp": 4}),
    ("sam", "Sam Okafor", "supervisor", {"orders": 4, "returns": 4, "english": 5, "german": 2},
     {"chat": 2, "phone": 1, "email": 3, "sms": 4, "whatsapp": 4}),
    ("alice", "Alice Martin", "agent", {"orders": 3, "returns": 2, "english": 5, "german": 3},
     {"chat": 3, "phone": 1, "email": 2, "sms": 4, "whatsapp": 4}),
    ("bob", "Bob Novak", "agent", {"orders": 5, "returns": 1, "english": 4},
     {"chat": 4, "phone": 1, "email": 3, "sms": 4, "whatsapp": 4}),
    ("chen", "Chen Wei", "agent", {"orders": 2, "returns": 5, "english": 4, "mandarin": 5},
     {"chat": 2, "phone": 1, "email": 4, "sms": 4, "whatsapp": 4}),
    ("dana", "Dana Fischer", "agent", {"orders": 3, "returns": 3, "english": 3, "german": 5},
     {"chat": 3, "phone": 1, "email": 2, "sms": 4, "whatsapp": 4}),
)
# name, skills, channels, target seconds, target ratio, max waiting
_QUEUES: tuple[tuple[str, list[str], list[str], int, float, int], ...] = (
    ("sales", ["orders"], ["chat", "phone", "callback"], 20, 0.8, 50),
    ("support", ["orders"], ["chat", "phone", "email", "callback", "sms", "whatsapp"], 30, 0.8, 80),
    ("returns", ["returns"], ["email", "chat", "phone"], 60, 0.8, 40),
    ("german", ["german"], ["chat", "phone", "email", "callback"], 30, 0.8, 30),
)
_AGENT_IDS = {name: i for i, (name, *_rest) in enumerate(_AGENTS, start=1)}

# --------------------------------------------------------------------------- working records


@dataclass
class _Person:
    """A customer being built, before ids are known."""

    name: str
    country: str
    address: str
    created_at: datetime
    german: bool
    points: list[tuple[str, str, bool, datetime]] = field(default_factory=list)  # kind, value, verified, when
    id: int = 0


@dataclass
class _Draft:
    """An order being built: who, when, what, and how its life will go."""

    person: _Person
    placed_at: datetime
    channel: str
    lines: list[dict[str, Any]]
    subtotal: int
    shipping: int
    total: int
    promised: date
    lead: int
    phone: str | None
    email: str | None
    notes: str
    fate: str  # normal / cancel / return / stuck_confirmed / stuck_picking
    late_days: int
    id: int = 0
    events: list[tuple[str | None, str, datetime, str, str]] = field(default_factory=list)


def _ascii(text_: str) -> str:
    """Lower-case ASCII letters and digits of a name, for email addresses."""
    folded = unicodedata.normalize("NFKD", text_.lower().translate(_TRANSLIT))
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def _fill(rng: random.Random, pattern: str) -> str:
    """Replace the digit placeholders of a phone or address pattern with random digits."""
    out = pattern
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        key = out[start + 1:end]
        if key.startswith("x"):
            rep = "".join(str(rng.randint(0, 9)) for _ in range(int(key[1:])))
            rep = str(rng.randint(2, 9)) + rep[1:]  # no leading 0/1 in a subscriber number
        elif key.startswith("d"):
            rep = "".join(str(rng.randint(0, 9)) for _ in range(int(key[1:])))
            rep = rep if key != "d1" else str(rng.randint(1, 9))
        elif key == "m9":  # UK mobile after "447"
            rep = str(rng.choice((4, 5, 7, 8, 9))) + "".join(str(rng.randint(0, 9)) for _ in range(8))
        elif key == "mde":  # German mobile after "4915"/"4916"/"4917"
            rep = str(rng.randint(0, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(8))
        elif key == "pc_london":
            rep = rng.choice(("N1", "NW1", "SE1", "E2", "SW11", "W1", "WC1")) + " " + _fill(rng, "{pc_in}")
        elif key == "pc_in":
            rep = str(rng.randint(1, 9)) + "".join(rng.choice("ABDEFGHJLNPQRSTUWXYZ") for _ in range(2))
        else:  # pragma: no cover - a typo in the tables above
            raise KeyError(key)
        out = out[:start] + rep + out[end + 1:]
    return out


def _phone(rng: random.Random, patterns: Sequence[str], used: set[str]) -> str | None:
    """A fresh phone number in E.164 that the phone library accepts, from the city's number patterns."""
    for _ in range(50):
        raw = "+" + _fill(rng, rng.choice(patterns)).replace(" ", "")
        try:
            value = normalize_phone(raw)
        except InvalidAddress:
            continue
        if value.startswith("+1") and value[5:8] == "555":  # fictional exchange: keep it out of the demo
            continue
        if value not in used:
            used.add(value)
            return value
    return None


def _email(rng: random.Random, first: str, last: str, used: set[str]) -> str:
    """A fresh name-based address at a reserved example domain."""
    f, l_ = _ascii(first) or "customer", _ascii(last) or "shopper"
    shapes = (f"{f}.{l_}", f"{f}{l_}", f"{f[0]}.{l_}", f"{f}_{l_}", f"{l_}.{f}", f"{f}{rng.randint(1, 99)}")
    for attempt in range(40):
        local = rng.choice(shapes) if attempt < 4 else f"{f}.{l_}{rng.randint(2, 9999)}"
        value = normalize_email(f"{local}@{rng.choice(_EMAIL_DOMAINS)}")
        if value not in used:
            used.add(value)
            return value
    raise RuntimeError("could not find a free demo email address")  # pragma: no cover


def _at(rng: random.Random, day: date, lo_hour: int = 8, hi_hour: int = 19) -> datetime:
    """A moment on that day between the given hours (UTC)."""
    seconds = rng.randint(lo_hour * 3600, hi_hour * 3600 - 1)
    return datetime.combine(day, time(0), tzinfo=_UTC) + timedelta(seconds=seconds)


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A random whole-second moment in [start, end) (start when the window is empty)."""
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randint(0, span - 1)) if span > 1 else start


# --------------------------------------------------------------------------- builders


def _products(rng: random.Random) -> tuple[list[dict[str, Any]], list[ProductInfo]]:
    """The catalogue rows (with today's stock) and their pure-core view for pricing."""
    n = len(_CATALOGUE)
    scarce = rng.sample(range(n), 7)
    sold_out, low = set(scarce[:2]), set(scarce[2:])
    rows: list[dict[str, Any]] = []
    infos: list[ProductInfo] = []
    for i, (category, sku, name, description, price, options, (lo, hi)) in enumerate(_CATALOGUE):
        threshold = rng.choice((5, 5, 8, 10))
        if i in sold_out:
            stock = 0
        elif i in low:
            stock = rng.randint(1, threshold)
        else:
            stock = rng.randint(threshold + 10, 240)
        lead = rng.randint(lo, hi)
        rows.append({
            "id": i + 1, "sku": sku, "name": name, "description": description, "category": category,
            "price_minor": price, "currency": _CURRENCY, "stock": stock, "low_stock_threshold": threshold,
            "lead_time_days": lead, "options": {k: list(v) for k, v in options.items()}, "active": True,
        })
        infos.append(ProductInfo(sku=sku, name=name, price_minor=price, stock=stock, lead_time_days=lead,
                                 options=options, active=True))
    return rows, infos


def _people(rng: random.Random, count: int, cutoff: datetime) -> list[_Person]:
    """Customers with names, addresses and contact points, ids in order of sign-up."""
    cultures = list(_CULTURE_WEIGHTS)
    weights = [_CULTURE_WEIGHTS[c] for c in cultures]
    countries = list(_COUNTRY_WEIGHTS)
    cweights = [_COUNTRY_WEIGHTS[c] for c in countries]
    used_phones: set[str] = set()
    used_emails: set[str] = set()
    used_web: set[str] = set()
    people: list[_Person] = []
    for _ in range(count):
        culture = rng.choices(cultures, weights)[0]
        firsts, lasts, homes = _CULTURES[culture]
        first = rng.choice(firsts)
        # now and then a family name from another culture (marriage, heritage)
        last = rng.choice(lasts if rng.random() < 0.9 else _CULTURES[rng.choices(cultures, weights)[0]][1])
        country = rng.choice(homes) if rng.random() < 0.7 else rng.choices(countries, cweights)[0]
        city, street_fmt, phone_patterns = rng.choice(_CITIES[country])
        street = street_fmt.format(n=rng.randint(1, 180), street=rng.choice(_STREETS[country]))
        address = f"{street}, {_fill(rng, city)}"
        if rng.random() < 0.6:
            created = cutoff - timedelta(days=rng.randint(366, 1100), seconds=rng.randint(0, 86399))
        else:
            created = cutoff - timedelta(days=rng.randint(1, 365), seconds=rng.randint(0, 86399))
        person = _Person(name=f"{first} {last}", country=country, address=address, created_at=created,
                         german=country == "DE" or culture == "german")
        shape = rng.choices(("ep", "e", "p", "epw", "ew", "pw"), (45, 20, 10, 15, 7, 3))[0]
        if "e" in shape:
            person.points.append(("email", _email(rng, first, last, used_emails), rng.random() < 0.8, created))
        if "p" in shape:
            phone = _phone(rng, phone_patterns, used_phones)
            if phone is not None:
                when = created + timedelta(minutes=rng.randint(0, 60 * 24 * 30))
                person.points.append(("phone", phone, rng.random() < 0.6, min(when, cutoff - timedelta(hours=1))))
        if not person.points:  # every customer can be reached somehow
            person.points.append(("email", _email(rng, first, last, used_emails), True, created))
        if "w" in shape:
            visitor = f"v_{rng.getrandbits(64):016x}"
            if visitor not in used_web:
                used_web.add(visitor)
                person.points.append(("web", visitor, False, created - timedelta(days=rng.randint(0, 20))))
        people.append(person)
    people.sort(key=lambda p: p.created_at)
    for i, person in enumerate(people, start=1):
        person.id = i
    return people


# Planted co-purchases: a basket holding the first product also gets the second with this probability, so the
# association rules of the demo shop make sense (docs/subsystems/order-evaluation.md prints the top ten).
CO_PURCHASES: tuple[tuple[str, str, float], ...] = (
    ("SNK-TRAIL", "SCK-WOOL", 0.5),  # trail sneakers and merino socks
    ("SNK-RUNNER", "SCK-SPORT", 0.45),  # runners and sport socks
    ("BPK-HIKING", "BTL-STEEL", 0.5),  # a hiking pack and an insulated bottle
    ("BPK-HIKING", "JKT-RAIN", 0.3),  # ... and a rain jacket
    ("JNS-SELVEDGE", "JKT-DENIM", 0.4),  # raw denim, head to toe
    ("HOD-KIDS", "BTL-KIDS", 0.45),  # back to school
    ("NTB-PLANNER", "NTB-A5", 0.4),  # a planner and a notebook
    ("CAP-BEANIE", "SCK-WOOL", 0.3),  # winter
    ("MUG-ESPRESSO", "MUG-LATTE", 0.3),  # a coffee corner
    ("PHC-LEATHER", "TOT-CANVAS", 0.25),  # small leather goods and a tote
)


def _plant(plant: random.Random, chosen: list[ProductInfo], by_sku: dict[str, ProductInfo]) -> list[ProductInfo]:
    """The basket with its planted companions added (drawn from their own generator: the rest of the demo
    data, drawn from the main one, is the same as without them)."""
    out = list(chosen)
    skus = {p.sku for p in out}
    for first, second, chance in CO_PURCHASES:
        if first in skus and second not in skus and second in by_sku and plant.random() < chance:
            out.append(by_sku[second])
            skus.add(second)
    return out


def _drafts(
    rng: random.Random, people: list[_Person], infos: list[ProductInfo], cutoff: datetime
) -> list[_Draft]:
    """Each customer's past orders (about three on average over the last year), priced with the shop's rules."""
    year_ago = cutoff - timedelta(days=365)
    channels = ("web", "web", "web", "web", "web", "phone", "chat", "chat", "email", "whatsapp")
    notes = ("", "", "", "", "", "", "Leave the parcel with the neighbour if I'm out",
             "It's a gift, no invoice in the box please", "Please ring the bell twice", "Deliver to the side door")
    drafts: list[_Draft] = []
    plant = random.Random(repr(rng.getstate()[1][:8]))  # from the seed, without drawing from rng
    by_sku = {p.sku: p for p in infos}
    for person in people:
        phone = next((v for k, v, *_ in person.points if k == "phone"), None)
        email = next((v for k, v, *_ in person.points if k == "email"), None)
        count = rng.choices((0, 1, 2, 3, 4, 5, 6, 8, 10), (12, 18, 18, 16, 12, 9, 7, 5, 3))[0]
        start = max(person.created_at, year_ago)
        for _ in range(count):
            placed = _between(rng, start, cutoff - timedelta(minutes=30))
            chosen = rng.sample(infos, rng.choices((1, 2, 3, 4), (50, 30, 14, 6))[0])
            valid = tuple(
                ValidLine(product=p, quantity=rng.choice((1, 1, 1, 1, 1, 2, 2, 3)),
                          options={k: rng.choice(list(v)) for k, v in p.options.items()})
                for p in chosen
            ) + tuple(
                ValidLine(product=p, quantity=1, options={k: plant.choice(list(v)) for k, v in p.options.items()})
                for p in _plant(plant, chosen, by_sku)[len(chosen):]
            )
            order = ValidOrder(lines=valid, delivery_address=person.address, phone=phone, email=email,
                               notes=rng.choice(notes))
            priced = quote(order, placed.date())
            roll = rng.random()
            fate = "cancel" if roll < 0.06 else "return" if roll < 0.13 else "normal"
            late = rng.choices((0, 1, 2, 3), (90, 6, 3, 1))[0]
            drafts.append(_Draft(
                person=person, placed_at=placed, channel=rng.choice(channels),
                lines=[{"sku": pl.sku, "name": pl.name, "options": dict(pl.options), "quantity": pl.quantity,
                        "unit_price_minor": pl.unit_price_minor, "line_total_minor": pl.line_total_minor}
                       for pl in priced.lines],
                subtotal=priced.subtotal_minor, shipping=priced.shipping_minor, total=priced.total_minor,
                promised=priced.estimated_delivery, lead=max(line.product.lead_time_days for line in valid),
                phone=phone, email=email, notes=order.notes, fate=fate, late_days=late,
            ))
    drafts.sort(key=lambda d: (d.placed_at, d.person.id))
    for i, draft in enumerate(drafts, start=1):
        draft.id = i
    # A handful of recent orders got stuck in the warehouse and are now past their promised date.
    today = cutoff.date()
    stuck_candidates = [
        d for d in drafts
        if d.promised < today and (today - d.placed_at.date()).days <= 40 and d.fate == "normal"
    ]
    for d in rng.sample(stuck_candidates, min(len(stuck_candidates), max(3, len(drafts) // 250))):
        d.fate = rng.choice(("stuck_confirmed", "stuck_picking"))
    return drafts


def _agent_name(rng: random.Random, german: bool = False) -> str:
    """A demo agent's username (German speakers mostly reach Dana or Alice)."""
    if german and rng.random() < 0.7:
        return rng.choice(("dana", "alice"))
    return rng.choice(("alice", "bob", "chen", "dana", "alice", "bob", "chen", "dana", "sam"))


def _life(rng: random.Random, d: _Draft, cutoff: datetime) -> None:
    """Fill in the order's status history up to the cutoff; its status is the last step reached."""
    steps: list[tuple[str, datetime, str, str]] = [(_S.PLACED, d.placed_at, _placed_actor(rng, d), "")]
    t = d.placed_at

    def step(status: str, when: datetime, actor: str, note: str = "") -> None:
        nonlocal t
        when = max(when, t + timedelta(minutes=1))
        steps.append((status, when, actor, note))
        t = when

    placed_day = d.placed_at.date()
    if rng.random() < 0.9:
        step(_S.CONFIRMED, t + timedelta(minutes=rng.randint(2, 90)), "system", "payment received")
    else:
        step(_S.CONFIRMED, t + timedelta(hours=rng.randint(20, 72)), "system", "bank transfer received")
    if d.fate == "cancel" and rng.random() < 0.5:
        step(_S.CANCELLED, t + timedelta(minutes=rng.randint(10, 60 * 20)), *_cancel(rng, d))
    elif d.fate == "stuck_confirmed":
        pass
    else:
        step(_S.PICKING, t + timedelta(minutes=rng.randint(60, 60 * 20)), "warehouse")
        if d.fate == "cancel":
            step(_S.CANCELLED, t + timedelta(minutes=rng.randint(10, 60 * 8)), *_cancel(rng, d))
        elif d.fate != "stuck_picking":
            # leaves the warehouse after the lead time, never before it was picked
            shipped_day = max(add_business_days(placed_day, d.lead), add_business_days(t.date(), 0))
            shipped_at = _at(rng, shipped_day, 14, 19)
            if shipped_at <= t:
                shipped_day = add_business_days(shipped_day, 1)
                shipped_at = _at(rng, shipped_day, 14, 19)
            step(_S.SHIPPED, shipped_at, "warehouse",
                 f"handed to {rng.choice(('DHL', 'UPS', 'DPD', 'Royal Mail', 'FedEx'))}")
            transit = add_business_days(shipped_day, rng.choice((1, 2, 2)))
            due = add_business_days(d.promised, d.late_days) if d.late_days else min(transit, d.promised)
            delivered_day = max(due, add_business_days(shipped_day, 1))
            step(_S.DELIVERED, _at(rng, delivered_day, 9, 18), "carrier")
            if d.fate == "return":
                step(_S.RETURNED, t + timedelta(days=rng.randint(3, 25), hours=rng.randint(0, 8)),
                     _agent_name(rng, d.person.german), rng.choice((
                         "too small", "too big", "colour differs from the photos", "arrived damaged",
                         "changed my mind", "ordered two sizes, kept one")))
                step(_S.REFUNDED, _at(rng, (t + timedelta(days=rng.randint(1, 5))).date(), 9, 17), "finance",
                     f"refunded {format_money(d.total, _CURRENCY)}")
    previous: str | None = None
    for status, when, actor, note in steps:
        if when >= cutoff:
            break
        d.events.append((previous, status, when, actor, note))
        previous = status


def _placed_actor(rng: random.Random, d: _Draft) -> str:
    """Who placed the order: the customer online, the bot in chat, an agent on the phone."""
    if d.channel == "phone":
        return _agent_name(rng, d.person.german)
    if d.channel in ("chat", "whatsapp"):
        return "bot"
    return "customer"


def _cancel(rng: random.Random, d: _Draft) -> tuple[str, str]:
    """Who cancelled and why."""
    reason = rng.choice(("customer changed their mind", "ordered the wrong size", "found it cheaper elsewhere",
                         "duplicate order", "payment declined"))
    actor = "system" if reason == "payment declined" else rng.choice(("customer", _agent_name(rng, d.person.german)))
    return actor, reason


# --------------------------------------------------------------------------- timeline


def _order_contact(rng: random.Random, d: _Draft, cutoff: datetime) -> tuple[str, str, str, str] | None:
    """A contact about an order (kind, channel, summary, queue), timed after it was placed; None if none."""
    status = d.events[-1][1]
    o = d.id
    first = d.lines[0]["name"]
    if status == _S.REFUNDED or status == _S.RETURNED:
        options = [("email", "email", f"Asked how to return the {first} from order {o}", "returns"),
                   ("chat", "chat", f"Asked when the refund for order {o} will arrive", "returns"),
                   ("call", "phone", f"Wanted a return label for order {o}", "returns")]
    elif status == _S.CANCELLED:
        options = [("call", "phone", f"Asked to cancel order {o}", "support"),
                   ("chat", "chat", f"Wanted to know whether order {o} was really cancelled", "support")]
    elif d.late_days and status == _S.DELIVERED:
        options = [("email", "email", f"Complained that order {o} arrived late; offered a 10% voucher", "support"),
                   ("call", "phone", f"Called because order {o} had not arrived by the promised date", "support")]
    elif status in (_S.PLACED, _S.CONFIRMED, _S.PICKING):
        options = [("call", "phone", f"Called to check when order {o} will arrive", "support"),
                   ("chat", "chat", f"Wanted to change the delivery address for order {o}", "support"),
                   ("whatsapp", "whatsapp", f"Asked for an update on order {o}", "support"),
                   ("web_callback", "callback", f"Requested a callback about order {o}", "support")]
    else:
        options = [("email", "email", f"Requested an invoice copy for order {o}", "support"),
                   ("chat", "chat", f"Asked for the tracking link of order {o}", "support"),
                   ("call", "phone", f"Asked whether the {first} from order {o} can be exchanged for another size",
                    "returns"),
                   ("sms", "sms", f"Replied to the delivery text for order {o}: please leave it at the door",
                    "support")]
    kind, channel, summary, queue = rng.choice(options)
    return kind, channel, summary, "german" if d.person.german and channel != "sms" else queue


def _timeline(
    rng: random.Random, person: _Person, orders: list[_Draft], catalogue: list[dict[str, Any]], cutoff: datetime
) -> list[dict[str, Any]]:
    """The customer's touches other than order events: calls, chats, emails, callbacks, page views, notes."""
    rows: list[dict[str, Any]] = []
    start = max(person.created_at, cutoff - timedelta(days=365))
    visitor = next((v for k, v, *_ in person.points if k == "web"), None)

    def add(kind: str, channel: str, when: datetime, summary: str, payload: dict[str, Any],
            agent: str | None = None, order_id: int | None = None) -> None:
        rows.append({
            "customer_id": person.id, "kind": InteractionKind(kind).value, "channel": channel,
            "occurred_at": min(max(when, person.created_at), cutoff - timedelta(seconds=1)),
            "agent_id": _AGENT_IDS[agent] if agent else None,
            "conversation_id": None, "order_id": order_id, "summary": summary[:500], "payload": payload,
        })

    def agent_payload(kind: str, queue: str) -> tuple[dict[str, Any], str]:
        agent = _agent_name(rng, person.german)
        wait = rng.randint(3, 240)
        if kind == "call":
            return {"direction": "inbound", "queue": queue, "wait_s": wait, "duration_s": rng.randint(60, 900)}, agent
        if kind in ("chat", "whatsapp", "sms"):
            return {"queue": queue, "wait_s": wait, "messages": rng.randint(2, 24)}, agent
        if kind == "web_callback":
            return {"queue": queue, "reason": "callback requested on the website",
                    "called_back_after_s": rng.randint(120, 5400)}, agent
        return {"queue": queue, "direction": "inbound", "replied_after_h": rng.randint(1, 30)}, agent

    # pre-sale questions and general chatter
    for _ in range(rng.choices((0, 1, 2, 3), (35, 35, 20, 10))[0]):
        product = rng.choice(catalogue)
        template = rng.choice(_PRODUCT_QUESTIONS.get(product["category"], ()) + _GENERIC_QUESTIONS)
        kind, channel = rng.choice((("call", "phone"), ("chat", "chat"), ("chat", "chat"), ("email", "email"),
                                    ("web_callback", "callback")))
        queue = "german" if person.german else "sales"
        payload, agent = agent_payload(kind, queue)
        payload["sku"] = product["sku"]
        day = _between(rng, start, cutoff).date()
        add(kind, channel, _at(rng, day, 8, 20), template.format(p=product["name"]), payload, agent)
    # contacts about their orders
    for d in orders:
        if not d.events or rng.random() > 0.3:
            continue
        found = _order_contact(rng, d, cutoff)
        if found is None:
            continue
        kind, channel, summary, queue = found
        payload, agent = agent_payload(kind, queue)
        payload["order_id"] = d.id
        window_end = min(cutoff, d.events[-1][2] + timedelta(days=4))
        when = _between(rng, d.placed_at + timedelta(minutes=20), window_end)
        add(kind, channel, when, summary, payload, agent, order_id=d.id)
    # browsing
    if visitor is not None or rng.random() < 0.3:
        for _ in range(rng.randint(1, 8 if visitor else 3)):
            product = rng.choice(catalogue)
            when = _between(rng, start, cutoff)
            if rng.random() < 0.8:
                add("page_view", "web", when, f"Viewed {product['name']}",
                    {"url": f"/products/{product['sku'].lower()}", "sku": product["sku"], "visitor_id": visitor,
                     "seconds_on_page": rng.randint(5, 300)})
            else:
                query = rng.choice((product["category"], product["name"].split()[0].lower(), "gift ideas", "sale"))
                add("page_view", "web", when, f"Searched the shop for '{query}'",
                    {"url": f"/search?q={query.replace(' ', '+')}", "visitor_id": visitor,
                     "results": rng.randint(0, 24)})
    # agents' notes
    if rng.random() < 0.12:
        note = rng.choice((
            "Prefers email over phone", "Asked not to be called before 10 am", "Regular buyer of limited editions",
            "Deliveries to the neighbour at no. 12 are fine", "Hard of hearing: speak slowly and clearly on calls",
            "Sometimes orders as gifts: never put prices in the parcel", "Uses the shop for their sports club",
        ))
        agent = _agent_name(rng, person.german)
        add("note", "backoffice", _at(rng, _between(rng, start, cutoff).date(), 8, 19), f"Note: {note}", {}, agent)
    if person.german and rng.random() < 0.3:
        payload, agent = agent_payload("chat", "german")
        add("chat", "chat", _at(rng, _between(rng, start, cutoff).date(), 8, 19),
            "Asked (in German) whether returns from Germany are free", payload, agent)
    return rows


def _event_interaction(d: _Draft, from_status: str | None, status: str, when: datetime, actor: str,
                       note: str) -> dict[str, Any]:
    """The timeline entry of one order event, worded as the live order use cases word it."""
    if status == _S.PLACED:
        summary = (f"Order {d.id} placed: {format_money(d.total, _CURRENCY)}, "
                   f"delivery by {d.promised.isoformat()}")
        payload: dict[str, Any] = {"order_id": d.id, "status": str(status), "actor": actor, "lines": len(d.lines)}
        channel = d.channel
    else:
        summary = f"Order {d.id} {status}" + (f": {note[:200]}" if note else "")
        payload = {"order_id": d.id, "from": None if from_status is None else str(from_status), "status": str(status),
                   "actor": actor}
        channel = "backoffice"
    return {
        "customer_id": d.person.id, "kind": InteractionKind.ORDER_EVENT.value, "channel": channel,
        "occurred_at": when, "agent_id": _AGENT_IDS.get(actor), "conversation_id": None, "order_id": d.id,
        "summary": summary[:500], "payload": payload,
    }


# --------------------------------------------------------------------------- writing


def _table(model: Any) -> Table:
    """The core table behind a model, for bulk statements."""
    return cast(Table, model.__table__)


async def _bulk(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows in chunks with one executemany per chunk."""
    for i in range(0, len(rows), _CHUNK):
        await conn.execute(insert(table), rows[i:i + _CHUNK])


async def _counts(conn: AsyncConnection) -> dict[str, int]:
    """How many rows each counted table holds."""
    out: dict[str, int] = {}
    for key, model in (("products", Product), ("customers", Customer), ("contact_points", ContactPoint),
                       ("orders", Order), ("interactions", Interaction), ("agents", Agent), ("queues", Queue)):
        out[key] = int((await conn.execute(select(func.count()).select_from(_table(model)))).scalar_one())
    return out


async def seed_demo(
    db: Database, *, seed: int = 42, customers: int = 1000, today: date | None = None
) -> DemoSummary:
    """Load the demo shop into an empty database (skipped, writing nothing, when any product exists)."""
    today = today or date.today()
    cutoff = datetime.combine(today, time(0), tzinfo=_UTC)
    async with db.transaction() as s:
        conn = await s.connection()
        if db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEED_LOCK})
        if (await conn.execute(select(_table(Product).c.id).limit(1))).first() is not None:
            return DemoSummary(**await _counts(conn), skipped=True)

        rng = random.Random(seed)
        product_rows, infos = _products(rng)
        people = _people(rng, max(0, customers), cutoff)
        drafts = _drafts(rng, people, infos, cutoff)
        for d in drafts:
            _life(rng, d, cutoff)

        sku_ids = {row["sku"]: row["id"] for row in product_rows}
        by_person: dict[int, list[_Draft]] = {}
        order_rows: list[dict[str, Any]] = []
        line_rows: list[dict[str, Any]] = []
        events: list[tuple[datetime, int, int, dict[str, Any]]] = []
        inter_rows: list[dict[str, Any]] = []
        for d in drafts:
            by_person.setdefault(d.person.id, []).append(d)
            order_rows.append({
                "id": d.id, "customer_id": d.person.id, "status": str(d.events[-1][1]), "channel": d.channel,
                "subtotal_minor": d.subtotal, "shipping_minor": d.shipping, "total_minor": d.total,
                "currency": _CURRENCY, "delivery_address": d.person.address, "contact_phone": d.phone,
                "contact_email": d.email, "notes": d.notes, "promised_date": d.promised, "idempotency_key": None,
                "created_at": d.placed_at, "updated_at": d.events[-1][2],
            })
            for line in d.lines:
                line_rows.append({"id": len(line_rows) + 1, "order_id": d.id, "product_id": sku_ids[line["sku"]],
                                  **line})
            for step, (from_status, status, when, actor, note) in enumerate(d.events):
                events.append((when, d.id, step, {
                    "order_id": d.id, "from_status": None if from_status is None else str(from_status),
                    "to_status": str(status), "actor": actor, "note": note[:500], "occurred_at": when,
                }))
                inter_rows.append(_event_interaction(d, from_status, status, when, actor, note))
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        event_rows = [{"id": i, **row} for i, (_w, _o, _s, row) in enumerate(events, start=1)]

        spend: dict[int, int] = {}
        for d in drafts:
            if d.events[-1][1] not in (_S.CANCELLED, _S.REFUNDED):
                spend[d.person.id] = spend.get(d.person.id, 0) + d.total
        customer_rows: list[dict[str, Any]] = []
        point_rows: list[dict[str, Any]] = []
        for person in people:
            inter_rows.extend(_timeline(rng, person, by_person.get(person.id, []), product_rows, cutoff))
            total = spend.get(person.id, 0)
            customer_rows.append({
                "id": person.id, "display_name": person.name,
                "tier": "gold" if total >= 75000 else "silver" if total >= 30000 else "standard",
                "merged_into_id": None, "created_at": person.created_at, "updated_at": person.created_at,
            })
            for kind, value, verified, when in person.points:
                point_rows.append({"id": len(point_rows) + 1, "customer_id": person.id, "kind": kind,
                                   "value": value, "verified": verified, "created_at": when})
        inter_rows.sort(key=lambda r: (r["occurred_at"], r["customer_id"], r["kind"], r["summary"]))
        last_touch: dict[int, datetime] = {}
        for i, row in enumerate(inter_rows, start=1):
            row["id"] = i
            last_touch[row["customer_id"]] = row["occurred_at"]  # sorted: the last one wins
        for row in customer_rows:
            row["updated_at"] = max(row["created_at"], last_touch.get(row["id"], row["created_at"]))

        password_hash = hash_password(DEMO_PASSWORD)  # once: Argon2 is slow on purpose
        staff_since = cutoff - timedelta(days=420)
        agent_rows = [
            {"id": i, "username": username, "display_name": display, "password_hash": password_hash, "role": role,
             "skills": dict(skills), "capacity": dict(capacity), "active": True,
             "created_at": staff_since + timedelta(days=7 * i)}
            for i, (username, display, role, skills, capacity) in enumerate(_AGENTS, start=1)
        ]
        queue_rows = [
            {"id": i, "name": name, "skills_required": list(skills), "channels": list(channels),
             "sl_target_seconds": target, "sl_target_ratio": ratio, "max_waiting": waiting,
             "overflow_queue_id": None, "overflow_after_seconds": None}
            for i, (name, skills, channels, target, ratio, waiting) in enumerate(_QUEUES, start=1)
        ]

        tables: list[tuple[Table, list[dict[str, Any]]]] = [
            (_table(Product), product_rows), (_table(Agent), agent_rows), (_table(Queue), queue_rows),
            (_table(Customer), customer_rows), (_table(ContactPoint), point_rows), (_table(Order), order_rows),
            (_table(OrderLine), line_rows), (_table(OrderEvent), event_rows), (_table(Interaction), inter_rows),
        ]
        for table, rows in tables:
            await _bulk(conn, table, rows)
        # Unanswered sales contacts spill over to support after two minutes.
        queues = _table(Queue)
        await conn.execute(
            update(queues).where(queues.c.name == "sales").values(overflow_queue_id=2, overflow_after_seconds=120)
        )
        if db.dialect == "postgresql":
            for table, _rows in tables:
                name = table.name
                await conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {name}), (SELECT MAX(id) IS NOT NULL FROM {name}))"
                ))
    return DemoSummary(
        products=len(product_rows), customers=len(customer_rows), contact_points=len(point_rows),
        orders=len(order_rows), interactions=len(inter_rows), agents=len(agent_rows), queues=len(queue_rows),
        skipped=False,
    )


def main_summary_line(summary: DemoSummary) -> str:
    """One line for the CLI and the log: what the demo shop holds, and how to log in."""
    counts = (f"{summary.products} products, {summary.customers} customers ({summary.contact_points} contact points), "
              f"{summary.orders} orders, {summary.interactions} interactions, {summary.agents} agents, "
              f"{summary.queues} queues")
    if summary.skipped:
        return f"demo data skipped: the database already has products ({counts})"
    return f"demo shop loaded: {counts}; log in as admin, sam, alice, bob, chen or dana with password {DEMO_PASSWORD!r}"
