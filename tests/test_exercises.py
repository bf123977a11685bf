"""Every check fails on its stub, passes on its reference, catches wrong answers,
and the committed notebooks show exactly that."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from labkit import exercises
from labkit.syllabus import LESSONS

ROOT = Path(__file__).resolve().parents[1]
ALL = exercises.all_exercises()


def _perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float, np.number)):
        return value + 0.5 + abs(value) * 0.1
    if isinstance(value, np.ndarray):
        return value + 0.5 if value.dtype != bool else ~value
    if isinstance(value, torch.Tensor):
        return value + 0.5 if value.dtype != torch.bool else ~value
    if isinstance(value, str):
        return value + " (wrong)"
    if isinstance(value, (list, tuple)):
        return type(value)(_perturb(v) for v in value) if value else type(value)(["wrong"])
    if isinstance(value, dict):
        return {k: _perturb(v) for k, v in value.items()}
    return "wrong"


def _stub(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("key", sorted(ALL))
def test_check_rejects_stub_accepts_reference_and_catches_wrong_answers(key):
    ex = ALL[key]
    assert exercises.run_check(key, _stub).status == "not attempted"
    assert exercises.run_check(key, ex.reference).status == "passed"
    wrong = lambda *a, **k: _perturb(ex.reference(*a, **k))  # noqa: E731
    result = exercises.run_check(key, wrong)
    assert result.status == "failed", result.message
    assert "expected" in result.message and "got" in result.message


def _ece_with_bins(name, bin_index):
    """A plain ECE (top-class for 2-D probs, event for 1-D) whose bins are ``bin_index(conf, M)``."""
    def ece(probs, labels, n_bins=15):
        p, y = np.asarray(probs, dtype=float), np.asarray(labels)
        if p.ndim == 2:
            if (y < 0).any() or (y >= p.shape[1]).any():
                raise ValueError("labels must be class indices")
            conf, outcome = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
        else:
            if (p < 0).any() or (p > 1).any():
                raise ValueError("probs must lie in [0, 1]")
            conf, outcome = p, y.astype(float)
        b = bin_index(conf, n_bins)
        return float(np.abs(np.bincount(b, weights=outcome - conf, minlength=n_bins)).sum() / len(conf))
    ece.__name__ = name
    return ece


# Bins [b/M, (b+1)/M), 1.0 in the last: right everywhere except on bin edges.
_ece_left_closed_bins = _ece_with_bins("ece_left_closed_bins", lambda c, m: np.minimum((c * m).astype(int), m - 1))
# Guo et al.'s ((m-1)/M, m/M]: shows that the one above fails only because of its bins.
_ece_right_closed_bins = _ece_with_bins("ece_right_closed_bins", lambda c, m: np.clip(np.ceil(c * m).astype(int) - 1, 0, m - 1))


def _softmax_global_max(logits, temperature=1.0):
    """Subtracts the whole array's max: a row far below it underflows to 0/0."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    z = np.asarray(logits, dtype=float) / temperature
    e = np.exp(z - z.max())
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_row_max(logits, temperature=1.0):
    """The same, with each row's own max: right."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    z = np.asarray(logits, dtype=float) / temperature
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _roc_point_per_example(losses, is_member):
    """Ignores ties: one ROC point per example, so tied losses are split in index order."""
    s, m = -np.asarray(losses, dtype=float), np.asarray(is_member, dtype=bool)
    if m.all() or not m.any() or len(s) != len(m):
        raise ValueError("is_member must hold both classes, one per loss")
    order = np.argsort(-s, kind="stable")
    tpr = np.r_[0.0, np.cumsum(m[order]) / m.sum()]
    fpr = np.r_[0.0, np.cumsum(~m[order]) / (~m).sum()]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def _roc_scores_not_negated(losses, is_member):
    """Treats a high loss as member-like."""
    from labkit.leakage import roc

    return roc(np.asarray(losses, dtype=float), is_member)


def _exposure_ties_for_the_canary(canary_loss, reference_losses):
    ref = np.asarray(reference_losses, dtype=float)
    if ref.size == 0:
        raise ValueError("reference_losses must not be empty")
    return float(np.log2(len(ref) + 1) - np.log2(1 + np.count_nonzero(ref < canary_loss)))


def _exposure_without_the_canary_in_R(canary_loss, reference_losses):
    ref = np.asarray(reference_losses, dtype=float)
    if ref.size == 0:
        raise ValueError("reference_losses must not be empty")
    return float(np.log2(len(ref)) - np.log2(1 + np.count_nonzero(ref <= canary_loss)))


def _exposure_numpy_rank(canary_loss, reference_losses):
    """Right, written another way: the canary's rank among all candidates, ties against it."""
    ref = np.asarray(reference_losses, dtype=float)
    if ref.size == 0:
        raise ValueError("reference_losses must not be empty")
    everything = np.sort(np.r_[ref, canary_loss])
    rank = int(np.searchsorted(everything, canary_loss, side="right"))
    return float(np.log2(everything.size / rank))


def _clip_per_layer(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None):
    """Clips each layer to C on its own (so an example can move the sum by C * sqrt(layers))."""
    out = {}
    for name, g in per_example_grads.items():
        norms = g.reshape(g.shape[0], -1).norm(dim=1)
        factors = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        total = torch.einsum("b,b...->...", factors, g)
        if noise_multiplier > 0:
            total = total + torch.randn(total.shape, generator=generator, dtype=g.dtype) * noise_multiplier * max_grad_norm
        out[name] = total / expected_batch_size
    return out


def _clip_realised_batch(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None):
    """Divides by the realised batch size (which leaks it) instead of the expected one."""
    from labkit import privacy
    batch = next(iter(per_example_grads.values())).shape[0]
    return privacy.clip_and_noise(per_example_grads, max_grad_norm, noise_multiplier, float(max(batch, 1)), generator)


def _mironov_conversion(rdp, orders, delta):
    """Mironov 2017's eps = rdp + log(1/delta) / (alpha - 1): valid, but looser than Balle et al.'s."""
    r, a = np.asarray(rdp, dtype=float), np.asarray(orders, dtype=float)
    if r.shape != a.shape or (a <= 1).any() or not 0 < delta < 1:
        raise ValueError("bad input")
    eps = r + np.log(1 / delta) / (a - 1)
    return float(eps.min()), float(a[eps.argmin()])


def _fedavg_equal_weights(client_states, client_sizes):
    """The seed's plain mean, whatever each client's data size."""
    if len(client_sizes) != len(client_states) or min(client_sizes) < 0:
        raise ValueError("bad sizes")
    return {k: torch.stack([s[k] for s in client_states]).mean(0) for k in client_states[0]}


def _clip_one_example_at_a_time(per_example_grads, max_grad_norm, noise_multiplier, expected_batch_size, generator=None):
    """A student's loop version: right, and so it must pass."""
    if max_grad_norm <= 0 or noise_multiplier < 0 or expected_batch_size <= 0:
        raise ValueError("bad argument")
    names = list(per_example_grads)
    total = {n: torch.zeros_like(per_example_grads[n][0]) for n in names}
    for i in range(per_example_grads[names[0]].shape[0]):
        norm = sum(float(per_example_grads[n][i].pow(2).sum()) for n in names) ** 0.5
        for n in names:
            total[n] += per_example_grads[n][i] * min(1.0, max_grad_norm / (norm + 1e-6))
    for n in names:
        if noise_multiplier > 0:
            total[n] += noise_multiplier * max_grad_norm * torch.randn(total[n].shape, generator=generator, dtype=total[n].dtype)
    return {n: t / expected_batch_size for n, t in total.items()}


# Plausible wrong answers each check must catch, beyond the generic perturbation above.
PLAUSIBLE_WRONG = {
    "00.softmax": [_softmax_global_max],
    "03.expected_calibration_error": [_ece_left_closed_bins],
    "05.expected_calibration_error": [_ece_left_closed_bins],
    "20.clip_and_noise": [_clip_per_layer, _clip_realised_batch],
    "20.rdp_to_epsilon": [_mironov_conversion],
    "20.fedavg": [_fedavg_equal_weights],
    "21.loss_threshold_roc": [_roc_point_per_example, _roc_scores_not_negated],
    "21.exposure": [_exposure_ties_for_the_canary, _exposure_without_the_canary_in_R],
}
PLAUSIBLE_RIGHT = {
    "00.softmax": [_softmax_row_max],
    "03.expected_calibration_error": [_ece_right_closed_bins],
    "05.expected_calibration_error": [_ece_right_closed_bins],
    "20.clip_and_noise": [_clip_one_example_at_a_time],
    "21.exposure": [_exposure_numpy_rank],
}


@pytest.mark.parametrize("key, wrong", [(k, f) for k, fs in sorted(PLAUSIBLE_WRONG.items()) for f in fs],
                         ids=lambda v: getattr(v, "__name__", v))
def test_check_catches_plausible_wrong_answers(key, wrong):
    result = exercises.run_check(key, wrong)
    assert result.status == "failed", result.message


@pytest.mark.parametrize("key, right", [(k, f) for k, fs in sorted(PLAUSIBLE_RIGHT.items()) for f in fs],
                         ids=lambda v: getattr(v, "__name__", v))
def test_check_accepts_plausible_right_answers(key, right):
    assert exercises.run_check(key, right).status == "passed"


@pytest.mark.parametrize("key", sorted(ALL))
def test_check_never_raises(key):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    assert exercises.run_check(key, broken).status == "failed"
    assert exercises.run_check(key, 42).status == "failed"


def test_unknown_exercise_reports_instead_of_raising(capsys):
    exercises.check("99.nothing", lambda: None)
    assert "[failed]" in capsys.readouterr().out


def test_exercise_metadata_is_valid():
    with pytest.raises(ValueError, match="difficulty"):
        exercises.Exercise("00.x", "t", abs, lambda rng: [], difficulty=4, importance="core", minutes=5)


def _check_outputs(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "check(" in "".join(cell["source"]) and "".join(cell["source"]).lstrip().startswith("check("):
            texts.append("".join("".join(o.get("text", "")) for o in cell.get("outputs", [])))
    return texts


LESSON_FILES = sorted(p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("name", LESSON_FILES)
def test_notebooks_show_stub_and_solution_check_results(name):
    student = _check_outputs(ROOT / "notebooks" / f"{name}.ipynb")
    solved = _check_outputs(ROOT / "solutions" / f"{name}.ipynb")
    if not name.startswith("23_"):
        assert len(student) >= 2, f"{name} needs at least two checked exercises"
    assert len(student) == len(solved)
    for text in student:
        assert text.startswith("[not attempted yet]"), text
    for text in solved:
        assert text.startswith("[passed]"), text


def test_every_lesson_with_exercises_is_in_the_syllabus():
    numbers = {f"{lesson.number:02d}" for lesson in LESSONS}
    assert {key.split(".")[0] for key in ALL} <= numbers
