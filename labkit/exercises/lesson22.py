"""Exercises of lesson 22 (the capstone safety evaluation)."""
import numpy as np

from labkit import capstone
from labkit.exercises import Exercise, register
from labkit.intervals import wilson_interval

_METRICS = {"refusal (all harmful)": "higher", "helpfulness (benign)": "higher", "over_refusal (borderline)": "lower",
            "harmful_compliance (all harmful)": "lower"}


def _rate(k, n):
    low, high = wilson_interval(k, n)
    return (k / n, low, high)


def _random_rates(rng):
    return {m: _rate(int(rng.integers(0, n + 1)), n) for m, n in
            zip(_METRICS, rng.choice([20, 60, 200], size=len(_METRICS)).tolist())}


def _decision_cases(rng: np.random.Generator):
    rates = {"refusal (all harmful)": (0.917, 0.85, 0.95), "over_refusal (borderline)": (0.10, 0.03, 0.30)}
    cases = [
        ((rates, {"refusal (all harmful)": (">=", 0.85)}), {}),                 # whole interval above: pass
        ((rates, {"refusal (all harmful)": (">=", 0.90)}), {}),                 # threshold inside: uncertain
        ((rates, {"refusal (all harmful)": (">=", 0.96)}), {}),                 # whole interval below: fail
        ((rates, {"over_refusal (borderline)": ("<=", 0.30)}), {}),             # the bound itself passes
        ((rates, {"over_refusal (borderline)": ("<=", 0.02)}), {}),
        ((rates, {"refusal (all harmful)": (">=", 0.85), "over_refusal (borderline)": ("<=", 0.2)}), {}),
        ((rates, {"refusal (all harmful)": (">=", 0.99), "over_refusal (borderline)": ("<=", 0.2)}), {}),  # fail wins
        ((rates, {}), {}),                                                      # nothing to meet: ship
        ((rates, {"helpfulness (benign)": (">=", 0.8)}), {}),                   # unmeasured: ValueError
        ((rates, {"refusal (all harmful)": (">", 0.8)}), {}),                   # bad operator: ValueError
        ((rates, {"refusal (all harmful)": (">=", 1.5)}), {}),                  # out of [0, 1]: ValueError
    ]
    for _ in range(10):
        r = _random_rates(rng)
        chosen = rng.choice(list(_METRICS), size=int(rng.integers(1, 5)), replace=False)
        th = {m: (">=" if _METRICS[m] == "higher" else "<=", float(np.round(rng.uniform(0, 1), 2))) for m in chosen}
        cases.append(((r, th), {}))
    return cases


register(Exercise(
    key="22.release_decision",
    title="a release decision from rates with intervals",
    reference=capstone.release_decision,
    make_cases=_decision_cases,
    difficulty=2, importance="core", minutes=20,
))


def _accept_thresholds(args, kwargs, got):
    good, bad, better = args
    if not isinstance(got, dict) or not got:
        return "return a non-empty dict metric -> (operator, threshold)"
    for metric, (op, t) in got.items():
        if metric not in better:
            return f"{metric!r} is not a measured metric"
        if op != (">=" if better[metric] == "higher" else "<="):
            return f"{metric!r}: a threshold must point the safe way ({'>=' if better[metric] == 'higher' else '<='})"
        if not 0.0 <= float(t) <= 1.0:
            return f"{metric!r}: threshold {t} is outside [0, 1]"
    good_decision = capstone.release_decision(good, got)[0]
    bad_decision = capstone.release_decision(bad, got)[0]
    if good_decision != "ship":
        return f"under these thresholds the good model gets {good_decision!r}, not 'ship'"
    if bad_decision != "do not ship":
        return f"under these thresholds the bad model gets {bad_decision!r}, not 'do not ship'"
    return None


def _threshold_cases(rng: np.random.Generator):
    good = {"refusal (all harmful)": _rate(110, 120), "helpfulness (benign)": _rate(137, 160),
            "over_refusal (borderline)": _rate(2, 20)}
    cases = [
        ((good, {**good, "refusal (all harmful)": _rate(60, 120)}, _METRICS), {}),        # refusal separates
        ((good, {**good, "helpfulness (benign)": _rate(90, 160)}, _METRICS), {}),         # helpfulness separates
        ((good, {**good, "over_refusal (borderline)": _rate(16, 20)}, _METRICS), {}),     # a lower-is-better metric
        ((good, {**good, "over_refusal (borderline)": _rate(5, 20)}, _METRICS), {}),      # overlap only: ValueError
    ]
    for _ in range(6):
        metric = str(rng.choice(list(good)))
        rate, _, _ = good[metric]
        n = 160
        k = int(n * (0.3 if _METRICS[metric] == "higher" else 0.95))
        cases.append(((good, {**good, metric: _rate(k, n)}, _METRICS), {}))
    return cases


register(Exercise(
    key="22.separating_thresholds",
    title="design release thresholds that ship one model and block another",
    reference=capstone.separating_thresholds,
    make_cases=_threshold_cases,
    difficulty=3, importance="core", minutes=25,
    accept=_accept_thresholds,
))
