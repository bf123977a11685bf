"""A small tabular gridworld MDP shared by lessons 02, 06 and 07.

One implementation of everything the three lessons need, all vectorised numpy:

- :class:`GridWorld`: a grid from a text layout, its transition tensor
  ``P[s, a, s']`` (with optional slip), and one-hot terrain features.
- :func:`value_iteration` (Bellman 1957; Sutton and Barto 2018, eq. 4.10) and
  :func:`soft_value_iteration` (the soft Bellman backup of maximum causal
  entropy RL; Ziebart 2010, eqs. 6.1-6.2; Haarnoja et al. 2017).
- :func:`policy_evaluation`: exact discounted values of a stochastic policy
  by one linear solve, V = (I - gamma P_pi)^-1 r_pi (Sutton and Barto, eq. 4.4).
- :func:`state_visitation`: expected discounted state visitation over a finite
  horizon (the forward pass of Ziebart et al. 2008, Algorithm 1).
- :func:`rollouts`: seeded sampled trajectories.

Rewards and costs depend on the state entered *from*, r(s), as in Ziebart et
al. (2008). Conventions: ``P`` has shape (S, A, S), ``policy`` has shape
(S, A) with rows summing to 1, state ``s = row * width + col``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np

from labkit.validation import ensure_array, ensure_float, ensure_instance, ensure_int, ensure_transitions

ACTIONS = ("up", "down", "left", "right", "stay")
MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (0, 0)])
WALL = "#"


def _logsumexp_rows(x: np.ndarray) -> np.ndarray:
    """log sum_a exp(x[s, a]) per row, stable: subtract the row max first (scipy's is ~50x slower here)."""
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1))


def _check_layout(layout) -> tuple[str, ...]:
    if isinstance(layout, str):
        layout = [row for row in layout.strip().splitlines()]
    if not isinstance(layout, (list, tuple)) or not layout or not all(isinstance(r, str) for r in layout):
        raise TypeError("layout must be a non-empty list of strings (one per grid row)")
    rows = tuple(r.strip() for r in layout)
    if len({len(r) for r in rows}) != 1 or len(rows[0]) == 0:
        raise ValueError("layout rows must be non-empty and all of the same length")
    if len(rows) * len(rows[0]) > 400:
        raise ValueError("layout must have at most 400 cells (the course uses grids up to 20 x 20)")
    return rows


@dataclass(frozen=True)
class GridWorld:
    """A gridworld built from a text layout.

    Each character is a cell type; ``#`` is a wall the agent cannot enter
    (it stays put instead). Five actions: up, down, left, right, stay. With
    probability ``slip`` the executed action is drawn uniformly at random.

    Parameters
    ----------
    layout : list of str
        One string per row, all of the same length.
    slip : float in [0, 1)
        Probability that the environment replaces the chosen action by a
        uniformly random one.

    Attributes
    ----------
    P : np.ndarray, shape (S, A, S)
        Transition probabilities, each ``P[s, a]`` sums to 1. Walls are
        states too (never entered, so never visited from a floor start).
    cell_types : str
        The distinct non-wall characters, sorted: the columns of :meth:`features`.
    """

    layout: tuple[str, ...]
    slip: float = 0.0
    P: np.ndarray = field(init=False, repr=False, compare=False)
    cell_types: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        layout = _check_layout(self.layout)
        slip = ensure_float("slip", self.slip, 0.0, 1.0, high_open=True)
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "slip", slip)
        object.__setattr__(self, "cell_types", "".join(sorted(set("".join(layout)) - {WALL})))
        if not self.cell_types:
            raise ValueError("layout must contain at least one non-wall cell")
        h, w = self.height, self.width
        rows, cols = np.divmod(np.arange(h * w), w)
        # Intended next state for every (s, a): move unless that leaves the grid or hits a wall.
        nr = rows[:, None] + MOVES[None, :, 0]
        nc = cols[:, None] + MOVES[None, :, 1]
        inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
        nr, nc = np.where(inside, nr, rows[:, None]), np.where(inside, nc, cols[:, None])
        walls = self.grid == WALL
        blocked = walls[nr, nc]
        nr, nc = np.where(blocked, rows[:, None], nr), np.where(blocked, cols[:, None], nc)
        target = nr * w + nc                                   # (S, A)
        det = np.zeros((h * w, len(ACTIONS), h * w))
        det[np.arange(h * w)[:, None], np.arange(len(ACTIONS))[None, :], target] = 1.0
        # Slip: with prob `slip` a uniformly random action replaces the chosen one.
        P = (1 - slip) * det + slip * det.mean(axis=1, keepdims=True)
        P.setflags(write=False)
        object.__setattr__(self, "P", P)

    @classmethod
    def from_layout(cls, layout, slip: float = 0.0) -> "GridWorld":
        """Build a gridworld from a list of row strings (or one multi-line string)."""
        return cls(_check_layout(layout), slip)

    @property
    def height(self) -> int:
        return len(self.layout)

    @property
    def width(self) -> int:
        return len(self.layout[0])

    @property
    def n_states(self) -> int:
        return self.height * self.width

    @property
    def n_actions(self) -> int:
        return len(ACTIONS)

    @property
    def grid(self) -> np.ndarray:
        """The layout as a (height, width) array of single characters."""
        return np.array([list(r) for r in self.layout])

    def state(self, row: int, col: int) -> int:
        """Index of the cell at ``(row, col)``."""
        row = ensure_int("row", row, 0, self.height - 1)
        col = ensure_int("col", col, 0, self.width - 1)
        return row * self.width + col

    def cells(self, kind: str) -> np.ndarray:
        """Indices of all states whose layout character is ``kind``."""
        return np.flatnonzero(self.grid.ravel() == kind)

    def features(self) -> np.ndarray:
        """One-hot terrain features, shape (S, len(cell_types)); wall rows are zero."""
        flat = self.grid.ravel()
        return (flat[:, None] == np.array(list(self.cell_types))[None, :]).astype(float)

    def reward_from_types(self, values: dict[str, float]) -> np.ndarray:
        """State reward vector from a ``{cell type: value}`` map (missing types and walls get 0)."""
        if not isinstance(values, dict):
            raise TypeError(f"values must be a dict from cell type to number, got {type(values).__name__}")
        unknown = set(values) - set(self.cell_types)
        if unknown:
            raise ValueError(f"values has unknown cell types {sorted(unknown)}; the layout has {self.cell_types!r}")
        flat = self.grid.ravel()
        r = np.zeros(self.n_states)
        for kind, v in values.items():
            r[flat == kind] = ensure_float(f"values[{kind!r}]", v)
        return r

    def start_distribution(self, kinds: str | None = None) -> np.ndarray:
        """Uniform distribution over the cells whose type is in ``kinds`` (default: all floor cells)."""
        flat = self.grid.ravel()
        mask = flat != WALL if kinds is None else np.isin(flat, list(kinds))
        if not mask.any():
            raise ValueError(f"no cell of type {kinds!r} in the layout")
        return mask / mask.sum()


def _check_mdp(P, r, gamma) -> tuple[np.ndarray, np.ndarray, float]:
    P = ensure_transitions("P", P)
    S = P.shape[0]
    r = ensure_array("r", r, ndim=1)
    if r.shape[0] != S:
        raise ValueError(f"r must have one entry per state ({S}), got {r.shape[0]}")
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, high_open=True)
    return P, r, gamma


def _check_start(start, S: int) -> np.ndarray:
    d = ensure_array("start", start, ndim=1)
    if d.shape[0] != S or (d < 0).any() or not np.isclose(d.sum(), 1.0):
        raise ValueError(f"start must be a probability vector over the {S} states")
    return d


def _check_policy(policy, S: int, A: int) -> np.ndarray:
    pi = ensure_array("policy", policy, ndim=2)
    if pi.shape != (S, A):
        raise ValueError(f"policy must have shape (S, A) = {(S, A)}, got {pi.shape}")
    if (pi < -1e-12).any() or not np.allclose(pi.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError("policy rows must be probability distributions (non-negative, summing to 1)")
    return pi


def bellman_backup(P, r, V, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """One Bellman optimality backup: Q(s,a) = r(s) + gamma sum_s' P(s'|s,a) V(s'), V'(s) = max_a Q(s,a).

    Sutton and Barto (2018), eq. 4.10. Returns ``(V_new, Q)``.
    """
    P, r, gamma = _check_mdp(P, r, gamma)
    V = ensure_array("V", V, ndim=1)
    if V.shape[0] != P.shape[0]:
        raise ValueError(f"V must have one entry per state ({P.shape[0]}), got {V.shape[0]}")
    Q = r[:, None] + gamma * P @ V        # (S, A): expectation over next states, not a max over all states
    return Q.max(axis=1), Q


def value_iteration(P, r, gamma: float, steps: int | None = None, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Optimal values by repeated Bellman backups, starting from V = 0.

    Parameters
    ----------
    P : array, shape (S, A, S)
    r : array, shape (S,)
        Reward for being in (leaving) state s.
    gamma : float in [0, 1)
    steps : int or None
        Exactly this many backups (``steps`` = 0 gives Q = r): the greedy policy
        then plans ``steps`` steps ahead, the lesson-02 measure of optimisation
        pressure. ``None`` iterates until the sup-norm change is below ``tol``.
    tol : float > 0

    Returns
    -------
    V : array (S,), Q : array (S, A)
    """
    P, r, gamma = _check_mdp(P, r, gamma)
    tol = ensure_float("tol", tol, 0.0, low_open=True)
    limit = 100_000 if steps is None else ensure_int("steps", steps, 0, 100_000)
    V = np.zeros(P.shape[0])
    Q = np.repeat(r[:, None], P.shape[1], axis=1)
    S, A = P.shape[:2]
    P_flat = P.reshape(S * A, S)
    for _ in range(limit):
        Q = r[:, None] + gamma * (P_flat @ V).reshape(S, A)
        V_new = Q.max(axis=1)
        done = np.max(np.abs(V_new - V)) < tol
        V = V_new
        if steps is None and done:
            break
    return V, Q


def soft_bellman_backup(P, r, V, gamma: float, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One soft Bellman backup (Ziebart 2010, eqs. 6.1-6.2):

    Q(s,a) = r(s) + gamma sum_s' P(s'|s,a) V(s'),  V'(s) = T log sum_a exp(Q(s,a) / T).

    The log-sum-exp is computed stably (max subtracted first). Returns ``(V_new, Q)``.
    """
    P, r, gamma = _check_mdp(P, r, gamma)
    T = ensure_float("temperature", temperature, 0.0, low_open=True)
    V = ensure_array("V", V, ndim=1)
    if V.shape[0] != P.shape[0]:
        raise ValueError(f"V must have one entry per state ({P.shape[0]}), got {V.shape[0]}")
    Q = r[:, None] + gamma * P @ V
    return T * _logsumexp_rows(Q / T), Q


def soft_value_iteration(
    P, r, gamma: float, temperature: float = 1.0, tol: float = 1e-8, max_steps: int = 100_000, V0=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft (maximum-entropy) value iteration to its fixed point.

    Iterates :func:`soft_bellman_backup` until the sup-norm change is below
    ``tol``; the backup is a gamma-contraction, so this converges from any
    start. The soft-optimal policy is pi(a|s) = exp((Q(s,a) - V(s)) / T).
    As ``temperature`` goes to 0 this tends to ordinary value iteration.

    Parameters
    ----------
    P, r, gamma : as in :func:`value_iteration`
    temperature : float > 0
        Entropy weight T: the policy maximises E[sum_t gamma^t (r(s_t) + T H(pi(.|s_t)))].
    tol : float > 0
    max_steps : int >= 1
    V0 : array (S,) or None
        Warm start (the IRL and primal-dual loops pass the previous solution).

    Returns
    -------
    V : (S,), Q : (S, A), policy : (S, A)
    """
    P, r, gamma = _check_mdp(P, r, gamma)
    T = ensure_float("temperature", temperature, 0.0, low_open=True)
    tol = ensure_float("tol", tol, 0.0, low_open=True)
    max_steps = ensure_int("max_steps", max_steps, 1, 10_000_000)
    V = np.zeros(P.shape[0]) if V0 is None else ensure_array("V0", V0, ndim=1).copy()
    if V.shape[0] != P.shape[0]:
        raise ValueError(f"V0 must have one entry per state ({P.shape[0]}), got {V.shape[0]}")
    S, A = P.shape[:2]
    P_flat = P.reshape(S * A, S)   # one matrix-vector product per backup
    for _ in range(max_steps):
        Q = r[:, None] + gamma * (P_flat @ V).reshape(S, A)
        V_new = T * _logsumexp_rows(Q / T)
        delta = np.max(np.abs(V_new - V))
        V = V_new
        if delta < tol:
            break
    Q = r[:, None] + gamma * P @ V
    policy = np.exp((Q - V[:, None]) / T)
    policy /= policy.sum(axis=1, keepdims=True)  # exact normalisation despite rounding
    return V, Q, policy


def greedy_policy(Q) -> np.ndarray:
    """Deterministic policy, shape (S, A), picking argmax_a Q(s, a) (first index on ties)."""
    Q = ensure_array("Q", Q, ndim=2, min_len=1)
    if Q.shape[1] == 0:
        raise ValueError("Q must have at least one action (column)")
    pi = np.zeros_like(Q)
    pi[np.arange(Q.shape[0]), Q.argmax(axis=1)] = 1.0
    return pi


def policy_evaluation(P, r, policy, gamma: float) -> np.ndarray:
    """Exact values of a policy: V = (I - gamma P_pi)^-1 r (Sutton and Barto 2018, eq. 4.4).

    Parameters
    ----------
    P : (S, A, S), r : (S,), policy : (S, A), gamma : float in [0, 1)

    Returns
    -------
    V : array (S,)
    """
    P, r, gamma = _check_mdp(P, r, gamma)
    pi = _check_policy(policy, P.shape[0], P.shape[1])
    P_pi = np.einsum("sa,sat->st", pi, P)
    return np.linalg.solve(np.eye(P.shape[0]) - gamma * P_pi, r)


def state_visitation(P, policy, start, gamma: float, horizon: int) -> np.ndarray:
    """Expected discounted state visitation D(s) = sum_{t<horizon} gamma^t Pr(s_t = s).

    The forward pass of Ziebart et al. (2008), Algorithm 1, steps 4-6, with a
    discount: D_0 = start, D_{t+1}(s') = sum_{s,a} D_t(s) pi(a|s) P(s'|s,a).

    Parameters
    ----------
    P : (S, A, S)
    policy : (S, A)
    start : (S,) initial state distribution
    gamma : float in [0, 1]
    horizon : int >= 1, the trajectory length

    Returns
    -------
    D : array (S,), summing to sum_{t<horizon} gamma^t
    """
    P = ensure_transitions("P", P)
    S, A, _ = P.shape
    pi = _check_policy(policy, S, A)
    d = _check_start(start, S)
    gamma = ensure_float("gamma", gamma, 0.0, 1.0)
    horizon = ensure_int("horizon", horizon, 1, 100_000)
    P_pi = np.einsum("sa,sat->st", pi, P)
    D = np.zeros(S)
    for t in range(horizon):
        D += gamma**t * d
        d = d @ P_pi
    return D


def discounted_occupancy(P, policy, start, gamma: float) -> np.ndarray:
    """Exact discounted state visitation D^T = p0^T (I - gamma P_pi)^-1, summing to 1 / (1 - gamma).

    The horizon -> infinity limit of :func:`state_visitation`, by one linear solve.
    """
    P = ensure_transitions("P", P)
    S, A, _ = P.shape
    pi = _check_policy(policy, S, A)
    start = _check_start(start, S)
    gamma = ensure_float("gamma", gamma, 0.0, 1.0, high_open=True)
    P_pi = np.einsum("sa,sat->st", pi, P)
    return np.linalg.solve((np.eye(S) - gamma * P_pi).T, start)


def rollouts(P, policy, start, n: int, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """Sample ``n`` state trajectories of length ``horizon``; returns int array (n, horizon).

    Vectorised over trajectories: one inverse-CDF draw per step.
    """
    P = ensure_transitions("P", P)
    S, A, _ = P.shape
    pi = _check_policy(policy, S, A)
    start = _check_start(start, S)
    n = ensure_int("n", n, 1, 1_000_000)
    horizon = ensure_int("horizon", horizon, 1, 100_000)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    P_pi = np.einsum("sa,sat->st", pi, P)
    cdf_start, cdf = np.cumsum(start), np.cumsum(P_pi, axis=1)
    states = np.empty((n, horizon), dtype=int)
    s = np.minimum(np.searchsorted(cdf_start, rng.random(n), side="right"), S - 1)
    for t in range(horizon):
        states[:, t] = s
        u = rng.random(n)[:, None]
        s = np.minimum((cdf[s] <= u).sum(axis=1), S - 1)
    return states


def draw_grid(ax: plt.Axes, world: GridWorld, values=None, cmap: str = "viridis", title: str = "",
              path=None, annotate: bool = True, vmin=None, vmax=None) -> None:
    """Draw ``values`` (S,) as a heat map over the grid, walls in grey, optional state path."""
    ensure_instance("world", world, GridWorld)
    h, w = world.height, world.width
    img = np.zeros((h, w)) if values is None else np.asarray(values, dtype=float).reshape(h, w)
    walls = world.grid == WALL
    shown = np.ma.masked_array(img, mask=walls)
    cm = plt.get_cmap(cmap).with_extremes(bad="0.6")
    im = ax.imshow(shown, cmap=cm, vmin=vmin, vmax=vmax)
    if annotate:
        for (i, j), ch in np.ndenumerate(world.grid):
            if ch not in (WALL, "."):
                ax.text(j, i, ch, ha="center", va="center", color="black", fontsize=9, fontweight="bold",
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.6, "lw": 0})
    if path is not None and len(path) > 0:
        rows, cols = np.divmod(np.asarray(path, dtype=int), w)
        ax.plot(cols, rows, color="tab:red", lw=2, marker="o", ms=3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    if values is not None:
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def greedy_path(world: GridWorld, policy, start_state: int, horizon: int) -> np.ndarray:
    """States visited following the most likely action and transition from ``start_state``."""
    ensure_instance("world", world, GridWorld)
    pi = _check_policy(policy, world.n_states, world.n_actions)
    start_state = ensure_int("start_state", start_state, 0, world.n_states - 1)
    horizon = ensure_int("horizon", horizon, 1, 10_000)
    path = [start_state]
    for _ in range(horizon - 1):
        s = path[-1]
        path.append(int(world.P[s, pi[s].argmax()].argmax()))
    return np.array(path)


__all__ = [
    "ACTIONS", "GridWorld", "bellman_backup", "value_iteration", "soft_bellman_backup", "soft_value_iteration",
    "greedy_policy", "policy_evaluation", "state_visitation", "discounted_occupancy", "rollouts", "draw_grid", "greedy_path",
]
