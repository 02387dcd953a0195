"""ELECTRE II (Roy and Bertier): rank alternatives on several criteria into a partial pre-order.

Pure and vectorised with numpy: no I/O. The orders queue and the ``electre2`` command and API all use it.

The method, in the form with two concordance and two discordance thresholds (Vincke, *Multicriteria
Decision-Aid*, 1992, ch. 5; Roy and Bertier, 1973):

* **Concordance** ``C(a, b)``: the share of the total weight on the criteria where ``a`` is at least as
  good as ``b``.
* **Discordance** ``D(a, b)``: the largest amount by which ``b`` beats ``a`` on any one criterion,
  divided by that criterion's scale range (``max - min``), so 0 <= D <= 1.
* **Strong outranking** ``a S b``: ``C(a, b) >= c_high`` and ``D(a, b) <= d_low`` and
  ``C(a, b) >= C(b, a)``. **Weak outranking** ``a W b``: ``C(a, b) >= c_low`` and ``D(a, b) <= d_high``
  and ``C(a, b) >= C(b, a)``. With ``c_low < c_high`` and ``d_low < d_high`` every strong pair is also a
  weak pair. ``C(a, b) >= C(b, a)`` is Roy and Bertier's ``W+(a, b) >= W-(a, b)``: the criteria where
  ``a`` is strictly better weigh at least as much as those where it is strictly worse.
* **Descending distillation**: among the alternatives not yet ranked, take those that no remaining
  alternative strongly outranks; of these, keep those that none of them weakly outranks. That set is
  the next class, from the top. **Ascending distillation**: the same on the reversed relations
  (those that strongly outrank no remaining alternative, then weakly), building classes from the
  bottom. Alternatives on a circuit of a relation are taken together (Roy and Bertier reduce circuits
  to one vertex), so a class is never empty.
* **Final ranking**: the intersection of the two complete pre-orders. ``a`` is preferred to ``b`` when
  it is at least as high in both and higher in one; they are tied (indifferent) when they share a class
  in both; otherwise (higher in one, lower in the other) they are **incomparable**. Nothing is broken
  silently: ties and incomparabilities are kept and explained.

Scale: ``C`` and ``D`` are ``n x n`` float matrices and the relations ``n x n`` booleans, so memory and
time grow with ``n ** 2`` (2,000 alternatives: about 100 MB of working arrays, well under a second on
this machine). Past that the caller ranks in batches (for orders, by promised date); the function
accepts any ``n``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

BoolMatrix = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

DIRECTIONS = ("max", "min")
# Comparisons of sums of weights are made with this slack (relative to the total weight of 1), so that
# 0.1 + 0.2 and 0.3 count as equal; it is far below any meaningful difference of concordance.
_EPS = 1e-9
_INPUT_KEYS = frozenset({"alternatives", "weights", "directions", "scales", "concordance", "discordance", "criteria"})
_MAX_NAME = 200


class ElectreInputError(ValueError):
    """A decision problem that cannot be ranked, with the reason and the field at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- the problem --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Electre2Problem:
    """A validated decision matrix: ``n`` named alternatives by ``m`` criteria, with the method's settings."""

    names: tuple[str, ...]
    criteria: tuple[str, ...]
    performance: FloatArray  # n x m, as given (not oriented)
    weights: FloatArray  # m, normalised to sum 1
    directions: tuple[str, ...]
    scales: FloatArray  # m x 2: (min, max)
    c_low: float
    c_high: float
    d_low: float
    d_high: float

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        performance: Sequence[Sequence[float]] | FloatArray,
        weights: Sequence[float],
        directions: Sequence[str],
        scales: Sequence[Sequence[float]],
        concordance: Sequence[float],
        discordance: Sequence[float],
        criteria: Sequence[str] | None = None,
    ) -> Electre2Problem:
        """Validate everything and build the problem, or raise :class:`ElectreInputError` naming the fault."""
        names_t = tuple(names)
        if len(names_t) < 1:
            raise ElectreInputError("give at least one alternative", "alternatives")
        for name in names_t:
            if not isinstance(name, str) or not name.strip():
                raise ElectreInputError("every alternative needs a non-empty name", "alternatives")
            if len(name) > _MAX_NAME:
                raise ElectreInputError(f"alternative name longer than {_MAX_NAME} characters: {name[:40]!r}...", "alternatives")
        if len(set(names_t)) != len(names_t):
            dup = sorted({n for n in names_t if names_t.count(n) > 1})
            raise ElectreInputError(f"alternative names must be unique; repeated: {', '.join(dup[:5])}", "alternatives")

        rows = list(performance)
        if len(rows) != len(names_t):
            raise ElectreInputError(f"{len(names_t)} names but {len(rows)} rows of values", "alternatives")
        m = len(weights)
        if m < 1:
            raise ElectreInputError("give at least one criterion (one weight)", "weights")
        for name, row in zip(names_t, rows):
            values = list(row)
            if len(values) != m:
                raise ElectreInputError(
                    f"alternative {name!r} has {len(values)} values but there are {m} criteria (weights); every row needs one value per criterion",
                    "alternatives",
                )
            for k, v in enumerate(values):
                if not _is_number(v):
                    raise ElectreInputError(f"alternative {name!r}, criterion {k + 1}: {v!r} is not a finite number", "alternatives")
        perf = np.asarray(rows, dtype=np.float64).reshape(len(names_t), m)

        for k, w in enumerate(weights):
            if not _is_number(w) or float(w) <= 0:
                raise ElectreInputError(f"weight {k + 1} must be a positive number, got {w!r}", "weights")
        w_arr = np.asarray(weights, dtype=np.float64)
        w_arr = w_arr / w_arr.sum()

        dirs = tuple(directions)
        if len(dirs) != m:
            raise ElectreInputError(f"{len(dirs)} directions for {m} criteria", "directions")
        for k, d in enumerate(dirs):
            if d not in DIRECTIONS:
                raise ElectreInputError(f"direction {k + 1} must be 'max' or 'min', got {d!r}", "directions")

        scale_rows = list(scales)
        if len(scale_rows) != m:
            raise ElectreInputError(f"{len(scale_rows)} scales for {m} criteria", "scales")
        for k, pair in enumerate(scale_rows):
            p = list(pair) if isinstance(pair, (list, tuple)) else None
            if p is None or len(p) != 2 or not all(_is_number(x) for x in p):
                raise ElectreInputError(f"scale {k + 1} must be [min, max] as two numbers, got {pair!r}", "scales")
            if float(p[1]) <= float(p[0]):
                what = "has a zero range" if float(p[1]) == float(p[0]) else "has min above max"
                raise ElectreInputError(f"scale {k + 1} {what}: {p!r}; discordance is divided by max - min", "scales")
        sc = np.asarray([[float(a), float(b)] for a, b in scale_rows], dtype=np.float64).reshape(m, 2)

        crit_t = tuple(criteria) if criteria is not None else tuple(f"criterion {k + 1}" for k in range(m))
        if len(crit_t) != m:
            raise ElectreInputError(f"{len(crit_t)} criterion names for {m} criteria", "criteria")
        if any(not isinstance(c, str) or not c.strip() or len(c) > _MAX_NAME for c in crit_t) or len(set(crit_t)) != m:
            raise ElectreInputError("criterion names must be unique non-empty texts", "criteria")

        # Every value must lie on its criterion's scale: outside it, D would leave [0, 1].
        below = perf < sc[:, 0]
        above = perf > sc[:, 1]
        if below.any() or above.any():
            i, k = (int(x) for x in np.argwhere(below | above)[0])
            raise ElectreInputError(
                f"alternative {names_t[i]!r}, {crit_t[k]}: {perf[i, k]:g} is outside its scale [{sc[k, 0]:g}, {sc[k, 1]:g}]",
                "scales",
            )

        c_low, c_high = _threshold_pair(concordance, "concordance")
        d_low, d_high = _threshold_pair(discordance, "discordance")
        return cls(names_t, crit_t, perf, w_arr, dirs, sc, c_low, c_high, d_low, d_high)

    @classmethod
    def from_json(cls, data: Any, max_alternatives: int | None = None) -> Electre2Problem:
        """The problem from the JSON shape of the command and the API (see docs/subsystems/order-evaluation.md).

        ``max_alternatives`` lets a server refuse a matrix too big to hold (the cost grows with n squared).
        """
        if not isinstance(data, Mapping):
            raise ElectreInputError("the input must be a JSON object")
        unknown = sorted(set(data) - _INPUT_KEYS)
        if unknown:
            raise ElectreInputError(
                f"unknown field(s): {', '.join(map(str, unknown))}; expected {', '.join(sorted(_INPUT_KEYS))}", str(unknown[0])
            )
        for key in ("alternatives", "weights", "directions", "scales", "concordance", "discordance"):
            if key not in data:
                raise ElectreInputError(f"{key} is required", key)
        alts = data["alternatives"]
        if not isinstance(alts, Mapping):
            raise ElectreInputError('alternatives must be an object {"name": [values...]}', "alternatives")
        if max_alternatives is not None and len(alts) > max_alternatives:
            raise ElectreInputError(
                f"at most {max_alternatives} alternatives in one request ({len(alts)} given): rank in batches, "
                "for orders by promised date (docs/subsystems/order-evaluation.md)",
                "alternatives",
            )
        rows: list[list[float]] = []
        for name, row in alts.items():
            if not isinstance(row, list):
                raise ElectreInputError(f"alternative {name!r}: values must be a list of numbers", "alternatives")
            rows.append(row)
        for key in ("weights", "directions", "scales", "concordance", "discordance"):
            if not isinstance(data[key], list):
                raise ElectreInputError(f"{key} must be a list", key)
        criteria = data.get("criteria")
        if criteria is not None and not isinstance(criteria, list):
            raise ElectreInputError("criteria must be a list of names", "criteria")
        return cls.build(
            list(alts.keys()), rows, data["weights"], data["directions"], data["scales"],
            data["concordance"], data["discordance"], criteria,
        )

    @property
    def oriented(self) -> FloatArray:
        """The performance with every criterion turned into 'more is better' (``min`` criteria negated)."""
        sign = np.where(np.asarray(self.directions) == "min", -1.0, 1.0)
        return self.performance * sign

    @property
    def ranges(self) -> FloatArray:
        """Each criterion's scale range, the divisor of discordance."""
        return self.scales[:, 1] - self.scales[:, 0]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v))


def _threshold_pair(pair: Any, field: str) -> tuple[float, float]:
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(_is_number(x) for x in pair):
        raise ElectreInputError(f"{field} must be [low, high], two numbers", field)
    low, high = float(pair[0]), float(pair[1])
    if not (0.0 <= low <= 1.0 and 0.0 <= high <= 1.0):
        raise ElectreInputError(f"{field} thresholds must lie in [0, 1], got [{low:g}, {high:g}]", field)
    if not low < high:
        raise ElectreInputError(f"{field} thresholds are out of order: need low < high, got [{low:g}, {high:g}]", field)
    return low, high


# --- the matrices ---------------------------------------------------------------------------------


def concordance_matrix(problem: Electre2Problem) -> FloatArray:
    """``C[a, b]``: share of the weight on the criteria where ``a`` is at least as good as ``b`` (diagonal 1)."""
    g = problem.oriented
    n = g.shape[0]
    c = np.zeros((n, n), dtype=np.float64)
    for k in range(g.shape[1]):  # m is small; each step is one n x n vector operation
        col = g[:, k]
        c += problem.weights[k] * (col[:, None] >= col[None, :])
    return c


def discordance_matrix(problem: Electre2Problem) -> FloatArray:
    """``D[a, b]``: the largest advantage of ``b`` over ``a`` on one criterion, over that criterion's scale range."""
    g = problem.oriented / problem.ranges  # each criterion in units of its scale range
    n = g.shape[0]
    d = np.zeros((n, n), dtype=np.float64)
    step = np.empty((n, n), dtype=np.float64)  # one reused buffer: the n x n temporaries dominate the cost
    for k in range(g.shape[1]):
        col = g[:, k]
        np.subtract(col[None, :], col[:, None], out=step)
        np.maximum(d, step, out=d)
    return d


def outranking(c: FloatArray, d: FloatArray, c_min: float, d_max: float) -> BoolMatrix:
    """``a`` outranks ``b``: ``C >= c_min``, ``D <= d_max`` and ``C(a, b) >= C(b, a)``; never itself."""
    rel: BoolMatrix = (c >= c_min - _EPS) & (d <= d_max + _EPS) & (c >= c.T - _EPS)
    np.fill_diagonal(rel, False)
    return rel


# --- graphs: strongly connected components --------------------------------------------------------


def scc_labels(adj: BoolMatrix) -> IntArray:
    """A component id for each vertex of a directed graph (``adj[a, b]``: an arc a -> b).

    Vertices with no way in or no way out cannot be on a circuit: they are peeled off first, with
    vectorised in/out-degree counts; Tarjan's algorithm then runs on what is left (usually little).
    """
    n = adj.shape[0]
    labels = np.full(n, -1, dtype=np.intp)
    if n == 0:
        return labels
    a = adj.astype(np.int32)
    indeg = a.sum(axis=0)
    outdeg = a.sum(axis=1)
    alive = np.ones(n, dtype=np.bool_)
    next_label = 0
    while True:
        peel = np.flatnonzero(alive & ((indeg == 0) | (outdeg == 0)))
        if peel.size == 0:
            break
        alive[peel] = False
        labels[peel] = np.arange(next_label, next_label + peel.size)
        next_label += peel.size
        indeg -= a[peel].sum(axis=0)
        outdeg -= a[:, peel].sum(axis=1)
    core = np.flatnonzero(alive)
    if core.size:
        sub = adj[np.ix_(core, core)]
        succ = [np.flatnonzero(row).tolist() for row in sub]
        comp = _tarjan(succ)
        labels[core] = np.asarray(comp, dtype=np.intp) + next_label
    return labels


def _tarjan(succ: list[list[int]]) -> list[int]:
    """Tarjan's strongly connected components, iterative; returns a component number per vertex."""
    n = len(succ)
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    comp = [-1] * n
    stack: list[int] = []
    counter = 0
    ncomp = 0
    for root in range(n):
        if index[root] != -1:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            v, pos = work[-1]
            nbrs = succ[v]
            descended = False
            while pos < len(nbrs):
                w = nbrs[pos]
                pos += 1
                if index[w] == -1:
                    work[-1] = (v, pos)
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                    descended = True
                    break
                if on_stack[w] and index[w] < low[v]:
                    low[v] = index[w]
            if descended:
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = ncomp
                    if w == v:
                        break
                ncomp += 1
    return comp


def _source_components(adj: BoolMatrix) -> tuple[npt.NDArray[np.bool_], list[list[int]]]:
    """Which vertices lie in a component no arc enters from outside it; and the circuits (components of 2+)."""
    n = adj.shape[0]
    if n == 0 or not adj.any():
        return np.ones(n, dtype=np.bool_), []
    labels = scc_labels(adj)
    external = adj & (labels[:, None] != labels[None, :])
    entered = np.zeros(int(labels.max()) + 1, dtype=np.bool_)
    entered[labels[external.any(axis=0)]] = True
    counts = np.bincount(labels)
    circuits = [np.flatnonzero(labels == lab).tolist() for lab in np.flatnonzero(counts > 1)]
    return ~entered[labels], circuits


# --- distillation ---------------------------------------------------------------------------------


def distil(
    strong: BoolMatrix, weak: BoolMatrix, s_labels: IntArray | None = None
) -> tuple[list[IntArray], list[list[int]]]:
    """Roy and Bertier's direct ranking: classes from the top, as arrays of vertex indices.

    Pass the transposed relations for the inverse ranking (classes from the bottom). ``s_labels``: the
    strong relation's components if already known (they are the same for its transpose). Also returns
    the circuits of the weak relation met on the way (index lists), which put alternatives in one class.
    """
    n = strong.shape[0]
    if s_labels is None:
        s_labels = scc_labels(strong)
    # Arcs between different strong components: a circuit of the strong relation counts as one vertex.
    s_ext = strong & (s_labels[:, None] != s_labels[None, :])
    indeg = s_ext.sum(axis=0).astype(np.int64)
    alive = np.ones(n, dtype=np.bool_)
    n_labels = int(s_labels.max()) + 1 if n else 0
    classes: list[IntArray] = []
    weak_circuits: list[list[int]] = []
    while alive.any():
        entered = np.zeros(n_labels, dtype=np.bool_)
        entered[s_labels[alive & (indeg > 0)]] = True
        candidates = np.flatnonzero(alive & ~entered[s_labels])  # not strongly outranked from outside
        keep, circuits = _source_components(weak[np.ix_(candidates, candidates)])
        chosen = candidates[keep]
        weak_circuits.extend(candidates[c].tolist() for c in circuits if keep[c[0]])
        classes.append(chosen)
        alive[chosen] = False
        indeg -= s_ext[chosen].sum(axis=0)
    return classes, weak_circuits


# --- the result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Electre2Result:
    """Everything ELECTRE II found: matrices, relations, both distillations and the final partial pre-order."""

    problem: Electre2Problem
    concordance: FloatArray
    discordance: FloatArray
    strong: BoolMatrix
    weak: BoolMatrix
    descending: tuple[tuple[int, ...], ...]  # classes from the top, indices into problem.names
    ascending: tuple[tuple[int, ...], ...]  # classes from the top (the inverse ranking, turned over)
    descending_rank: IntArray  # 1 = top class
    ascending_rank: IntArray
    level: IntArray  # 1 = top level of the final ranking
    circuits: tuple[tuple[str, tuple[int, ...]], ...]  # ("strong" / "weak", members)

    @property
    def names(self) -> tuple[str, ...]:
        return self.problem.names

    def index(self, name: str) -> int:
        return self.problem.names.index(name)

    def relation(self, a: int, b: int) -> str:
        """How ``a`` stands to ``b`` in the final ranking: 'preferred', 'indifferent', 'incomparable' or 'worse'."""
        da, db = int(self.descending_rank[a]), int(self.descending_rank[b])
        aa, ab = int(self.ascending_rank[a]), int(self.ascending_rank[b])
        if da == db and aa == ab:
            return "indifferent"
        if da <= db and aa <= ab:
            return "preferred"
        if da >= db and aa >= ab:
            return "worse"
        return "incomparable"

    def preferred(self) -> BoolMatrix:
        """``P[a, b]``: ``a`` is strictly preferred to ``b`` in the final partial pre-order."""
        d, a = self.descending_rank, self.ascending_rank
        le = (d[:, None] <= d[None, :]) & (a[:, None] <= a[None, :])
        same = (d[:, None] == d[None, :]) & (a[:, None] == a[None, :])
        out: BoolMatrix = le & ~same
        return out

    def incomparable(self) -> BoolMatrix:
        """``R[a, b]``: higher in one distillation, lower in the other."""
        d, a = self.descending_rank, self.ascending_rank
        out: BoolMatrix = ((d[:, None] < d[None, :]) & (a[:, None] > a[None, :])) | (
            (d[:, None] > d[None, :]) & (a[:, None] < a[None, :])
        )
        return out

    def ranking(self) -> list[list[str]]:
        """The final ranking as levels, best first (members sorted by name; see :func:`_levels`)."""
        return [sorted(self.names[i] for i in np.flatnonzero(self.level == lv)) for lv in range(1, int(self.level.max()) + 1)]

    def classes(self, which: str) -> list[list[str]]:
        """The descending or ascending distillation as classes of names, best first."""
        source = self.descending if which == "descending" else self.ascending
        return [sorted(self.names[i] for i in cls) for cls in source]

    def pairs(self, rel: BoolMatrix) -> list[list[str]]:
        """The pairs ``[a, b]`` of a relation, sorted by name."""
        names = self.names
        ij = np.argwhere(rel)
        if ij.size == 0:
            return []
        pos = np.empty(len(names), dtype=np.intp)  # each name's place in alphabetical order
        pos[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        ij = ij[np.lexsort((pos[ij[:, 1]], pos[ij[:, 0]]))]
        return [[names[i], names[j]] for i, j in ij.tolist()]

    # --- explanations ---

    def why_pair(self, a: int, b: int) -> str:
        """One line: how ``a`` stands to ``b`` in each direction of the outranking relations, with the figures."""
        n = self.names
        if self.strong[a, b] and self.strong[b, a]:
            return f"{n[a]} and {n[b]} strongly outrank each other (C={self.concordance[a, b]:.3f} both ways)"
        return f"{self._direction(a, b)}; {self._direction(b, a)}"

    def _direction(self, a: int, b: int) -> str:
        p, n = self.problem, self.names
        c, c_back, d = float(self.concordance[a, b]), float(self.concordance[b, a]), float(self.discordance[a, b])
        if self.strong[a, b]:
            return f"{n[a]} strongly outranks {n[b]} (C={c:.3f} ≥ {p.c_high:g}, D={d:.3f} ≤ {p.d_low:g})"
        if self.weak[a, b]:
            reasons = []
            if c < p.c_high - _EPS:
                reasons.append(f"C={c:.3f} < {p.c_high:g}")
            if d > p.d_low + _EPS:
                reasons.append(f"D={d:.3f} > {p.d_low:g}{self._worst_criterion(a, b)}")
            return f"{n[a]} weakly outranks {n[b]} (not strongly: {', '.join(reasons)})"
        reasons = []
        if c < p.c_low - _EPS:
            reasons.append(f"C={c:.3f} < {p.c_low:g}")
        if d > p.d_high + _EPS:
            reasons.append(f"D={d:.3f} > {p.d_high:g}{self._worst_criterion(a, b)}")
        if c < c_back - _EPS:
            reasons.append(f"C={c:.3f} < C({n[b]},{n[a]})={c_back:.3f}")
        return f"{n[a]} does not outrank {n[b]} ({', '.join(reasons)})"

    def _worst_criterion(self, a: int, b: int) -> str:
        """' on <criterion>': where ``b`` beats ``a`` by the most, relative to the scale (the discordance)."""
        p = self.problem
        sign = np.where(np.asarray(p.directions) == "min", -1.0, 1.0)
        k = int(np.argmax((p.performance[b] - p.performance[a]) * sign / p.ranges))
        return f" on {self.problem.criteria[k]}"

    def explain(self, max_pairs: int = 200) -> dict[str, Any]:
        """Which alternatives stand together and why; which are incomparable and why; any circuits.

        At most ``max_pairs`` pair statements are written out for ties and as many for incomparable
        pairs; the counts are always complete.
        """
        names = self.names
        p = self.problem
        groups: dict[tuple[int, int], list[int]] = {}
        for i in range(len(names)):
            groups.setdefault((int(self.descending_rank[i]), int(self.ascending_rank[i])), []).append(i)
        group_list = sorted(groups.items(), key=lambda kv: (int(self.level[kv[1][0]]), kv[0]))
        budget = max_pairs
        out_groups: list[dict[str, Any]] = []
        tie_pairs = 0
        for (dr, ar), members in group_list:
            members = sorted(members, key=lambda i: names[i])
            entry: dict[str, Any] = {
                "level": int(self.level[members[0]]),
                "names": [names[i] for i in members],
                "descending": dr,
                "ascending": ar,
            }
            if len(members) > 1:
                k = len(members)
                tie_pairs += k * (k - 1) // 2
                entry["why"] = (
                    f"tied: together in class {dr} of the descending distillation and class {ar} of the ascending one, "
                    "so neither distillation separates them"
                )
                details = []
                for x in range(k):
                    for y in range(x + 1, k):
                        if budget <= 0:
                            break
                        details.append(self.why_pair(members[x], members[y]))
                        budget -= 1
                entry["pairs"] = details
            out_groups.append(entry)

        inc = np.argwhere(np.triu(self.incomparable()))
        incomparable: list[dict[str, Any]] = []
        for i, j in inc[: max(0, max_pairs)]:
            a, b = int(i), int(j)
            if self.descending_rank[a] > self.descending_rank[b]:
                a, b = b, a
            incomparable.append({
                "pair": [names[a], names[b]],
                "why": (
                    f"{names[a]} is above {names[b]} in the descending distillation (class {int(self.descending_rank[a])} "
                    f"vs {int(self.descending_rank[b])}) but below it in the ascending one (class "
                    f"{int(self.ascending_rank[a])} vs {int(self.ascending_rank[b])}); {self.why_pair(a, b)}"
                ),
            })
        levels = int(self.level.max())
        n_groups = sum(1 for _, m in group_list if len(m) > 1)
        summary = (
            f"{len(names)} alternative(s) in {levels} level(s); {n_groups} group(s) of tied alternatives; "
            f"{len(inc)} incomparable pair(s)"
        )
        if self.circuits:
            summary += f"; {len(self.circuits)} circuit(s) of outranking taken as one"
        return {
            "method": "ELECTRE II (Roy and Bertier), two concordance and two discordance thresholds",
            "summary": summary,
            "thresholds": {"concordance": [p.c_low, p.c_high], "discordance": [p.d_low, p.d_high]},
            "levels": (
                "a level holds the alternatives whose longest chain of strict preferences from the top has the same "
                "length; within a level none is preferred to another (tied, or incomparable)"
            ),
            "groups": out_groups,
            "tied_pairs": tie_pairs,
            "incomparable": incomparable,
            "incomparable_pairs": int(len(inc)),
            "circuits": [
                {"relation": rel, "names": sorted(names[i] for i in members),
                 "why": f"they outrank one another round a circuit of the {rel} relation, so they are ranked as one"}
                for rel, members in self.circuits
            ],
        }

    def to_json(self, *, max_pairs: int = 200, matrices: bool = False) -> dict[str, Any]:
        """The answer of the command and the API."""
        out: dict[str, Any] = {
            "strong": self.pairs(self.strong),
            "weak": self.pairs(self.weak),
            "descending": self.classes("descending"),
            "ascending": self.classes("ascending"),
            "ranking": self.ranking(),
            "explanation": self.explain(max_pairs),
        }
        if matrices:
            out["matrices"] = {
                "order": list(self.names),
                "concordance": np.round(self.concordance, 6).tolist(),
                "discordance": np.round(self.discordance, 6).tolist(),
            }
        return out


def _levels(d_rank: IntArray, a_rank: IntArray) -> IntArray:
    """Layer the final partial pre-order: 1 + the longest chain of strict preferences above each alternative."""
    keys = np.stack([d_rank, a_rank], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(uniq[:, 0] + uniq[:, 1], kind="stable")  # a strict predecessor has a smaller sum
    lv = np.zeros(len(uniq), dtype=np.intp)
    for g in order:
        preds = (uniq[:, 0] <= uniq[g, 0]) & (uniq[:, 1] <= uniq[g, 1])
        preds[g] = False
        lv[g] = 1 + (int(lv[preds].max()) if preds.any() else 0)
    out: IntArray = lv[inverse]
    return out


def _ranks(classes: Iterable[Iterable[int]], n: int) -> IntArray:
    rank = np.zeros(n, dtype=np.intp)
    for pos, members in enumerate(classes, start=1):
        rank[np.fromiter(members, dtype=np.intp)] = pos
    return rank


def electre2(problem: Electre2Problem) -> Electre2Result:
    """Rank a validated problem with ELECTRE II."""
    n = len(problem.names)
    c = concordance_matrix(problem)
    d = discordance_matrix(problem)
    strong = outranking(c, d, problem.c_high, problem.d_low)
    weak = outranking(c, d, problem.c_low, problem.d_high)
    s_labels = scc_labels(strong)
    down, down_circuits = distil(strong, weak, s_labels)
    up, up_circuits = distil(strong.T, weak.T, s_labels)
    up.reverse()  # the inverse ranking builds from the bottom
    descending = tuple(tuple(int(i) for i in cls) for cls in down)
    ascending = tuple(tuple(int(i) for i in cls) for cls in up)
    d_rank = _ranks(descending, n)
    a_rank = _ranks(ascending, n)

    circuits: list[tuple[str, tuple[int, ...]]] = []
    counts = np.bincount(s_labels)
    for lab in np.flatnonzero(counts > 1):
        circuits.append(("strong", tuple(int(i) for i in np.flatnonzero(s_labels == lab))))
    seen = {frozenset(m) for _, m in circuits}
    for members in down_circuits + up_circuits:
        key = frozenset(members)
        if key not in seen:
            seen.add(key)
            circuits.append(("weak", tuple(sorted(members))))
    return Electre2Result(
        problem=problem, concordance=c, discordance=d, strong=strong, weak=weak,
        descending=descending, ascending=ascending, descending_rank=d_rank, ascending_rank=a_rank,
        level=_levels(d_rank, a_rank), circuits=tuple(circuits),
    )


def rank(
    alternatives: Mapping[str, Sequence[float]],
    weights: Sequence[float],
    directions: Sequence[str],
    scales: Sequence[Sequence[float]],
    concordance: Sequence[float],
    discordance: Sequence[float],
    criteria: Sequence[str] | None = None,
) -> Electre2Result:
    """Validate and rank in one call (the same shape as the JSON input)."""
    problem = Electre2Problem.build(
        list(alternatives.keys()), list(alternatives.values()), weights, directions, scales, concordance, discordance, criteria
    )
    return electre2(problem)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ElectreInputError(f"{key!r} appears twice in one JSON object; names must be unique", "alternatives")
        seen[key] = value
    return seen


def parse_json(text: str) -> Any:
    """Read the JSON input text, refusing a name given twice (a plain JSON reader keeps only the last)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ElectreInputError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def rank_json(
    data: Any, *, max_pairs: int = 200, matrices: bool = False, max_alternatives: int | None = None
) -> dict[str, Any]:
    """The command's and the API's whole job: JSON input in, JSON answer out (raises ElectreInputError)."""
    problem = Electre2Problem.from_json(data, max_alternatives=max_alternatives)
    return electre2(problem).to_json(max_pairs=max_pairs, matrices=matrices)
