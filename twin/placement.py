"""Camera placement by Maximal Covering (MCLP) with the existing cameras pinned.

Existing cameras are never moved: the demand they already see counts as covered and is left out of the
objective, so the model picks ``p`` new sites that maximise the newly covered risk-weighted street length.

- :func:`greedy` adds, one at a time, the site with the largest marginal gain. Coverage is a monotone
  submodular function, so greedy reaches at least (1 - 1/e) of the optimum; it also yields an upper bound
  (the greedy value plus the best ``p`` marginal gains at any step, Nemhauser-Wolsey), reported as
  ``best_bound`` when no exact solve ran.
- :func:`solve_exact` solves the MCLP integer program, warm-started from greedy, and reports the solver's
  real model status, best bound and MIP gap: a solve stopped by its time limit is reported as
  ``time_limit`` with its gap, never as "optimal". Backends:
  ``ortools-scip`` (default): SCIP through OR-Tools' MPSolver, warm-started with the greedy solution;
  ``ortools-highs``: HiGHS's MIP solver through OR-Tools (no MIP start: OR-Tools 9.15 crashes on a hint
  to HiGHS, and a solve stopped before its first incumbent returns an unnamed code, reported as
  ``time_limit`` with greedy's sites and bound);
  ``pulp-cbc``: PuLP with CBC (a subprocess; PuLP's status is not trusted: ``sol_status`` is read);
  ``pulp-highs``: PuLP with highspy.
  Why the default is not PuLP + highspy: OR-Tools (used by :mod:`twin.patrol`) and highspy each ship
  their own HiGHS library and cannot both be loaded in one process (whichever comes second fails with an
  undefined-symbol ImportError), and importing PuLP loads highspy. Planning notebooks need both
  routing and placement, so the default stays inside OR-Tools; PuLP is imported only after OR-Tools so
  that it falls back to CBC instead of loading highspy.

Demand points with the same set of candidate sites are merged before the exact solve (same objective,
far fewer rows).
"""

from __future__ import annotations

import contextlib
import time
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

Solver = Literal["ortools-highs", "ortools-scip", "pulp-cbc", "pulp-highs"]


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
    """Demand already covered by the existing (pinned) cameras.

    Parameters
    ----------
    A_existing
        Shape (m, n): their coverage matrix (None: no existing cameras).
    n_demand
        n, the demand points.

    Returns
    -------
    numpy.ndarray
        Shape (n,), bool.
    """
    if A_existing is None or A_existing.shape[0] == 0:
        return np.zeros(n_demand, bool)
    return np.asarray(sp.csr_matrix(A_existing).sum(axis=0)).ravel() > 0


def greedy(A: sp.spmatrix, w: np.ndarray, p: int, covered0: np.ndarray | None = None,
           pinned: list[str] | None = None) -> PlacementResult:
    """Greedy maximal covering: ``p`` sites, each the one adding the most uncovered weighted demand.

    Within 1 - 1/e of the optimum.

    Parameters
    ----------
    A
        Shape (m, n): coverage matrix of the candidate sites.
    w
        Shape (n,): demand weights (risk-weighted street length, m).
    p
        Sites to choose.
    covered0
        Shape (n,), bool: demand already covered (pinned cameras).
    pinned
        Ids of the pinned cameras (reported).

    Returns
    -------
    PlacementResult
    """
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


def solve_exact(A: sp.spmatrix, w: np.ndarray, p: int, covered0: np.ndarray | None = None,
                pinned: list[str] | None = None, time_limit_s: float = 30.0, mip_rel_gap: float = 0.0,
                warm_start: bool = True, solver: Solver = "ortools-scip") -> PlacementResult:
    """Exact maximal covering (see the module note on backends): max Σ w_i y_i, y_i <= Σ_{j sees i} x_j, Σ x_j = p.

    Pinned coverage ``covered0`` is removed from the objective. Greedy gives the warm start and a floor: if the
    time-limited solver returns something worse than greedy, greedy's sites are returned with the solver's
    bound. ``status`` is the solver's model status, not PuLP's "Optimal" label.

    Parameters
    ----------
    A, w, p, covered0, pinned
        As for :func:`greedy`.
    time_limit_s
        Solver time limit (s).
    mip_rel_gap
        Relative gap at which the solver may stop.
    warm_start
        Start from the greedy solution.
    solver
        The backend.

    Returns
    -------
    PlacementResult
        With the solver, its status, best bound and gap.
    """
    A, w, c0 = _check(A, w, covered0, p)
    t0 = time.perf_counter()
    g = greedy(A, w, p, c0, pinned)
    residual = np.where(c0, 0.0, w)
    Am, wm = _merge_demand(A, residual)
    chosen_g = set(g.chosen)
    seen = np.asarray(Am[sorted(chosen_g)].sum(axis=0)).ravel() > 0 if chosen_g else np.zeros(len(wm), bool)
    if solver in ("ortools-highs", "ortools-scip"):
        chosen, status, bound, gap, name = _solve_ortools(Am, wm, p, chosen_g, seen, time_limit_s, mip_rel_gap,
                                                          warm_start, solver.removeprefix("ortools-").upper())
    elif solver in ("pulp-cbc", "pulp-highs"):
        chosen, status, bound, gap, name = _solve_pulp(Am, wm, p, chosen_g, seen, time_limit_s, mip_rel_gap,
                                                       warm_start, solver)
    else:
        raise PlacementError(f"unknown solver {solver!r}: use ortools-highs, ortools-scip, pulp-cbc or pulp-highs")
    value = float(residual[np.asarray(A[chosen].sum(axis=0)).ravel() > 0].sum()) if chosen else 0.0
    if len(chosen) != p or value < g.objective - 1e-9:
        chosen, value = list(g.chosen), g.objective  # the solver found nothing better than the warm start
    if g.best_bound is not None and status != "optimal":
        bound = g.best_bound if bound is None else min(bound, g.best_bound)  # both are valid upper bounds
    if bound is None:
        bound = value
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


class Placement(BaseModel):
    """A placement: the solver result plus the pinned and new camera sites (metric x/y, heading)."""

    model_config = {"arbitrary_types_allowed": True}

    result: PlacementResult
    pinned_xy: list[tuple[float, float, float]]  # existing cameras, unchanged: (x, y, heading)
    new_xy: list[tuple[float, float, float]]  # chosen candidate sites: (x, y, heading)
    new_kind: list[str]


def place(demand: object, candidates: object, existing: object | None, p: int,
          method: Literal["greedy", "exact"] = "greedy", corridor: object | None = None,
          time_limit_s: float = 30.0, solver: Solver = "ortools-scip") -> Placement:
    """Choose ``p`` new camera sites among ``candidates`` with the ``existing`` cameras pinned (never moved).

    Parameters
    ----------
    demand
        A :class:`twin.coverage.Demand` (its risk weights used).
    candidates, existing
        :class:`twin.coverage.Sites` (``existing`` may be None).
    p
        New sites.
    method
        ``greedy`` or ``exact``.
    corridor
        A :class:`twin.coverage.Corridor` for sight lines (None: wedges only).
    time_limit_s, solver
        For ``exact``.

    Returns
    -------
    Placement
        The result, the pinned sites as given and the new sites (metric x/y, heading, kind).
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
        res = solve_exact(A, w, p, c0, pinned_ids, time_limit_s=time_limit_s, solver=solver)
    else:
        res = greedy(A, w, p, c0, pinned_ids)
    return Placement(result=res, pinned_xy=pinned_xy,
                     new_xy=[(float(candidates.x[j]), float(candidates.y[j]), float(candidates.heading_deg[j]))
                             for j in res.chosen],
                     new_kind=[str(candidates.kind[j]) for j in res.chosen])


def _solve_ortools(Am: sp.csr_matrix, wm: np.ndarray, p: int, warm: set[int], seen: np.ndarray, time_limit_s: float,
                   mip_rel_gap: float, warm_start: bool, backend: str = "HIGHS"
                   ) -> tuple[list[int], str, float | None, float | None, str]:
    from ortools.linear_solver import pywraplp

    s = pywraplp.Solver.CreateSolver(backend)
    if s is None:
        raise PlacementError(f"OR-Tools has no {backend} MIP backend here: use solver='pulp-cbc'")
    s.SuppressOutput()
    x = [s.BoolVar(f"x{j}") for j in range(Am.shape[0])]
    y = [s.NumVar(0.0, 1.0, f"y{i}") for i in range(len(wm))]
    Amc = Am.tocsc()
    for i in range(len(wm)):
        sites = Amc.indices[Amc.indptr[i]:Amc.indptr[i + 1]]
        s.Add(y[i] <= sum(x[j] for j in sites))
    s.Add(sum(x) == p)
    s.Maximize(sum(float(wm[i]) * y[i] for i in range(len(wm))))
    s.SetTimeLimit(int(time_limit_s * 1000))
    if warm_start and backend != "HIGHS":  # OR-Tools 9.15 crashes (SIGSEGV) on a hint to its HiGHS backend
        s.SetHint(x + y, [1.0 if j in warm else 0.0 for j in range(len(x))] + [1.0 if v else 0.0 for v in seen])
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, mip_rel_gap)
    t0 = time.perf_counter()
    code = s.Solve(params)
    ran_out = time.perf_counter() - t0 >= 0.95 * time_limit_s
    status = {pywraplp.Solver.OPTIMAL: "optimal", pywraplp.Solver.FEASIBLE: "time_limit",
              pywraplp.Solver.INFEASIBLE: "infeasible"}.get(code, "time_limit" if ran_out else f"solver_code_{code}")
    chosen = [j for j, v in enumerate(x) if v.solution_value() > 0.5] if code in (0, 1) else []
    bound = float(s.Objective().BestBound()) if code in (0, 1) else None
    if bound is not None and not np.isfinite(bound):
        bound = None
    return chosen, status, bound, None, f"{backend} MIP via OR-Tools MPSolver"


def _solve_pulp(Am: sp.csr_matrix, wm: np.ndarray, p: int, warm: set[int], seen: np.ndarray, time_limit_s: float,
                mip_rel_gap: float, warm_start: bool, which: str
                ) -> tuple[list[int], str, float | None, float | None, str]:
    if which == "pulp-cbc":
        # Load OR-Tools' HiGHS first so that PuLP does not load highspy (see the module note).
        with contextlib.suppress(ImportError):
            import ortools.linear_solver.pywraplp  # noqa: F401
    import pulp

    prob = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = [pulp.LpVariable(f"x{j}", cat="Binary") for j in range(Am.shape[0])]
    y = [pulp.LpVariable(f"y{i}", lowBound=0, upBound=1) for i in range(len(wm))]
    prob += pulp.lpDot(wm.tolist(), y)
    Amc = Am.tocsc()
    for i in range(len(wm)):
        sites = Amc.indices[Amc.indptr[i]:Amc.indptr[i + 1]]
        prob += y[i] <= pulp.lpSum(x[j] for j in sites)
    prob += pulp.lpSum(x) == p
    if warm_start:
        for j, v in enumerate(x):
            v.setInitialValue(1 if j in warm else 0)
        for i, v in enumerate(y):
            v.setInitialValue(1.0 if seen[i] else 0.0)
    bound: float | None = None
    gap: float | None = None
    if which == "pulp-highs":
        if not pulp.HiGHS().available():
            raise PlacementError("PuLP's HiGHS API is not available in this process (highspy missing, or OR-Tools "
                                 "loaded first: they cannot share a process); use solver='ortools-highs'")
        prob.solve(pulp.HiGHS(msg=False, timeLimit=time_limit_s, gapRel=mip_rel_gap))
        import highspy

        h = prob.solverModel
        st = h.getModelStatus()
        info = h.getInfo()
        status = {highspy.HighsModelStatus.kOptimal: "optimal", highspy.HighsModelStatus.kTimeLimit: "time_limit",
                  highspy.HighsModelStatus.kInfeasible: "infeasible"}.get(st, str(h.modelStatusToString(st)))
        b = getattr(info, "mip_dual_bound", None)
        bound = -float(b) if b is not None and np.isfinite(b) else None  # PuLP hands HiGHS the negated objective
        name = "HiGHS (highspy via PuLP)"
    else:
        prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=mip_rel_gap, warmStart=warm_start))
        # PuLP says "Optimal" for a CBC run stopped by its time limit; sol_status 2 means integer-feasible only.
        status = {1: "optimal", 2: "time_limit", -1: "infeasible", 0: "not_solved"}.get(prob.sol_status, "not_solved")
        name = "CBC via PuLP"
    chosen = [j for j, v in enumerate(x) if (v.value() or 0) > 0.5]
    return chosen, status, bound, gap, name
