"""Product-to-product associations (Apriori on numpy) and product-to-customer propensity. Pure, no I/O.

**Why Apriori written here, not a library.** The shop's baskets are small (one to a few lines) and the
catalogue is tens to a few thousand products, so the work is counting pairs, which is one matrix product
of the basket matrix with itself (``Xᵀ X``), done in chunks of orders so that a million orders never
need more than a chunk's dense matrix. Triples are counted only for candidates whose three pairs are all
frequent (the Apriori property), one column product each. mlxtend would bring pandas for the same
arithmetic; FP-growth earns its complexity on long baskets, which a shop's are not.

- ``support(X)`` = share of baskets containing every item of X;
  ``confidence(A → B)`` = support(A ∪ B) / support(A); ``lift(A → B)`` = confidence / support(B).
- Rules are kept when support ≥ ``min_support``, confidence ≥ ``min_confidence`` and lift ≥ ``min_lift``.
- **Propensity** of a customer for a product: the largest confidence of a rule ``a → p`` over the products
  ``a`` they bought (item-based co-occurrence), with that rule as the reason; never a product they bought
  in their latest order or within the recent window, never one out of stock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DEFAULT_MIN_SUPPORT = 0.002
DEFAULT_MIN_CONFIDENCE = 0.05
DEFAULT_MIN_LIFT = 1.2


@dataclass(frozen=True)
class Rule:
    """``antecedent → consequent`` with its measures (product ids)."""

    antecedent: tuple[int, ...]
    consequent: int
    count: int  # baskets with antecedent and consequent together
    support: float
    confidence: float
    lift: float


@dataclass(frozen=True)
class Itemsets:
    """Frequent itemsets found, with their basket counts, and the number of baskets."""

    baskets: int
    products: IntArray  # column -> product id
    item_counts: IntArray  # per column
    counts: dict[tuple[int, ...], int]  # product-id itemsets (sorted) of size >= 1 -> count


def basket_matrix(order_index: IntArray, column: IntArray, n_orders: int, n_items: int) -> npt.NDArray[np.float32]:
    """A dense 0/1 matrix (orders × items) from line pairs (duplicates count once)."""
    x = np.zeros((n_orders, n_items), dtype=np.float32)
    x[order_index, column] = 1.0
    return x


def frequent_itemsets(order_ids: Sequence[int] | IntArray, product_ids: Sequence[int] | IntArray, *,
                      min_support: float = DEFAULT_MIN_SUPPORT, max_len: int = 3) -> Itemsets:
    """Apriori up to ``max_len`` (1-3) items, from order lines given as two aligned arrays."""
    if not 0 < min_support <= 1:
        raise ValueError("min_support must be in (0, 1]")
    if max_len not in (1, 2, 3):
        raise ValueError("max_len must be 1, 2 or 3")
    o = np.asarray(order_ids, dtype=np.int64)
    p = np.asarray(product_ids, dtype=np.int64)
    if o.shape != p.shape or o.ndim != 1:
        raise ValueError("order_ids and product_ids must be 1-d arrays of one length")
    orders, o_idx = np.unique(o, return_inverse=True)
    products, p_idx = np.unique(p, return_inverse=True)
    n, k = orders.size, products.size
    counts: dict[tuple[int, ...], int] = {}
    if n == 0:
        return Itemsets(0, products.astype(np.int64), np.zeros(0, dtype=np.int64), counts)
    # one line pair per (order, product)
    pair_key = np.unique(o_idx.astype(np.int64) * k + p_idx)
    o_idx, p_idx = pair_key // k, pair_key % k
    item_counts = np.bincount(p_idx, minlength=k).astype(np.int64)
    min_count = max(1, int(np.ceil(min_support * n - 1e-9)))
    frequent = np.flatnonzero(item_counts >= min_count)
    for c in frequent:
        counts[(int(products[c]),)] = int(item_counts[c])
    if max_len == 1 or frequent.size < 2:
        return Itemsets(n, products.astype(np.int64), item_counts, counts)

    # Pairs and triples, counted sparsely: lines sorted by (order, column); within a basket of s items the
    # pairs are (line i, line i + d) for d < s with the same order, so one vectorised pass per offset d.
    col = np.full(k, -1, dtype=np.int64)
    col[frequent] = np.arange(frequent.size)
    keep = col[p_idx] >= 0
    lo, lc = o_idx[keep], col[p_idx[keep]]  # still sorted by (order, column): pair_key was sorted
    f = frequent.size
    sizes = np.bincount(lo, minlength=n)
    max_size = int(sizes.max()) if sizes.size else 0
    pair_keys: list[npt.NDArray[np.int64]] = []
    for d in range(1, max_size):
        same = lo[d:] == lo[:-d]
        pair_keys.append(lc[:-d][same] * f + lc[d:][same])
    pc = np.bincount(np.concatenate(pair_keys), minlength=f * f).reshape(f, f) if pair_keys else np.zeros((f, f), np.int64)
    iu, ju = np.nonzero(np.triu(pc, k=1) >= min_count)
    frequent_pairs = {(int(i), int(j)) for i, j in zip(iu, ju)}
    for i, j in frequent_pairs:
        counts[tuple(sorted((int(products[frequent[i]]), int(products[frequent[j]]))))] = int(pc[i, j])
    if max_len == 2 or not frequent_pairs:
        return Itemsets(n, products.astype(np.int64), item_counts, counts)

    # Triples (i < j < l by column) whose three pairs are all frequent (the Apriori property).
    ok_pair = np.zeros((f, f), dtype=bool)
    ok_pair[iu, ju] = True
    triple_keys: list[npt.NDArray[np.int64]] = []
    for d1 in range(1, max_size - 1):
        for d2 in range(d1 + 1, max_size):
            same = lo[d2:] == lo[:-d2]
            a, b, c = lc[:-d2][same], lc[d1:len(lc) - d2 + d1][same], lc[d2:][same]
            good = ok_pair[a, b] & ok_pair[a, c] & ok_pair[b, c]
            triple_keys.append((a[good] * f + b[good]) * f + c[good])
    if triple_keys:
        keys, found = np.unique(np.concatenate(triple_keys), return_counts=True)
        for key3, cnt in zip(keys[found >= min_count].tolist(), found[found >= min_count].tolist()):
            i, rem = divmod(int(key3), f * f)
            j, l = divmod(rem, f)
            items3 = tuple(sorted(int(products[frequent[v]]) for v in (i, j, l)))
            counts[items3] = int(cnt)
    return Itemsets(n, products.astype(np.int64), item_counts, counts)


def rules(itemsets: Itemsets, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
          min_lift: float = DEFAULT_MIN_LIFT) -> list[Rule]:
    """Rules with one consequent from every frequent itemset of two or more items, best first.

    Sorted by lift, then confidence, then support (descending), then the ids (for a stable order).
    """
    n = itemsets.baskets
    out: list[Rule] = []
    if n == 0:
        return out
    for items, count in itemsets.counts.items():
        if len(items) < 2:
            continue
        for consequent in items:
            antecedent = tuple(i for i in items if i != consequent)
            a_count = itemsets.counts.get(antecedent)
            c_count = itemsets.counts.get((consequent,))
            if not a_count or not c_count:
                continue
            support = count / n
            confidence = count / a_count
            lift = confidence / (c_count / n)
            if confidence + 1e-12 >= min_confidence and lift + 1e-12 >= min_lift:
                out.append(Rule(antecedent, consequent, count, support, confidence, lift))
    out.sort(key=lambda r: (-r.lift, -r.confidence, -r.support, r.antecedent, r.consequent))
    return out


@dataclass(frozen=True)
class Suggestion:
    """A product a customer is likely to want, and the rule that says so."""

    product_id: int
    score: float  # the rule's confidence
    because: int  # the product they bought that leads to it
    confidence: float
    lift: float
    support: float


def propensity(bought: Iterable[int], pair_rules: Sequence[Rule], *, exclude: Iterable[int] = (),
               in_stock: Mapping[int, bool] | None = None, limit: int = 5) -> list[Suggestion]:
    """Products a customer who bought ``bought`` is likely to want, best first (item-based co-occurrence).

    Uses the one-antecedent rules; ``exclude`` (what they just bought) and anything ``in_stock`` says is
    not in stock are never suggested, nor anything they bought. Ties go to the higher lift, then the id.
    """
    owned = set(bought)
    banned = owned | set(exclude)
    best: dict[int, Suggestion] = {}
    for rule in pair_rules:
        if len(rule.antecedent) != 1 or rule.antecedent[0] not in owned:
            continue
        p = rule.consequent
        if p in banned or (in_stock is not None and not in_stock.get(p, False)):
            continue
        s = Suggestion(p, rule.confidence, rule.antecedent[0], rule.confidence, rule.lift, rule.support)
        held = best.get(p)
        if held is None or (s.score, s.lift, -s.because) > (held.score, held.lift, -held.because):
            best[p] = s
    ranked = sorted(best.values(), key=lambda s: (-s.score, -s.lift, s.product_id))
    return ranked[:max(0, limit)]


def describe(rule_confidence: float, rule_lift: float, bought_name: str, offer_name: str) -> str:
    """'bought X; 34 % of X buyers also buy Y, lift 2.1'."""
    return (f"bought {bought_name}; {rule_confidence * 100:.0f} % of {bought_name} buyers also buy {offer_name}, "
            f"lift {rule_lift:.1f}")
