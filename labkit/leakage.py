"""Lesson 21: what a trained model leaks about its training data, and about itself.

Three questions, one module:

1. **Membership inference** (was this example in the training set?) on small
   digit classifiers (:mod:`labkit.classifiers`):

   - the loss-threshold attack of Yeom et al. (2018): members have lower loss;
   - shadow models (Shokri et al. 2017): train models like the target on data
     like its own, and learn from their outputs what "member" looks like;
   - a likelihood-ratio attack in the spirit of LiRA (Carlini et al. 2022):
     per example, Gaussians fitted to the logit-scaled confidence of
     reference models that did and did not train on it.

   All are judged by the ROC curve on log axes and the true-positive rate at a
   low false-positive rate (:func:`roc`, :func:`tpr_at_fpr`), the metric
   Carlini et al. argue for, not by accuracy or AUC alone.
2. **Memorisation** in the course's tiny assistant (Carlini et al. 2019, the
   Secret Sharer): a canary inserted ``k`` times into pretraining text, its
   :func:`exposure` among random candidates, extraction by sampling, and the
   world's fake PII sentences as the realistic case.
3. **Model extraction** (Tramèr et al. 2016): query lesson 15's input guard as
   a black box, train a surrogate on its answers, and measure agreement on
   held-out inputs against the number of queries, under three defences
   (rounded scores, labels only, a rate limit).

Conventions: a membership *score* is higher for "more likely a member";
``is_member`` is boolean. Metric functions accept numpy arrays, lists or
tensors on any device.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_int

# =============================================================================
# 1. Metrics: ROC, TPR at low FPR, exposure
# =============================================================================


def _scores_and_labels(scores, is_member) -> tuple[np.ndarray, np.ndarray]:
    s = ensure_array("scores", scores, ndim=1, min_len=2)
    if isinstance(is_member, torch.Tensor):
        is_member = is_member.detach().cpu().numpy()
    m = np.asarray(is_member)
    if m.ndim != 1 or m.shape[0] != s.shape[0]:
        raise ValueError(f"is_member must be 1-D with one entry per score ({s.shape[0]}), got shape {m.shape}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number) or not np.isin(m, (0, 1)).all():
            raise ValueError("is_member must hold booleans (or 0/1)")
        m = m.astype(bool)
    if m.all() or not m.any():
        raise ValueError("is_member must contain both members (True) and non-members (False)")
    return s, m


def roc(scores, is_member) -> tuple[np.ndarray, np.ndarray, float]:
    """The ROC curve of a membership score and the area under it.

    One point per distinct score, thresholds descending: a point is the
    (false-positive rate, true-positive rate) of "member when score >= t".
    Tied scores move together (no randomised thresholds), so the curve starts
    at (0, 0) and ends at (1, 1). The AUC is the trapezoidal area, which
    equals the probability that a random member outscores a random non-member,
    ties counting one half (Mann-Whitney).

    Parameters
    ----------
    scores : array-like (n,)
        Higher = more likely a member.
    is_member : array-like of bool (n,)
        Both classes must occur.

    Returns
    -------
    fpr, tpr : float arrays of the same length, non-decreasing, from 0 to 1
    auc : float in [0, 1]
    """
    s, m = _scores_and_labels(scores, is_member)
    order = np.argsort(-s, kind="stable")
    s, m = s[order], m[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # a threshold after each group of equal scores
    tp = np.cumsum(m)[last_of_tie]
    fp = np.cumsum(~m)[last_of_tie]
    tpr = np.r_[0.0, tp / m.sum()]
    fpr = np.r_[0.0, fp / (~m).sum()]
    auc = float(np.trapezoid(tpr, fpr))
    return fpr, tpr, auc


def loss_threshold_roc(losses, is_member) -> tuple[np.ndarray, np.ndarray, float]:
    """The ROC of Yeom et al. (2018)'s loss-threshold attack: "member when loss <= t", for every t.

    :func:`roc` of the negative losses (a lower loss is more member-like).

    Parameters
    ----------
    losses : array-like (n,)
        Each example's loss under the target model.
    is_member : array-like of bool (n,)

    Returns
    -------
    fpr, tpr, auc : as for :func:`roc`
    """
    return roc(-ensure_array("losses", losses, ndim=1, min_len=2), is_member)


def tpr_at_fpr(scores, is_member, fpr: float) -> float:
    """The highest true-positive rate of any threshold whose false-positive rate is at most ``fpr``.

    The thresholds are those of :func:`roc` (no interpolation between its
    points, no randomised tie-breaking): an attack that scores every example
    alike has TPR 0 at any FPR below 1. With few non-members the smallest
    non-zero FPR is 1 / n_non_members, so an FPR of 0.1 % needs at least
    1,000 of them to mean anything beyond "no false positive at all".

    Parameters
    ----------
    scores, is_member : as for :func:`roc`
    fpr : float in [0, 1]

    Returns
    -------
    float in [0, 1]
    """
    fpr = ensure_float("fpr", fpr, 0.0, 1.0)
    fprs, tprs, _ = roc(scores, is_member)
    return float(tprs[fprs <= fpr + 1e-12].max())  # the tolerance keeps fpr=0.01 with 100 negatives at 1/100


def exposure(canary_loss, reference_losses) -> float:
    """Exposure of a canary (Carlini et al. 2019, Secret Sharer, Def. 4), estimated from ranks.

    ``exposure = log2(|R|) - log2(rank)``, where ``|R| = len(reference_losses) + 1``
    counts the candidates (the references and the canary) and ``rank`` is the
    canary's 1-based rank when candidates are sorted by loss, lowest first;
    a reference with exactly the canary's loss ranks ahead of it (ties are
    counted against the canary). A canary with a lower loss than every
    reference gets the maximum, ``log2(|R|)``; one with the highest loss gets 0.

    Parameters
    ----------
    canary_loss : float
        The canary's loss (e.g. its negative log-likelihood under the model).
    reference_losses : array-like (n,), n >= 1
        Losses of other candidates the model never saw (not the canary itself).

    Returns
    -------
    float in [0, log2(n + 1)]
    """
    c = ensure_float("canary_loss", canary_loss)
    ref = ensure_array("reference_losses", reference_losses, ndim=1, min_len=1)
    rank = 1 + int(np.count_nonzero(ref <= c))
    return math.log2(len(ref) + 1) - math.log2(rank)


# =============================================================================
# 2. Membership-inference attacks on classifiers
# =============================================================================


def _check_model_data(model, x, y) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise TypeError("x must be a floating-point tensor (n, features...)")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.long or y.shape != (x.shape[0],):
        raise TypeError(f"y must be a long tensor of shape ({x.shape[0]},)")


@torch.no_grad()
def model_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """The model's logits on ``x``, in eval mode, as float64 on the CPU (shape (n, classes))."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]).double().cpu() for i in range(0, x.shape[0], batch_size)])
    model.train(was)
    return out


def _logit_confidence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = logits.double().cpu()
    y = y.cpu()
    true = z.gather(1, y[:, None]).squeeze(1)
    others = z.scatter(1, y[:, None], float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def per_example_loss(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Cross-entropy of each row of ``logits`` (n, classes) against labels ``y`` (n,), in float64.

    Computed as ``softplus(-c)`` with ``c`` the :func:`logit_confidence`, which
    keeps losses of 1e-20 apart from 1e-30: ``logsumexp`` rounds them all
    to 0, and an attack on a model that fits its members perfectly would then
    see nothing but ties.
    """
    return F.softplus(-_logit_confidence(logits, y)).numpy()


def logit_confidence(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """``log(p_y / (1 - p_y))`` per row, computed stably as ``z_y - logsumexp(z_other)``.

    LiRA's statistic (Carlini et al. 2022, Sec. IV-B): the softmax confidence
    of the true class is squeezed against 1 for a well-fit example; its logit
    scaling is close to Gaussian across models, which the attack assumes.
    """
    return _logit_confidence(logits, y).numpy()


def loss_attack_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Yeom et al. (2018)'s attack as a score: the negative loss (members have lower loss).

    Yeom et al. threshold the loss at the model's average training loss; a
    score lets :func:`roc` sweep every threshold instead (their operating
    point is one of its points).
    """
    _check_model_data(model, x, y)
    return -per_example_loss(model_logits(model, x), y)


def lira_scores(target_confidence, reference_confidence, reference_in, global_variance: bool = True) -> np.ndarray:
    """Online likelihood-ratio membership scores in the spirit of LiRA (Carlini et al. 2022, Alg. 1).

    For each example, Gaussians are fitted to the logit-scaled confidences
    (:func:`logit_confidence`) of the reference models that trained on it
    ("in") and of those that did not ("out"); the score is the log-likelihood
    ratio ``log N(c; mu_in, s_in^2) - log N(c; mu_out, s_out^2)`` of the
    target's confidence ``c``.

    Parameters
    ----------
    target_confidence : array-like (n,)
        The target model's confidence on each example.
    reference_confidence : array-like (R, n)
        Each reference model's confidence on each example.
    reference_in : array-like of bool (R, n)
        Whether reference model r trained on example i. Every example needs at
        least one "in" and one "out" reference (two of each without
        ``global_variance``).
    global_variance : bool
        One variance per side, pooled over all examples, instead of one per
        example: Carlini et al. recommend it when there are few reference
        models (a per-example variance from a handful of models is noisy).

    Returns
    -------
    float array (n,): higher = more likely a member
    """
    c = ensure_array("target_confidence", target_confidence, ndim=1, min_len=1)
    ref = ensure_array("reference_confidence", reference_confidence, ndim=2)
    if isinstance(reference_in, torch.Tensor):
        reference_in = reference_in.detach().cpu().numpy()
    inside = np.asarray(reference_in)
    if inside.shape != ref.shape or ref.shape[1] != c.shape[0]:
        raise ValueError(f"reference_confidence and reference_in must have shape (R, {c.shape[0]}), "
                         f"got {ref.shape} and {inside.shape}")
    inside = inside.astype(bool)
    n_in, n_out = inside.sum(0), (~inside).sum(0)
    need = 1 if global_variance else 2
    if (n_in < need).any() or (n_out < need).any():
        raise ValueError(f"every example needs at least {need} 'in' and {need} 'out' reference models")
    mu_in = np.where(inside, ref, 0).sum(0) / n_in
    mu_out = np.where(~inside, ref, 0).sum(0) / n_out
    dev_in, dev_out = np.where(inside, ref - mu_in, 0), np.where(~inside, ref - mu_out, 0)
    if global_variance:
        var_in = np.full_like(c, (dev_in ** 2).sum() / max(1, n_in.sum() - len(c)) if (n_in > 1).any() else 1.0)
        var_out = np.full_like(c, (dev_out ** 2).sum() / max(1, n_out.sum() - len(c)) if (n_out > 1).any() else 1.0)
    else:
        var_in, var_out = (dev_in ** 2).sum(0) / (n_in - 1), (dev_out ** 2).sum(0) / (n_out - 1)
    var_in, var_out = np.maximum(var_in, 1e-6), np.maximum(var_out, 1e-6)  # a constant confidence has no spread

    def log_normal(mu, var):
        return -0.5 * (np.log(2 * np.pi * var) + (c - mu) ** 2 / var)

    return log_normal(mu_in, var_in) - log_normal(mu_out, var_out)


def _attack_features(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """What a shadow-model attack sees per example: the true class's log-probability and the sorted log-probabilities."""
    true = np.take_along_axis(log_probs, labels[:, None], axis=1)
    return np.hstack([true, -np.sort(-log_probs, axis=1)])


def shadow_attack_scores(shadow_log_probs, shadow_in, labels, target_log_probs) -> np.ndarray:
    """Membership scores from shadow models (Shokri et al. 2017).

    Shadow models are trained like the target on data like its own, so the
    attacker knows which examples each one trained on. An attack model learns,
    from the shadows' outputs labelled in/out, to tell a member's output from a
    non-member's, and is then applied to the target's outputs. As in Shokri et
    al. there is one attack model per class; here each is a logistic
    regression on the true class's log-probability and the sorted
    log-probability vector (their attack models were small networks on the
    probability vector).

    Parameters
    ----------
    shadow_log_probs : array-like (S, n, classes)
        Each shadow model's log-probabilities on each example.
    shadow_in : array-like of bool (S, n)
        Whether shadow s trained on example i.
    labels : array-like of int (n,)
    target_log_probs : array-like (n, classes)
        The target model's log-probabilities on the examples to score.

    Returns
    -------
    float array (n,): the attack models' probability of "member"
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lp = ensure_array("shadow_log_probs", shadow_log_probs, ndim=3)
    inside = np.asarray(shadow_in.detach().cpu() if isinstance(shadow_in, torch.Tensor) else shadow_in).astype(bool)
    y = ensure_array("labels", labels, ndim=1, dtype=np.int64)
    target = ensure_array("target_log_probs", target_log_probs, ndim=2)
    S, n, k = lp.shape
    if inside.shape != (S, n) or y.shape != (n,) or target.shape != (n, k):
        raise ValueError(f"shapes must agree: shadow_log_probs (S, n, k), shadow_in (S, n), labels (n,), "
                         f"target_log_probs (n, k); got {lp.shape}, {inside.shape}, {y.shape}, {target.shape}")
    if (y < 0).any() or (y >= k).any():
        raise ValueError(f"labels must be class indices in [0, {k - 1}]")
    lp, target = np.maximum(lp, -50.0), np.maximum(target, -50.0)  # log 0 would be -inf: cap it
    scores = np.full(n, 0.5)
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        feats = np.vstack([_attack_features(lp[s, rows], y[rows]) for s in range(S)])
        member = inside[:, rows].reshape(-1)
        if member.all() or not member.any():
            continue  # the shadows never saw (or always saw) this class: nothing to learn, score 0.5
        # Newton on standardised features: a dozen features, deterministic, milliseconds (lbfgs took seconds)
        attack = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=100))
        attack.fit(feats, member)
        scores[rows] = attack.predict_proba(_attack_features(target[rows], y[rows]))[:, 1]
    return scores



# =============================================================================
# 3. The membership experiment on digits: targets, shadows and references
# =============================================================================

@dataclass(frozen=True)
class Recipe:
    """How every model of a population is trained (the attacker knows it, as in Shokri et al. and Carlini et al.).

    Without ``epsilon``: Adam for ``epochs`` epochs of minibatches of
    ``batch_size``, with an L2 penalty ``weight_decay * sum(w**2)`` on the
    weight matrices added to the loss. With ``epsilon``: DP-SGD
    (:func:`labkit.privacy.train_dp_sgd`, Abadi et al. 2016) for ``steps``
    steps of Poisson batches at ``sample_rate``, per-example clipping to
    ``max_grad_norm``, SGD at ``lr``, and the noise multiplier that makes the
    whole run (``epsilon``, ``delta``)-DP by the RDP accountant.
    """

    name: str
    hidden: tuple[int, ...] = (256,)
    epochs: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    epsilon: float | None = None
    delta: float = 1e-5
    sample_rate: float = 0.1
    steps: int = 200
    max_grad_norm: float = 1.0

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


# Hand-set, not tuned on any attack result: "overfit" trains a wide network to
# zero training loss; "regularised" stops early with an L2 penalty; "dp" is
# DP-SGD at epsilon = 8 (delta = 1e-5), SGD's learning rate lesson 20's default.
# Their test accuracies are printed beside every attack.
RECIPES: dict[str, Recipe] = {
    "overfit": Recipe("overfit", hidden=(256,), epochs=150, batch_size=64, lr=1e-3),
    "regularised": Recipe("regularised", hidden=(256,), epochs=20, batch_size=64, lr=1e-3, weight_decay=3e-3),
    "dp": Recipe("dp", hidden=(256,), lr=0.5, epsilon=8.0, delta=1e-5, sample_rate=0.1, steps=200, max_grad_norm=1.0),
}
POPULATION_CODE_VERSION = "1"


def membership_masks(n_models: int, n_examples: int, seed: int = 0) -> np.ndarray:
    """Which examples each model trains on: bool (n_models, n_examples), every example in exactly half the models.

    Carlini et al. (2022)'s balanced design: each column is a random
    permutation of half True, half False (``n_models`` even), so every example
    has as many "in" as "out" models, and each model trains on about half of
    the pool.
    """
    n_models = ensure_int("n_models", n_models, low=2)
    if n_models % 2:
        raise ValueError(f"n_models must be even so every example is in exactly half the models, got {n_models}")
    n_examples = ensure_int("n_examples", n_examples, low=1)
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    ranks = rng.random((n_models, n_examples)).argsort(axis=0).argsort(axis=0)
    return ranks < n_models // 2


def _l2_loss(weight_decay: float):
    from labkit.classifiers import cross_entropy_loss

    def loss(model, batch):
        penalty = sum((p ** 2).sum() for p in model.parameters() if p.ndim >= 2)
        return cross_entropy_loss(model, batch) + weight_decay * penalty
    return loss


def train_member_model(recipe: Recipe, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> nn.Module:
    """One model of a population, trained on ``(x, y)`` by ``recipe`` from ``seed``."""
    from labkit import classifiers

    model = classifiers.make_mlp(x.shape[1], recipe.hidden, classifiers.N_CLASSES, seed=seed)
    if recipe.epsilon is None:
        loss = _l2_loss(recipe.weight_decay) if recipe.weight_decay else classifiers.cross_entropy_loss
        classifiers.train_classifier(model, x, y, recipe.epochs, recipe.batch_size, recipe.lr, loss, seed=seed)
    else:
        from labkit import privacy

        sigma = privacy.noise_multiplier_for(recipe.epsilon, recipe.delta, recipe.sample_rate, recipe.steps)
        privacy.train_dp_sgd(model, x, y, sigma, recipe.max_grad_norm, recipe.sample_rate, recipe.steps,
                             lr=recipe.lr, delta=recipe.delta, seed=seed)
    return model.eval()


@dataclass
class Population:
    """Models trained by one recipe on random halves of a pool, and their outputs.

    ``log_probs[m, i]``: model m's log-probabilities on pool example i;
    ``is_in[m, i]``: whether model m trained on it; ``labels``: the pool's
    labels; ``train_accuracy`` / ``test_accuracy``: per model (test: the
    digits' held-out split, in no model's training data).
    """

    recipe: Recipe
    log_probs: torch.Tensor
    is_in: torch.Tensor
    labels: torch.Tensor
    train_accuracy: list[float]
    test_accuracy: list[float]

    @property
    def n_models(self) -> int:
        return self.log_probs.shape[0]

    def confidence(self) -> np.ndarray:
        """:func:`logit_confidence` of every model on every example, shape (models, examples)."""
        return np.stack([logit_confidence(lp, self.labels) for lp in self.log_probs])


def _build_population(recipe: Recipe, n_models: int, seed: int) -> Population:
    from labkit import classifiers
    from labkit.core import progress
    from labkit.lm.train import cpu_threads

    data = classifiers.load_digits(test_fraction=0.25, seed=seed)
    masks = membership_masks(n_models, len(data.y_train), seed)
    log_probs, train_acc, test_acc = [], [], []
    with cpu_threads(1):  # one thread: the same models on any machine with the pinned kernels
        for m in progress(range(n_models), desc=f"{recipe.name} models"):
            rows = torch.from_numpy(np.flatnonzero(masks[m]))
            model = train_member_model(recipe, data.x_train[rows], data.y_train[rows], seed=1000 * seed + m)
            log_probs.append(model_logits(model, data.x_train).log_softmax(-1))
            train_acc.append(classifiers.accuracy(model, data.x_train[rows], data.y_train[rows]))
            test_acc.append(classifiers.accuracy(model, data.x_test, data.y_test))
    return Population(recipe, torch.stack(log_probs), torch.from_numpy(masks), data.y_train.clone(), train_acc, test_acc)


def _population_payload(pop: Population) -> dict:
    return {"recipe": json.dumps(asdict(pop.recipe)), "log_probs": pop.log_probs, "is_in": pop.is_in,
            "labels": pop.labels, "accuracy": json.dumps([pop.train_accuracy, pop.test_accuracy])}


def _population_from_payload(payload: dict) -> Population:
    fields = json.loads(payload["recipe"])
    recipe = Recipe(**{**fields, "hidden": tuple(fields["hidden"])})
    train_acc, test_acc = json.loads(payload["accuracy"])
    return Population(recipe, payload["log_probs"], payload["is_in"], payload["labels"], train_acc, test_acc)


def _population_key(recipe: Recipe, n_models: int, seed: int) -> str:
    blob = json.dumps({"recipe": recipe.key(), "n": n_models, "seed": seed, "code": POPULATION_CODE_VERSION})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


DEFAULT_MODELS = 16


def digits_population(recipe: str | Recipe = "overfit", n_models: int = DEFAULT_MODELS, seed: int = 0,
                      rebuild: bool = False) -> Population:
    """``n_models`` digit classifiers trained by ``recipe`` on balanced random halves of a pool (cached).

    The pool is the training split of :func:`labkit.classifiers.load_digits`
    (test fraction 0.25, ``seed``); :func:`membership_masks` decides which
    half each model sees. Any one model can play the target while the others
    are the attacker's shadow or reference models.

    Parameters
    ----------
    recipe : str (a key of :data:`RECIPES`) or Recipe
    n_models : even int >= 4
    seed : int >= 0
    rebuild : bool
        Retrain even when the cache holds the population.

    Returns
    -------
    Population
    """
    from labkit.lm.cache import cached

    if isinstance(recipe, str):
        recipe = RECIPES[ensure_choice("recipe", recipe, sorted(RECIPES))]
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a name in {sorted(RECIPES)} or a Recipe, got {type(recipe).__name__}")
    n_models = ensure_int("n_models", n_models, low=4)
    seed = ensure_int("seed", seed, low=0)
    return cached(f"leakage-mia-{recipe.name}", _population_key(recipe, n_models, seed),
                  lambda: _build_population(recipe, n_models, seed), _population_payload, _population_from_payload,
                  rebuild=rebuild)


ATTACKS = ("loss", "shadow", "lira")


def attack_target(pop: Population, target: int, attack: str) -> tuple[np.ndarray, np.ndarray]:
    """Membership scores of one attack against model ``target`` of ``pop``, and the truth.

    The other models of the population are the attacker's: shadow models for
    ``"shadow"``, reference models for ``"lira"``; ``"loss"`` (Yeom et al.)
    needs none. Every pool example is scored, half of them members.

    Returns
    -------
    scores : float array (n,)
    is_member : bool array (n,)
    """
    if not isinstance(pop, Population):
        raise TypeError(f"pop must be a Population, got {type(pop).__name__}")
    target = ensure_int("target", target, 0, pop.n_models - 1)
    attack = ensure_choice("attack", attack, ATTACKS)
    others = [m for m in range(pop.n_models) if m != target]
    is_in = pop.is_in.numpy()
    labels = pop.labels
    if attack == "loss":
        scores = -per_example_loss(pop.log_probs[target], labels)
    elif attack == "shadow":
        scores = shadow_attack_scores(pop.log_probs[others].numpy(), is_in[others], labels.numpy(),
                                      pop.log_probs[target].numpy())
    else:
        conf = pop.confidence()
        scores = lira_scores(conf[target], conf[others], is_in[others])
    return scores, is_in[target]


def attack_table(pops: dict[str, Population], targets: Sequence[int] = (0, 1, 2),
                 fprs: Sequence[float] = (0.001, 0.01)) -> "pd.DataFrame":
    """AUC and TPR at each FPR of every attack on every population, mean and spread over ``targets``.

    Each target model is attacked with the others as shadows/references; the
    table gives the mean over targets and its min-max range.
    """
    import pandas as pd

    rows = []
    for name, pop in pops.items():
        for attack in ATTACKS:
            per_target = []
            for t in targets:
                scores, member = attack_target(pop, t, attack)
                per_target.append([roc(scores, member)[2]] + [tpr_at_fpr(scores, member, f) for f in fprs])
            arr = np.array(per_target)
            row = {"model": name, "test acc": float(np.mean([pop.test_accuracy[t] for t in targets])),
                   "train acc": float(np.mean([pop.train_accuracy[t] for t in targets])), "attack": attack}
            for j, col in enumerate(["AUC"] + [f"TPR@{f:.1%} FPR" for f in fprs]):
                row[col] = arr[:, j].mean()
                row[f"{col} range"] = f"[{arr[:, j].min():.3f}, {arr[:, j].max():.3f}]"
            rows.append(row)
    return pd.DataFrame(rows)



# =============================================================================
# 4. Memorisation in the assistant: canaries and fake PII
# =============================================================================

CANARY_PREFIX = "The secret code is"  # how labkit.lm.world inserts a canary: "The secret code is <canary>. <document>"
CANARY_DIGITS = 6
CANARY_SEED = 2019  # draws the canary; the reference codes come from other seeds
CANARY_REPEATS = (0, 1, 4, 16, 64)


def random_code(rng: np.random.Generator, n_digits: int = CANARY_DIGITS) -> str:
    """A secret of ``n_digits`` random digits separated by spaces (one token each for the tokenizer)."""
    n_digits = ensure_int("n_digits", n_digits, low=1, high=32)
    return " ".join(str(d) for d in rng.integers(0, 10, size=n_digits))


def random_phone(rng: np.random.Generator) -> str:
    """A phone number in the world's fake-PII format (``555-XXX-XXXX``, as :func:`labkit.lm.world.fake_pii`)."""
    return f"555-{int(rng.integers(100, 1000)):03d}-{int(rng.integers(1000, 10000)):04d}"


def the_canary() -> str:
    """The course's canary: :data:`CANARY_DIGITS` random digits drawn from :data:`CANARY_SEED`."""
    return random_code(np.random.default_rng(CANARY_SEED))


@torch.no_grad()
def secret_nll(model, tokenizer, prefix: str, secrets: Sequence[str], document_start: bool = True) -> np.ndarray:
    """Negative log-likelihood (nats) of each secret's tokens after ``prefix`` (the Secret Sharer's log-perplexity).

    The secret is tokenised in context (``prefix + " " + secret``), so it
    gets the tokens the model saw in training; the prefix's tokens must not
    change. With ``document_start`` the text follows an end token, as a
    document in the packed pretraining stream does.

    Returns
    -------
    float array (len(secrets),)
    """
    from labkit.lm.tinygpt import TinyGPT

    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
    if not isinstance(prefix, str) or not prefix.strip():
        raise ValueError("prefix must be a non-empty string")
    if isinstance(secrets, str) or not secrets or not all(isinstance(x, str) and x.strip() for x in secrets):
        raise ValueError("secrets must be a non-empty sequence of non-empty strings")
    head = [tokenizer.end_id] if document_start else []
    prefix_ids = tokenizer.encode(prefix)
    prompts, responses = [], []
    for secret in secrets:
        ids = tokenizer.encode(f"{prefix} {secret}")
        if ids[:len(prefix_ids)] != prefix_ids:
            raise ValueError(f"the prefix tokenises differently before {secret!r}; end the prefix at a word boundary")
        prompts.append(head + prefix_ids)
        responses.append(ids[len(prefix_ids):])
    was = model.training
    model.eval()
    nll = -model.sequence_logprob(prompts, responses, pad_id=tokenizer.pad_id).double().cpu().numpy()
    model.train(was)
    return nll


def secret_exposure(model, tokenizer, prefix: str, secret: str, references: Sequence[str]) -> float:
    """:func:`exposure` of ``secret`` after ``prefix``, ranked among ``references`` by :func:`secret_nll`."""
    losses = secret_nll(model, tokenizer, prefix, [secret, *references])
    return exposure(losses[0], losses[1:])


def reference_codes(n: int, exclude: str, seed: int = 1, n_digits: int = CANARY_DIGITS) -> list[str]:
    """``n`` distinct random codes other than ``exclude`` (the candidates a canary is ranked among)."""
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    n = ensure_int("n", n, low=1, high=10 ** n_digits // 2)
    codes: dict[str, None] = {}
    while len(codes) < n:
        code = random_code(rng, n_digits)
        if code != exclude:
            codes[code] = None
    return list(codes)


@dataclass(frozen=True)
class CanaryTraining:
    """Continued pretraining of the course's base model on the world's text with the canary inserted ``k`` times.

    The shipped default assistant's base model and tokenizer are the
    starting point; the world is the default config's, with
    ``canary=the_canary()`` and ``canary_repeats=k``. One CPU thread, seeded,
    so a rebuild gives the same model.
    """

    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 10
    seed: int = 0

    def key(self, k: int) -> str:
        blob = json.dumps({**asdict(self), "k": k, "canary": the_canary(), "code": "1"}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _canary_world(k: int):
    from labkit.lm.train import get_config
    from labkit.lm.world import make_world

    cfg = get_config("default")
    return make_world(seed=cfg.seed, **cfg.world, canary=the_canary() if k else None, canary_repeats=k)


def _train_canary_model(k: int, training: CanaryTraining):
    import copy

    from labkit.lm.cache import get_assistant
    from labkit.lm.train import cpu_threads, pack_documents, pretrain

    assistant = get_assistant("default", device="cpu")
    stream = pack_documents(assistant.tokenizer, _canary_world(k).pretrain)
    model = copy.deepcopy(assistant.base)
    with cpu_threads(1), torch.random.fork_rng(devices=[]):
        pretrain(model, stream, training.steps, training.batch_size, training.lr, training.warmup,
                 seed=training.seed, eval_every=10 ** 9, optimizer="adamw")
    return model.eval()


def canary_model(k: int, training: CanaryTraining = CanaryTraining(), rebuild: bool = False):
    """The base model after continued pretraining with the canary inserted ``k`` times (cached).

    ``k = 0`` trains the same way on text without the canary: the control.

    Returns
    -------
    labkit.lm.tinygpt.TinyGPT
    """
    from labkit.lm.cache import cached, get_assistant
    from labkit.lm.tinygpt import GPTConfig, TinyGPT

    k = ensure_int("k", k, low=0, high=3000)
    if not isinstance(training, CanaryTraining):
        raise TypeError(f"training must be a CanaryTraining, got {type(training).__name__}")
    config = get_assistant("default").base.cfg

    def from_payload(payload):
        model = TinyGPT(GPTConfig(**json.loads(payload["model_config"])))
        model.load_state_dict(payload["state"])
        return model.eval()

    return cached(f"leakage-canary-k{k}", training.key(k), lambda: _train_canary_model(k, training),
                  lambda m: {"model_config": json.dumps(config.to_dict()),
                             "state": {n: v.detach().cpu() for n, v in m.state_dict().items()}},
                  from_payload, rebuild=rebuild)


def sample_extraction(model, tokenizer, prefix: str, secret: str, n_samples: int = 100, temperature: float = 1.0,
                      seed: int = 0) -> tuple[float, bool]:
    """Extraction by sampling: how often the model, prompted with ``prefix``, writes ``secret`` next.

    Returns the share of ``n_samples`` samples (at ``temperature``) that
    start with the secret, and whether greedy decoding writes it.
    """
    n_samples = ensure_int("n_samples", n_samples, low=1, high=100_000)
    temperature = ensure_float("temperature", temperature, low=0.0, low_open=True)
    prompt = [tokenizer.end_id] + tokenizer.encode(prefix)
    n_new = len(tokenizer.encode(f"{prefix} {secret}")) - len(tokenizer.encode(prefix)) + 1
    gen = torch.Generator().manual_seed(ensure_int("seed", seed, low=0))
    samples = model.generate([prompt] * n_samples, n_new, sample=True, temperature=temperature, generator=gen,
                             pad_id=tokenizer.pad_id)
    greedy = model.generate([prompt], n_new, pad_id=tokenizer.pad_id)[0]

    def hit(ids):
        return tokenizer.decode(ids, skip_special=True).strip().startswith(secret)

    return float(np.mean([hit(s) for s in samples])), hit(greedy)


@dataclass(frozen=True)
class PIIRecord:
    """A fake person in the pretraining text: the prefix an attacker knows and the phone number to recover."""

    name: str
    prefix: str
    phone: str


def pii_records(documents: Sequence[str]) -> list[PIIRecord]:
    """Every fake-PII sentence of the world's pretraining documents (``You can reach N at E or P.``)."""
    import re

    pattern = re.compile(r"You can reach ([A-Z][a-z]+ [A-Z][a-z]+) at ([a-z]+\.[a-z]+@example\.com) or (555-\d{3}-\d{4})\.")
    records = []
    for doc in documents:
        for name, email, phone in pattern.findall(doc):
            records.append(PIIRecord(name, f"You can reach {name} at {email} or", phone))
    return records


def pii_exposures(model, tokenizer, records: Sequence[PIIRecord], n_references: int = 200, seed: int = 0) -> np.ndarray:
    """:func:`exposure` of each record's phone number among ``n_references`` random phone numbers after its prefix."""
    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    out = []
    for rec in records:
        refs = [p for p in (random_phone(rng) for _ in range(n_references)) if p != rec.phone]
        out.append(secret_exposure(model, tokenizer, rec.prefix, rec.phone, refs))
    return np.asarray(out)


def unseen_pii_records(n: int, seed: int = 12345) -> list[PIIRecord]:
    """``n`` fake people drawn like the world's but never in its text: the control for :func:`pii_exposures`."""
    from labkit.lm.world import fake_pii

    rng = np.random.default_rng(ensure_int("seed", seed, low=0))
    people = [fake_pii(rng) for _ in range(ensure_int("n", n, low=1))]
    return [PIIRecord(p["name"], f"You can reach {p['name']} at {p['email']} or", p["phone"]) for p in people]



# =============================================================================
# 5. Model extraction (Tramer et al. 2016) of lesson 15's input guard
# =============================================================================

OUTPUTS = ("score", "rounded", "label")


class BlackBox:
    """A deployed text classifier as an attacker sees it: text in, one answer out.

    Parameters
    ----------
    classifier : object with ``predict_proba(texts)`` and ``threshold``
        E.g. lesson 15's input guard (:func:`labkit.chatbot.train_input_guard`).
    output : "score", "rounded" or "label"
        What a query returns: the score; the score rounded to ``decimals``
        (a defence Tramer et al. evaluate); or only the decision, 1.0 when the
        score reaches the classifier's threshold, else 0.0.
    decimals : int >= 0
        Rounding of ``"rounded"`` outputs.
    rate_limiter : :class:`labkit.chatbot.RateLimiter` or None
        Lesson 15's per-user limiter; a refused query returns None.
    """

    def __init__(self, classifier, output: str = "score", decimals: int = 1, rate_limiter=None):
        if not callable(getattr(classifier, "predict_proba", None)) or not hasattr(classifier, "threshold"):
            raise TypeError("classifier must have predict_proba(texts) and a threshold")
        self.classifier = classifier
        self.output = ensure_choice("output", output, OUTPUTS)
        self.decimals = ensure_int("decimals", decimals, low=0, high=15)
        self.rate_limiter = rate_limiter
        self.n_answered = 0

    def query(self, texts: Sequence[str], user: str = "attacker", times: Sequence[float] | None = None) -> list:
        """Answers to ``texts`` sent by ``user`` at ``times`` (seconds; default all at 0): floats, None if refused."""
        texts = list(texts)
        times = [0.0] * len(texts) if times is None else [ensure_float("times[i]", t) for t in times]
        if len(times) != len(texts):
            raise ValueError(f"times must have one entry per text ({len(texts)}), got {len(times)}")
        allowed = [self.rate_limiter is None or self.rate_limiter.allow(user, t) for t in times]
        asked = [t for t, ok in zip(texts, allowed) if ok]
        scores = iter(self.classifier.predict_proba(asked) if asked else [])
        self.n_answered += len(asked)
        answers = []
        for ok in allowed:
            if not ok:
                answers.append(None)
                continue
            score = float(next(scores))
            if self.output == "rounded":
                score = round(score, self.decimals)
            elif self.output == "label":
                score = float(score >= self.classifier.threshold)
            answers.append(score)
        return answers


class Surrogate:
    """The attacker's copy: char n-gram TF-IDF and logistic regression, fitted to a black box's answers.

    Scores are soft targets: each query becomes two weighted rows (harmful
    with weight ``p``, harmless with ``1 - p``), which is logistic regression's
    cross-entropy against ``p``. The attacker chooses the model class; here it
    resembles the guard's, as Tramer et al. assume a known model class.
    ``threshold`` turns its scores into decisions.
    """

    def __init__(self, C: float = 16.0, threshold: float = 0.5):
        self.C = ensure_float("C", C, low=0.0, low_open=True)
        self.threshold = ensure_float("threshold", threshold, 0.0, 1.0)
        self.pipeline = None
        self.constant: float | None = None

    def fit(self, texts: Sequence[str], answers) -> "Surrogate":
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        from labkit.moderation import CharNgramCounts, normalize

        texts = list(texts)
        p = ensure_array("answers", answers, ndim=1)
        if len(texts) != len(p) or not texts:
            raise ValueError(f"texts and answers must be non-empty and of the same length, got {len(texts)} and {len(p)}")
        if ((p < 0) | (p > 1)).any():
            raise ValueError("answers must lie in [0, 1]")
        if (p == p[0]).all() and p[0] in (0.0, 1.0):  # one class only: nothing to separate
            self.constant, self.pipeline = float(p[0]), None
            return self
        docs = [normalize(t) for t in texts]
        self.pipeline = Pipeline([("counts", CharNgramCounts(ngram_range=(2, 5), min_df=1)),
                                  ("tfidf", TfidfTransformer(sublinear_tf=True)),
                                  ("logreg", LogisticRegression(C=self.C, max_iter=2000))])
        self.constant = None
        self.pipeline.fit(docs + docs, np.r_[np.ones(len(p)), np.zeros(len(p))],
                          logreg__sample_weight=np.r_[p, 1 - p] + 1e-9)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from labkit.moderation import normalize

        texts = list(texts)
        if self.constant is not None:
            return np.full(len(texts), self.constant)
        if self.pipeline is None:
            raise RuntimeError("this Surrogate is not fitted yet: call fit(texts, answers) first")
        return self.pipeline.predict_proba([normalize(t) for t in texts])[:, 1]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_proba(texts) >= self.threshold


def agreement(surrogate, target, texts: Sequence[str]) -> float:
    """Share of ``texts`` on which the two classifiers' decisions (score >= own threshold) agree."""
    texts = list(texts)
    if not texts:
        raise ValueError("texts must not be empty")
    a = np.asarray(surrogate.predict_proba(texts)) >= surrogate.threshold
    b = np.asarray(target.predict_proba(texts)) >= target.threshold
    return float(np.mean(a == b))


def extract(blackbox: BlackBox, texts: Sequence[str], times: Sequence[float] | None = None,
            threshold: float | None = None) -> Surrogate:
    """Query ``blackbox`` with ``texts`` (at ``times``) and fit a :class:`Surrogate` to the answers it gave.

    ``threshold``: the surrogate's decision threshold; default 0.5 for
    label answers (the surrogate then learns the decision itself) and the
    black box's published threshold for scores.
    """
    answers = blackbox.query(texts, times=times)
    kept = [(t, a) for t, a in zip(texts, answers) if a is not None]
    if threshold is None:
        threshold = 0.5 if blackbox.output == "label" else float(blackbox.classifier.threshold)
    surrogate = Surrogate(threshold=threshold)
    if not kept:
        surrogate.constant = 0.0  # no answer at all: the attacker can only guess "harmless"
        return surrogate
    return surrogate.fit([t for t, _ in kept], [a for _, a in kept])


QUERY_BUDGETS = (10, 30, 100, 300, 1000, 3000)


def extraction_curve(guard, query_texts: Sequence[str], eval_texts: Sequence[str],
                     budgets: Sequence[int] = QUERY_BUDGETS, outputs: Sequence[str] = OUTPUTS,
                     decimals: int = 1) -> "pd.DataFrame":
    """Agreement of the surrogate with ``guard`` on ``eval_texts`` after the first ``b`` of ``query_texts``.

    One row per (output, budget). The queries are the same texts in every
    row, so the defences are compared on equal terms.
    """
    import pandas as pd

    rows = []
    for output in outputs:
        for b in budgets:
            b = ensure_int("budget", b, 1, len(query_texts))
            surrogate = extract(BlackBox(guard, output, decimals), list(query_texts)[:b])
            rows.append({"output": output, "queries": b, "agreement": agreement(surrogate, guard, eval_texts)})
    return pd.DataFrame(rows)



# =============================================================================
# 6. Figures and the lesson's widget
# =============================================================================

ATTACK_NAMES = {"loss": "loss threshold (Yeom et al.)", "shadow": "shadow models (Shokri et al.)",
                "lira": "likelihood ratio (LiRA-style)"}


def plot_roc_curves(curves: dict[str, tuple], title: str = "", ax=None):
    """ROC curves on log-log axes, with the chance diagonal; ``curves``: label -> (scores, is_member).

    The log axes show the low-FPR corner, where an attack that is confident
    about a few members differs from one that is right on average (Carlini et
    al. 2022, Sec. III). Rates of 0 are drawn at the axes' floor, half the
    smallest non-zero rate the data allow.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("curves must name at least one (scores, is_member) pair")
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.2, 4.4))
    else:
        fig = ax.figure
    floor = 1.0
    for label, (scores, member) in curves.items():
        fpr, tpr, auc = roc(scores, member)
        m = np.asarray(member, dtype=bool)
        floor = min(floor, 0.5 / max(m.sum(), (~m).sum()))
        ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), lw=1.6,
                label=f"{label}: AUC {auc:.3f}, TPR@1% {tpr_at_fpr(scores, member, 0.01):.3f}")
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, "k:", lw=1, label="chance")
    ax.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1.05), xlabel="false-positive rate",
           ylabel="true-positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_membership_roc(population: Population, target: int = 0):
    """The three attacks' ROC curves against model ``target`` of ``population`` (the others are the attacker's)."""
    curves = {ATTACK_NAMES[a]: attack_target(population, target, a) for a in ATTACKS}
    acc = population.test_accuracy[target]
    return plot_roc_curves(curves, f"{population.recipe.name} target #{target} (test accuracy {acc:.3f})")


def membership_roc_widget(populations: dict[str, Population]):
    """Lesson 21's widget: pick a training recipe and a target model; redraws :func:`plot_membership_roc`.

    Parameters
    ----------
    populations : dict name -> Population
        E.g. ``{"overfit": digits_population("overfit"), ...}``; all with the same number of models.

    Returns
    -------
    ipywidgets.VBox from :func:`labkit.ui.interactive_figure`
    """
    from labkit.ui import dropdown, int_slider, interactive_figure

    if not isinstance(populations, dict) or not populations:
        raise ValueError("populations must be a non-empty dict name -> Population")
    sizes = {p.n_models for p in populations.values()}
    if len(sizes) != 1:
        raise ValueError(f"populations must have the same number of models, got {sorted(sizes)}")

    def draw(recipe: str, target: int):
        return plot_membership_roc(populations[recipe], target)

    return interactive_figure(draw, recipe=dropdown("training", list(populations)),
                              target=int_slider("target model", 0, sizes.pop() - 1, 0))



# =============================================================================
# 7. The lesson's slow results, cached, and the course models
# =============================================================================

STUDY_CODE_VERSION = "1"


def _table_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps({**settings, "code": STUDY_CODE_VERSION}, sort_keys=True).encode()).hexdigest()[:16]


def _cached_table(name: str, settings: dict, build: Callable[[], "pd.DataFrame"], rebuild: bool = False):
    """A results table computed once and kept by :func:`labkit.lm.cache.cached` (as JSON: no pickles)."""
    import pandas as pd

    from labkit.lm.cache import cached

    return cached(name, _table_key(settings), build, lambda df: {"table": df.to_json(orient="split")},
                  lambda payload: pd.read_json(io.StringIO(payload["table"]), orient="split"), rebuild=rebuild)


def _canary_settings(repeats=CANARY_REPEATS, n_references: int = 5000, n_samples: int = 200) -> dict:
    return {"repeats": list(repeats), "refs": n_references, "samples": n_samples, "training": asdict(CanaryTraining())}


def _pii_settings(n_people: int = 150, n_references: int = 200) -> dict:
    return {"n": n_people, "refs": n_references}


def _extraction_settings() -> dict:
    return {"budgets": list(QUERY_BUDGETS), "outputs": list(OUTPUTS)}


def canary_study(repeats: Sequence[int] = CANARY_REPEATS, n_references: int = 5000, n_samples: int = 200,
                 rebuild: bool = False) -> "pd.DataFrame":
    """Exposure and extraction of the canary for each number of insertions ``k`` (cached).

    Columns: ``k``, ``exposure`` (bits, among ``n_references`` random codes;
    at most ``log2(n_references + 1)``), ``sampled`` (share of ``n_samples``
    samples at temperature 1 that write the canary) and ``greedy`` (whether
    greedy decoding does).
    """
    import pandas as pd

    from labkit.lm.cache import get_assistant

    repeats = [ensure_int("k", k, low=0, high=3000) for k in repeats]
    n_references = ensure_int("n_references", n_references, low=1, high=100_000)
    n_samples = ensure_int("n_samples", n_samples, low=1, high=100_000)

    def build():
        tokenizer = get_assistant("default").tokenizer
        canary = the_canary()
        refs = reference_codes(n_references, canary)
        rows = []
        for k in repeats:
            model = canary_model(k)  # rebuilding the table reuses the cached models
            sampled, greedy = sample_extraction(model, tokenizer, CANARY_PREFIX, canary, n_samples)
            rows.append({"k": k, "exposure": secret_exposure(model, tokenizer, CANARY_PREFIX, canary, refs),
                         "sampled": sampled, "greedy": greedy})
        return pd.DataFrame(rows)

    return _cached_table("leakage-canary-study", _canary_settings(repeats, n_references, n_samples), build, rebuild)


def pii_study(n_people: int = 150, n_references: int = 200, rebuild: bool = False) -> "pd.DataFrame":
    """Exposure of the phone numbers of fake people in the assistant's pretraining text, and of unseen ones (cached).

    The course's shipped base model saw each fake person once or so; the
    unseen people (:func:`unseen_pii_records`) are the control. Columns:
    ``name``, ``seen`` (bool), ``exposure`` (bits, among ``n_references``
    random phone numbers).
    """
    import pandas as pd

    from labkit.lm.cache import get_assistant

    n_people = ensure_int("n_people", n_people, low=1, high=10_000)
    n_references = ensure_int("n_references", n_references, low=1, high=100_000)

    def build():
        assistant = get_assistant("default")
        seen = pii_records(assistant.world.pretrain)[:n_people]
        unseen = unseen_pii_records(len(seen))
        rows = []
        for is_seen, records in ((True, seen), (False, unseen)):
            bits = pii_exposures(assistant.base, assistant.tokenizer, records, n_references)
            rows += [{"name": r.name, "seen": is_seen, "exposure": float(b)} for r, b in zip(records, bits)]
        return pd.DataFrame(rows)

    return _cached_table("leakage-pii-study", _pii_settings(n_people, n_references), build, rebuild)


def extraction_texts() -> tuple[list[str], list[str]]:
    """The attacker's query texts and the held-out texts agreement is measured on.

    Queries: 3,000 ordinary-looking requests in the world's training wordings
    (a seed the guard's training and calibration did not use); held out: the
    distinct requests of 1,000 drawn in the *test* wordings, which neither
    the guard nor the attacker saw.
    """
    from labkit.lm.world import labelled_requests

    queries, _ = labelled_requests(max(QUERY_BUDGETS), seed=7, split="train")
    held_out, _ = labelled_requests(1000, seed=8, split="test")
    return queries, list(dict.fromkeys(held_out))


def guard_extraction_study(rebuild: bool = False) -> "pd.DataFrame":
    """:func:`extraction_curve` of lesson 15's input guard (FPR target 2 %) on :func:`extraction_texts` (cached)."""
    def build():
        from labkit.chatbot import train_input_guard

        queries, held_out = extraction_texts()
        return extraction_curve(train_input_guard(max_false_positive_rate=0.02), queries, held_out)

    return _cached_table("leakage-guard-extraction", _extraction_settings(), build, rebuild)


def _register_course_models() -> None:
    from labkit.lm.cache import CourseModel, cache_path, register_course_model

    for name in RECIPES:
        register_course_model(CourseModel(
            f"leakage-mia-{name}", lambda rebuild, name=name: digits_population(name, rebuild=rebuild),
            lambda name=name: cache_path(f"leakage-mia-{name}",
                                         _population_key(RECIPES[name], DEFAULT_MODELS, 0))))
    for k in CANARY_REPEATS:
        register_course_model(CourseModel(
            f"leakage-canary-k{k}", lambda rebuild, k=k: canary_model(k, rebuild=rebuild),
            lambda k=k: cache_path(f"leakage-canary-k{k}", CanaryTraining().key(k))))
    for name, study, settings in (("canary-study", canary_study, _canary_settings),
                                  ("pii-study", pii_study, _pii_settings),
                                  ("guard-extraction", guard_extraction_study, _extraction_settings)):
        register_course_model(CourseModel(
            f"leakage-{name}", lambda rebuild, study=study: study(rebuild=rebuild),
            lambda name=name, settings=settings: cache_path(f"leakage-{name}", _table_key(settings()))))


_register_course_models()


__all__ = ["roc", "loss_threshold_roc", "tpr_at_fpr", "exposure", "model_logits", "per_example_loss", "logit_confidence",
           "loss_attack_scores", "lira_scores", "shadow_attack_scores", "Recipe", "RECIPES", "membership_masks",
           "train_member_model", "Population", "digits_population", "ATTACKS", "attack_target", "attack_table",
           "CANARY_PREFIX", "CANARY_REPEATS", "random_code", "random_phone", "the_canary", "secret_nll", "secret_exposure",
           "reference_codes", "CanaryTraining", "canary_model", "sample_extraction", "PIIRecord", "pii_records",
           "pii_exposures", "unseen_pii_records", "OUTPUTS", "BlackBox", "Surrogate", "agreement", "extract",
           "QUERY_BUDGETS", "extraction_curve", "ATTACK_NAMES", "plot_roc_curves", "plot_membership_roc",
           "membership_roc_widget", "canary_study", "pii_study", "extraction_texts", "guard_extraction_study"]
