"""Camera placement by Maximal Covering (MCLP) with the existing cameras pinned.

Existing cameras are never moved: the demand they already see counts as covered and is left out of the
objective, so the model picks ``p`` new sites that maximise the newly covered risk-weighted street length.

- :func:`greedy` adds, one at a time, the site with the largest marginal gain. Coverage is a monotone
  submodular function, so greedy reaches at least (1 - 1/e) of the optimum; it also yields an upper bound
  (the greedy value plus the best ``p`` marginal gains at any step, Nemhauser-Wolsey), reported as
  ``best_bound`` when no exact solve ran.
- :func:`solve_exact` solves the MCLP integer program with PuLP and HiGHS (highspy), CBC as fallback,
  warm-started from greedy. It reports the solver's real model status, best bound and MIP gap: a solve
  stopped by its time limit is reported as ``time_limit`` with its gap, never as "optimal".

Demand points with the same set of candidate sites are merged before the exact solve (same objective,
far fewer rows).
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import pulp
import scipy.sparse as sp
from pydantic import BaseModel


class PlacementError(ValueError):
    """The placement problem is ill-posed; the message says what to change."""


class PlacementResult(BaseModel):
    """New sites, coverage before/after and the marginal coverage curve, with the solver's real status."""

    method: Literal["greedy", "exact"]
    p: int
    chosen: list[int]
    pinned: list[str] = []
    total_demand: float
    covered_before: float
    covered_after: float
    marginal: list[float]  # newly covered demand added by each chosen site, in order
    status: str  # greedy | optimal | time_limit | feasible | infeasible | not_solved
    objective: float  # newly covered demand
    best_bound: float | None = None  # upper bound on newly coverable demand
    mip_gap: float | None = None  # (bound - objective) / bound
    solve_s: float = 0.0
    solver: str = ""

    @property
    def share_before(self) -> float:
        """Share of total demand covered by the pinned cameras alone."""
        return self.covered_before / self.total_demand if self.total_demand else 0.0

    @property
    def share_after(self) -> float:
        """Share of total demand covered with the new sites."""
        return self.covered_after / self.total_demand if self.total_demand else 0.0

    def curve(self) -> list[float]:
        """Cumulative covered demand share after each added camera (starting with the pinned coverage)."""
        c = np.cumsum([self.covered_before, *self.marginal])
        return (c / self.total_demand).tolist() if self.total_demand else [0.0] * len(c)


def _check(A: sp.spmatrix, w: np.ndarray, covered0: np.ndarray | None, p: int) -> tuple[sp.csr_matrix, np.ndarray,
                                                                                         np.ndarray]:
    A = sp.csr_matrix(A, dtype=bool)
    w = np.asarray(w, float)
    if A.shape[1] != w.size:
        raise PlacementError(f"coverage matrix has {A.shape[1]} demand columns but {w.size} weights")
    if (w < 0).any() or not np.isfinite(w).all():
        raise PlacementError("demand weights must be finite and non-negative")
    if p < 0 or p > A.shape[0]:
        raise PlacementError(f"p={p} must be between 0 and the number of candidate sites ({A.shape[0]})")
    c0 = np.zeros(w.size, bool) if covered0 is None else np.asarray(covered0, bool)
    if c0.size != w.size:
        raise PlacementError(f"covered0 has {c0.size} entries, expected {w.size}")
    return A, w, c0


def pinned_coverage(A_existing: sp.spmatrix | None, n_demand: int) -> np.ndarray:
    """Demand already covered by the existing (pinned) cameras, from their coverage matrix."""
    if A_existing is None or A_existing.shape[0] == 0:
        return np.zeros(n_demand, bool)
    return np.asarray(sp.csr_matrix(A_existing).sum(axis=0)).ravel() > 0


def greedy(A: sp.spmatrix, w: np.ndarray, p: int, covered0: np.ndarray | None = None,
           pinned: list[str] | None = None) -> PlacementResult:
    """Greedy MCLP: ``p`` sites, each the one adding the most uncovered weighted demand (1 - 1/e bound)."""
    A, w, c0 = _check(A, w, covered0, p)
    t0 = time.perf_counter()
    Ac = A.tocsc().astype(np.float64)
    At = A.astype(np.float64)
    residual = np.where(c0, 0.0, w)
    gains = At @ residual
    chosen: list[int] = []
    marginal: list[float] = []
    bound = np.inf
    value = 0.0
    for _ in range(p):
        # Nemhauser-Wolsey bound: OPT <= value + sum of the p largest current marginal gains.
        top = np.sort(gains)[-p:] if p else np.zeros(0)
        bound = min(bound, value + float(top.sum()))
        j = int(np.argmax(gains))
        if gains[j] <= 0 and j in chosen:
            break
        chosen.append(j)
        g = float(gains[j])
        marginal.append(g)
        value += g
        # Demand newly covered by j: subtract its weight from the gains of every site that sees it.
        newly = A[j].indices[residual[A[j].indices] > 0]
        if newly.size:
            delta = sp.csr_matrix((residual[newly], (newly, np.zeros(newly.size, int))), shape=(w.size, 1))
            gains = gains - np.asarray((Ac @ delta).todense()).ravel()
            residual[newly] = 0.0
        gains[j] = -1.0  # never pick twice
    bound = min(bound, value + float(np.clip(np.sort(gains)[-max(p, 1):], 0, None).sum())) if p else 0.0
    before = float(w[c0].sum())
    return PlacementResult(method="greedy", p=p, chosen=chosen, pinned=list(pinned or []), total_demand=float(w.sum()),
                           covered_before=before, covered_after=before + value, marginal=marginal, status="greedy",
                           objective=value, best_bound=float(bound),
                           mip_gap=float((bound - value) / bound) if bound > 0 else 0.0,
                           solve_s=time.perf_counter() - t0, solver="greedy (lazy marginal gains)")


def _merge_demand(A: sp.csr_matrix, w: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Merge demand columns with identical site sets (summing weights); drop unreachable columns."""
    Ac = A.tocsc()
    keys: dict[bytes, int] = {}
    rows, cols, ww = [], [], []
    for i in range(Ac.shape[1]):
        s = Ac.indices[Ac.indptr[i]:Ac.indptr[i + 1]]
        if s.size == 0 or w[i] <= 0:
            continue
        k = np.sort(s).tobytes()
        col = keys.get(k)
        if col is None:
            col = keys[k] = len(ww)
            ww.append(0.0)
            rows.append(s)
            cols.append(np.full(s.size, col))
        ww[col] += w[i]
    if not ww:
        return sp.csr_matrix((A.shape[0], 0), dtype=bool), np.zeros(0)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(r.size, bool), (r, c)), shape=(A.shape[0], len(ww))), np.array(ww)


def _highs_status(h: object) -> tuple[str, float | None, float | None]:
    import highspy

    st = h.getModelStatus()  # type: ignore[attr-defined]
    info = h.getInfo()  # type: ignore[attr-defined]
    names = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kTimeLimit: "time_limit",
             highspy.HighsModelStatus.kInfeasible: "infeasible", highspy.HighsModelStatus.kInterrupt: "interrupted",
             highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
             highspy.HighsModelStatus.kSolutionLimit: "solution_limit"}
    bound = getattr(info, "mip_dual_bound", None)
    bound = -bound if bound is not None else None  # PuLP hands HiGHS the negated (minimisation) objective
    gap = getattr(info, "mip_gap", None)
    return names.get(st, str(h.modelStatusToString(st))), (  # type: ignore[attr-defined]
        float(bound) if bound is not None and np.isfinite(bound) else None), (
        float(gap) if gap is not None and np.isfinite(gap) else None)


def solve_exact(A: sp.spmatrix, w: np.ndarray, p: int, covered0: np.ndarray | None = None,
                pinned: list[str] | None = None, time_limit_s: float = 30.0, mip_rel_gap: float = 0.0,
                warm_start: bool = True, solver: Literal["highs", "cbc"] = "highs") -> PlacementResult:
    """Exact MCLP with PuLP (HiGHS via highspy, or CBC): max Σ w_i y_i, y_i ≤ Σ_{j sees i} x_j, Σ x_j = p.

    Pinned coverage ``covered0`` is removed from the objective. Greedy gives the warm start (HiGHS) and a
    floor: if the time-limited solver returns something worse than greedy, greedy's sites are returned with
    the solver's bound. ``status`` is the solver's model status, not PuLP's "Optimal" label.
    """
    A, w, c0 = _check(A, w, covered0, p)
    t0 = time.perf_counter()
    g = greedy(A, w, p, c0, pinned)
    residual = np.where(c0, 0.0, w)
    Am, wm = _merge_demand(A, residual)
    prob = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = [pulp.LpVariable(f"x{j}", cat="Binary") for j in range(A.shape[0])]
    y = [pulp.LpVariable(f"y{i}", lowBound=0, upBound=1) for i in range(len(wm))]
    prob += pulp.lpDot(wm.tolist(), y)
    Amc = Am.tocsc()
    for i in range(len(wm)):
        sites = Amc.indices[Amc.indptr[i]:Amc.indptr[i + 1]]
        prob += y[i] <= pulp.lpSum(x[j] for j in sites)
    prob += pulp.lpSum(x) == p
    chosen_g = set(g.chosen)
    if warm_start:
        for j, v in enumerate(x):
            v.setInitialValue(1 if j in chosen_g else 0)
        seen = np.asarray(Am[sorted(chosen_g)].sum(axis=0)).ravel() > 0 if chosen_g else np.zeros(len(wm), bool)
        for i, v in enumerate(y):
            v.setInitialValue(1.0 if seen[i] else 0.0)
    status: str
    bound: float | None
    gap: float | None
    if solver == "highs" and pulp.HiGHS().available():
        s = _WarmHiGHS(msg=False, timeLimit=time_limit_s, gapRel=mip_rel_gap, warm=warm_start)
        prob.solve(s)
        status, bound, gap = _highs_status(prob.solverModel)
        name = "HiGHS (highspy via PuLP)"
    else:
        s = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=mip_rel_gap, warmStart=warm_start)
        prob.solve(s)
        # CBC through PuLP: sol_status 1 = optimal, 2 = integer feasible (e.g. stopped by the time limit).
        status = {1: "optimal", 2: "time_limit", -1: "infeasible", 0: "not_solved"}.get(prob.sol_status, "not_solved")
        bound, gap = None, None
        name = "CBC (PuLP)"
    chosen = [j for j, v in enumerate(x) if (v.value() or 0) > 0.5]
    value = float(residual[np.asarray(A[chosen].sum(axis=0)).ravel() > 0].sum()) if chosen else 0.0
    if len(chosen) != p or value < g.objective - 1e-9:
        chosen, value = list(g.chosen), g.objective  # the solver found nothing better than the warm start
    if bound is None:
        bound = g.best_bound if status != "optimal" else value
    if status == "optimal":
        gap = max(0.0, (bound - value) / bound) if bound else 0.0
    elif bound is not None and bound > 0:
        gap = max(0.0, (bound - value) / bound)
    # Marginal curve: the chosen sites ordered greedily among themselves.
    order, marginal = _order(A, residual, chosen)
    before = float(w[c0].sum())
    return PlacementResult(method="exact", p=p, chosen=order, pinned=list(pinned or []), total_demand=float(w.sum()),
                           covered_before=before, covered_after=before + value, marginal=marginal, status=status,
                           objective=value, best_bound=bound, mip_gap=gap, solve_s=time.perf_counter() - t0,
                           solver=name)


def _order(A: sp.csr_matrix, residual: np.ndarray, chosen: list[int]) -> tuple[list[int], list[float]]:
    r = residual.copy()
    left, order, marginal = list(chosen), [], []
    while left:
        gains = [float(r[A[j].indices].sum()) for j in left]
        k = int(np.argmax(gains))
        j = left.pop(k)
        order.append(j)
        marginal.append(gains[k])
        r[A[j].indices] = 0.0
    return order, marginal


class _WarmHiGHS(pulp.HiGHS):  # type: ignore[misc,name-defined]
    """PuLP's highspy interface, plus a MIP start from the variables' initial values."""

    def __init__(self, warm: bool = True, **kw: object):
        super().__init__(**kw)
        self._warm = warm

    def callSolver(self, lp: pulp.LpProblem) -> None:  # PuLP API name
        if self._warm:
            try:
                import highspy

                cols = lp.variables()
                sol = highspy.HighsSolution()
                sol.col_value = [float(v.varValue if v.varValue is not None else 0.0) for v in cols]
                sol.value_valid = True
                lp.solverModel.setSolution(sol)
            except Exception:  # a MIP start is only a hint; the solve goes on without it
                pass
        super().callSolver(lp)


class Placement(BaseModel):
    """A placement: the solver result plus the pinned and new camera sites (metric x/y, heading)."""

    model_config = {"arbitrary_types_allowed": True}

    result: PlacementResult
    pinned_xy: list[tuple[float, float, float]]  # existing cameras, unchanged: (x, y, heading)
    new_xy: list[tuple[float, float, float]]  # chosen candidate sites: (x, y, heading)
    new_kind: list[str]


def place(demand: object, candidates: object, existing: object | None, p: int,
          method: Literal["greedy", "exact"] = "greedy", corridor: object | None = None,
          time_limit_s: float = 30.0) -> Placement:
    """Choose ``p`` new camera sites among ``candidates`` with the ``existing`` cameras pinned.

    ``demand`` is a :class:`twin.coverage.Demand` (its risk weights used), ``candidates``/``existing`` are
    :class:`twin.coverage.Sites`. Existing cameras are returned exactly as given: they are never moved.
    """
    from twin import coverage as cv

    assert isinstance(demand, cv.Demand) and isinstance(candidates, cv.Sites)
    w = demand.weighted()
    A = cv.coverage_matrix(demand, candidates, corridor)  # type: ignore[arg-type]
    if existing is not None and len(existing):  # type: ignore[arg-type]
        assert isinstance(existing, cv.Sites)
        c0 = pinned_coverage(cv.coverage_matrix(demand, existing, corridor), len(demand))  # type: ignore[arg-type]
        pinned_ids = [str(r) for r in existing.ref]
        pinned_xy = [(float(a), float(b), float(h)) for a, b, h in
                     zip(existing.x, existing.y, existing.heading_deg, strict=True)]
    else:
        c0, pinned_ids, pinned_xy = np.zeros(len(demand), bool), [], []
    if method == "exact":
        res = solve_exact(A, w, p, c0, pinned_ids, time_limit_s=time_limit_s)
    else:
        res = greedy(A, w, p, c0, pinned_ids)
    return Placement(result=res, pinned_xy=pinned_xy,
                     new_xy=[(float(candidates.x[j]), float(candidates.y[j]), float(candidates.heading_deg[j]))
                             for j in res.chosen],
                     new_kind=[str(candidates.kind[j]) for j in res.chosen])
