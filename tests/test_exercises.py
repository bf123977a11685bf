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


def _dpo_without_reference(pc, pr, rc, rr, beta=0.1):
    """Forgets the reference model: -log sigmoid(beta (pi_c - pi_r))."""
    from labkit import rlhf
    return rlhf.dpo_loss(pc, pr, torch.zeros_like(rc), torch.zeros_like(rr), beta)


def _gae_ignoring_episode_ends(rewards, values, mask, gamma=1.0, lam=0.95):
    """Bootstraps from the next position's value even past the reply's last token."""
    from labkit import rlhf
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.size(1) - 1, -1, -1):
        nxt = values[:, t + 1] if t + 1 < rewards.size(1) else torch.zeros_like(last)
        last = (rewards[:, t] + gamma * nxt - values[:, t] + gamma * lam * last) * mask[:, t]
        adv[:, t] = last
    rlhf.gae(rewards, values, mask, gamma, lam)  # the same input checks as the reference
    return adv, adv + values


def _ppo_mean_over_all_tokens(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
    """Averages over every position, padding included."""
    from labkit import rlhf
    n_masked = mask.sum()
    return rlhf.ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range) * n_masked / mask.numel()


def _ppo_min_instead_of_max(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
    """Takes the optimistic term: min of the two losses."""
    from labkit import rlhf
    rlhf.ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range)  # the same input checks
    ratio = torch.exp(logprobs - old_logprobs)
    loss = torch.minimum(-advantages * ratio, -advantages * ratio.clamp(1 - clip_range, 1 + clip_range))
    return (loss * mask).sum() / mask.sum()


# Plausible wrong answers each check must catch, beyond the generic perturbation above.
PLAUSIBLE_WRONG = {
    "00.softmax": [_softmax_global_max],
    "03.expected_calibration_error": [_ece_left_closed_bins],
    "05.expected_calibration_error": [_ece_left_closed_bins],
    "16.dpo_loss": [_dpo_without_reference],
    "16.gae": [_gae_ignoring_episode_ends],
    "16.ppo_policy_loss": [_ppo_mean_over_all_tokens, _ppo_min_instead_of_max],
}
PLAUSIBLE_RIGHT = {
    "00.softmax": [_softmax_row_max],
    "03.expected_calibration_error": [_ece_right_closed_bins],
    "05.expected_calibration_error": [_ece_right_closed_bins],
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
