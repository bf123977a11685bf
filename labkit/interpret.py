"""Lesson 08: attributions, model-agnostic explanations, probes and attention.

- :func:`gradient_saliency` (Simonyan et al. 2014) and :func:`gradient_x_input`
  (Shrikumar et al. 2016): one backward pass each.
- :func:`integrated_gradients` (Sundararajan et al. 2017, eq. 1 and its
  Riemann / Gauss-Legendre approximations), vectorised: every interpolation
  step of every sample goes through one batched forward/backward (chunked when
  large), with the completeness error |sum(attr) - (F(x) - F(x'))| reported.
  Quadrature names follow Captum's.
- :func:`shap_kernel` (Lundberg and Lee 2017, through the ``shap`` package) and
  :func:`lime_tabular` (Ribeiro et al. 2016, through ``lime``), seeded.
- :func:`rank_agreement` (Spearman's rho between attribution vectors) and
  :func:`randomize_weights` for the model-randomisation sanity check of
  Adebayo et al. (2018).
- :func:`surrogate_tree`: rule extraction by a decision tree fitted to the
  model's predictions, with its fidelity (agreement) on held-out data.
- :func:`linear_probe` on hidden representations (Alain and Bengio 2016).
- :class:`AttentionClassifier`: a one-layer attention-pooling classifier whose
  attention map can be read, trained on :func:`make_signal_token_task`, where the
  label depends on exactly one token.
"""
from __future__ import annotations

import copy
import functools

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from labkit.ui import dropdown, int_slider, interactive_figure
from labkit.validation import ensure_array, ensure_choice, ensure_float, ensure_instance, ensure_int, ensure_tensor

IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


# ---------------------------------------------------------------- gradients
def _select_target(output: torch.Tensor, target, batch: int) -> torch.Tensor:
    """Return one scalar output per sample, shape (batch,)."""
    if output.ndim == 1:
        if target is not None and not (isinstance(target, int) and target == 0):
            raise ValueError("target must be None (or 0) for a model with one output per sample")
        return output
    if output.ndim != 2:
        raise ValueError(f"the model must return shape (batch,) or (batch, classes), got {tuple(output.shape)}")
    if target is None:
        if output.shape[1] != 1:
            raise ValueError(f"target is required: the model returns {output.shape[1]} outputs per sample")
        return output[:, 0]
    if isinstance(target, torch.Tensor):
        target = target.to(output.device).long().reshape(-1)
        if target.numel() == 1:
            target = target.expand(output.shape[0])
        elif target.numel() == batch:
            target = target.repeat(output.shape[0] // batch)  # IG stacks path points step-major
        else:
            raise ValueError(f"target must hold 1 or batch={batch} class indices, got {target.numel()}")
        if ((target < 0) | (target >= output.shape[1])).any():
            raise ValueError(f"target must be in [0, {output.shape[1] - 1}]")
        return output.gather(1, target[:, None])[:, 0]
    target = ensure_int("target", target, 0, output.shape[1] - 1)
    return output[:, target]


def _check_input(x) -> torch.Tensor:
    x = ensure_tensor("x", x, floating=True)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be batched and non-empty, shape (batch, ...), got shape {tuple(x.shape)}")
    return x


def gradient_saliency(model: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """Vanilla gradient saliency |dF_target/dx| (Simonyan et al. 2014, eq. 2 and sec. 3.1).

    Parameters
    ----------
    model : nn.Module
        Maps (batch, ...) to (batch,) or (batch, classes).
    x : torch.Tensor, shape (batch, ...)
    target : int, LongTensor of shape (batch,), or None
        Output column to explain; ``None`` only for single-output models.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``, non-negative.
    """
    x = _check_input(x).detach().requires_grad_(True)
    out = _select_target(model(x), target, x.shape[0])
    (grad,) = torch.autograd.grad(out.sum(), x)  # samples are independent: the sum separates them
    return grad.abs()


def gradient_x_input(model: nn.Module, x: torch.Tensor, target=None) -> torch.Tensor:
    """Gradient times input, x * dF_target/dx (Shrikumar et al. 2016). Same arguments as :func:`gradient_saliency`."""
    x = _check_input(x).detach().requires_grad_(True)
    out = _select_target(model(x), target, x.shape[0])
    (grad,) = torch.autograd.grad(out.sum(), x)
    return (grad * x).detach()


def quadrature(steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Nodes alpha in [0, 1] and weights for integrating over the straight-line path.

    Same conventions as Captum's ``approximation_methods``: left / right / middle
    Riemann sums with weight 1/steps, the trapezoid rule on ``linspace(0, 1, steps)``,
    and Gauss-Legendre nodes mapped from [-1, 1] to [0, 1].

    Returns
    -------
    (alphas, weights) : two arrays of length ``steps``; the weights sum to 1.
    """
    method = ensure_choice("method", method, IG_METHODS)
    steps = ensure_int("steps", steps, 2 if method == "riemann_trapezoid" else 1, 100_000)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_trapezoid":
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[method]
    return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor | None = None,
    target=None,
    steps: int = 50,
    method: str = "gausslegendre",
    chunk_size: int = 4096,
    return_error: bool = False,
):
    """Integrated gradients (Sundararajan, Taly and Yan 2017).

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x'))/dx_i da   (their eq. 1),
    approximated by sum_k w_k * grad F(x' + a_k (x - x')) with the quadrature of
    :func:`quadrature`. By the fundamental theorem of calculus (their
    "completeness" axiom) sum_i IG_i = F(x) - F(x') exactly; the gap of the
    approximation is the completeness error.

    Parameters
    ----------
    model : nn.Module
        Maps (batch, ...) to (batch,) or (batch, classes); evaluated as is (put
        it in ``eval()`` mode first if it has dropout or batch norm).
    x : torch.Tensor, shape (batch, ...)
    baseline : torch.Tensor or None
        Same shape as ``x`` or as one sample; ``None`` means zeros.
    target : int, LongTensor of shape (batch,), or None
        Output column explained; ``None`` only for single-output models.
    steps : int >= 1
        Quadrature nodes.
    method : {"riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"}
    chunk_size : int
        At most this many interpolated inputs per forward/backward pass.
    return_error : bool
        Also return the completeness error per sample.

    Returns
    -------
    torch.Tensor, or (torch.Tensor, torch.Tensor)
        Attributions of the shape of ``x``; with ``return_error``, also
        |sum(attr) - (F(x) - F(baseline))| of shape (batch,).
    """
    x = _check_input(x).detach()
    alphas, weights = quadrature(steps, method)
    chunk_size = ensure_int("chunk_size", chunk_size, 1, None)
    if baseline is None:
        baseline = torch.zeros_like(x)
    else:
        baseline = ensure_tensor("baseline", baseline, floating=True).to(x.device, x.dtype)
        if baseline.shape == x.shape[1:]:
            baseline = baseline.expand_as(x)
        if baseline.shape != x.shape:
            raise ValueError(f"baseline must have the shape of x {tuple(x.shape)} or of one sample, got {tuple(baseline.shape)}")
    batch, delta = x.shape[0], x - baseline
    alpha_t = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
    weight_t = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    view = (-1, 1) + (1,) * (x.ndim - 1)
    path_grad = torch.zeros_like(x)
    steps_per_chunk = max(1, chunk_size // batch)
    for start in range(0, len(alphas), steps_per_chunk):
        a = alpha_t[start:start + steps_per_chunk]
        # (k, batch, ...) -> (k * batch, ...): all k path points in one pass
        points = (baseline.unsqueeze(0) + a.view(view) * delta.unsqueeze(0)).reshape(-1, *x.shape[1:])
        points.requires_grad_(True)
        out = _select_target(model(points), target, batch)
        # each output depends on its own row only, so one backward of the sum gives
        # every per-point gradient; no graph of the gradient is needed (no create_graph)
        (grad,) = torch.autograd.grad(out.sum(), points)
        w = weight_t[start:start + steps_per_chunk].view(view)
        path_grad += (w * grad.reshape(len(a), *x.shape)).sum(0)
    attributions = delta * path_grad
    if not return_error:
        return attributions
    with torch.no_grad():
        gap = _select_target(model(x), target, batch) - _select_target(model(baseline), target, batch)
        error = (attributions.reshape(batch, -1).sum(1) - gap).abs()
    return attributions, error


# ---------------------------------------------------------------- tabular demo
class TabularMLP(nn.Module):
    """A small MLP classifier for standardised tabular features."""

    def __init__(self, n_features: int, hidden: int = 16, n_classes: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Numpy in, numpy probabilities out (the interface shap and lime call)."""
        with torch.no_grad():
            t = torch.as_tensor(np.asarray(x, dtype=np.float32))
            return torch.softmax(self(t), dim=1).numpy().astype(float)


@functools.lru_cache(maxsize=2)
def breast_cancer_demo(seed: int = 0, hidden: int = 16, epochs: int = 300) -> dict:
    """Train :class:`TabularMLP` on scikit-learn's bundled breast-cancer data.

    Features are standardised with training statistics; 70 % train, 30 % test,
    stratified. Cached, so widgets and lessons reuse one model.

    Returns
    -------
    dict with model, x_train, x_test, y_train, y_test (numpy float32 / int),
    feature_names, class_names, train_acc, test_acc.
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target)
    mean, std = x_tr.mean(0), x_tr.std(0)
    x_tr, x_te = ((x_tr - mean) / std).astype(np.float32), ((x_te - mean) / std).astype(np.float32)
    torch.manual_seed(seed)
    model = TabularMLP(x_tr.shape[1], hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr).long()
    for _ in range(epochs):  # full batch: deterministic, and fast at this size
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    model.eval()
    acc = lambda X, y: float((model.predict_proba(X).argmax(1) == y).mean())  # noqa: E731
    return {
        "model": model, "x_train": x_tr, "x_test": x_te, "y_train": y_tr, "y_test": y_te,
        "feature_names": list(data.feature_names), "class_names": list(data.target_names),
        "train_acc": acc(x_tr, y_tr), "test_acc": acc(x_te, y_te),
    }


def shap_kernel(predict_proba, background: np.ndarray, x: np.ndarray, target: int = 1,
                n_samples: int = 300, seed: int = 0) -> np.ndarray:
    """Kernel SHAP values (Lundberg and Lee 2017, eq. 8-9) through the ``shap`` package.

    Parameters
    ----------
    predict_proba : callable
        numpy (n, d) -> probabilities (n, classes).
    background : np.ndarray, shape (m, d)
        Reference samples that stand in for "feature absent"; keep m small
        (cost is n_samples * m model rows per explained sample).
    x : np.ndarray, shape (n, d) or (d,)
    target : int
        Class whose probability is explained.
    n_samples : int
        Coalitions sampled per explained sample.
    seed : int
        shap samples coalitions with numpy's global generator; it is seeded here.

    Returns
    -------
    np.ndarray, shape (n, d): SHAP values; each row sums to f(x) - E[f(background)].
    """
    import shap

    background = ensure_array("background", background, ndim=2, min_len=1)
    x = np.atleast_2d(ensure_array("x", x, ndim=(1, 2)))
    n_samples = ensure_int("n_samples", n_samples, 1, 100_000)
    target = ensure_int("target", target, 0, None)
    explainer = shap.KernelExplainer(lambda z: predict_proba(z)[:, target], background)
    state = np.random.get_state()
    np.random.seed(ensure_int("seed", seed, 0, 2**32 - 1))
    try:
        values = explainer.shap_values(x, nsamples=n_samples, silent=True, l1_reg=False)
    finally:
        np.random.set_state(state)
    return np.asarray(values, dtype=float).reshape(x.shape)


def lime_tabular(predict_proba, training_data: np.ndarray, x: np.ndarray, target: int = 1,
                 n_samples: int = 500, seed: int = 0, feature_names=None) -> np.ndarray:
    """LIME weights (Ribeiro, Singh and Guestrin 2016, eq. 1) through the ``lime`` package.

    A weighted linear model is fitted to the classifier around ``x``; its
    coefficients (on lime's discretised features, one per input feature) are the
    explanation. Seeded through ``random_state``.

    Returns
    -------
    np.ndarray, shape (d,): the local linear weight of every feature for ``target``.
    """
    from lime.lime_tabular import LimeTabularExplainer

    training_data = ensure_array("training_data", training_data, ndim=2, min_len=2)
    x = ensure_array("x", x, ndim=1)
    n_samples = ensure_int("n_samples", n_samples, 10, 100_000)
    explainer = LimeTabularExplainer(training_data, feature_names=feature_names, mode="classification",
                                     random_state=ensure_int("seed", seed, 0, 2**32 - 1))
    exp = explainer.explain_instance(x, predict_proba, labels=(target,), num_features=x.shape[0], num_samples=n_samples)
    weights = np.zeros(x.shape[0])
    for feature, weight in exp.as_map()[target]:
        weights[feature] = weight
    return weights


TABULAR_METHODS = ("saliency", "gradient x input", "integrated gradients", "SHAP", "LIME")


def explain_tabular(demo: dict, index: int, method: str, target: int = 1) -> np.ndarray:
    """Attribution of test sample ``index`` of a :func:`breast_cancer_demo` by ``method``.

    Gradient methods use the logit of ``target``; SHAP and LIME its probability.
    The IG baseline is the training mean (zero after standardisation).
    """
    method = ensure_choice("method", method, TABULAR_METHODS)
    index = ensure_int("index", index, 0, len(demo["x_test"]) - 1)
    model, x_np = demo["model"], demo["x_test"][index]
    x = torch.from_numpy(x_np)[None]
    if method == "saliency":
        return gradient_saliency(model, x, target)[0].numpy().astype(float)
    if method == "gradient x input":
        return gradient_x_input(model, x, target)[0].numpy().astype(float)
    if method == "integrated gradients":
        return integrated_gradients(model, x, target=target, steps=32)[0].numpy().astype(float)
    if method == "SHAP":
        background = demo["x_train"][:: max(1, len(demo["x_train"]) // 8)][:8]
        return shap_kernel(model.predict_proba, background, x_np, target=target, n_samples=200)[0]
    return lime_tabular(model.predict_proba, demo["x_train"], x_np, target=target, n_samples=300)


def plot_attribution(index: int = 0, method: str = "integrated gradients", top: int = 12) -> plt.Figure:
    """Widget callback: the ``top`` largest attributions of one test sample of the breast-cancer demo."""
    demo = breast_cancer_demo()
    attr = explain_tabular(demo, index, method)
    top = ensure_int("top", top, 1, len(attr))
    order = np.argsort(-np.abs(attr), kind="stable")[:top][::-1]
    p = demo["model"].predict_proba(demo["x_test"][index][None])[0, 1]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh([demo["feature_names"][i] for i in order], attr[order],
            color=["tab:blue" if v >= 0 else "tab:red" for v in attr[order]])
    ax.axvline(0, color="k", lw=0.8)
    truth = demo["class_names"][demo["y_test"][index]]
    ax.set(title=f"test sample {index} (true: {truth}, P(benign) = {p:.2f}): {method}", xlabel="attribution toward 'benign'")
    fig.tight_layout()
    return fig


def attribution_widget():
    """Lesson 08's widget: a test sample of :func:`breast_cancer_demo` and a method of :data:`TABULAR_METHODS`
    redrawing :func:`plot_attribution`.

    Returns
    -------
    ipywidgets.VBox
        From :func:`labkit.ui.interactive_figure`, showing sample 0 with integrated gradients.
    """
    n_test = len(breast_cancer_demo()["x_test"])
    return interactive_figure(plot_attribution, index=int_slider("test sample", 0, n_test - 1, 0),
                              method=dropdown("method", list(TABULAR_METHODS), "integrated gradients"))


# ---------------------------------------------------------------- agreement and sanity
def rank_agreement(a, b, absolute: bool = True) -> float:
    """Spearman's rank correlation between two attribution vectors.

    With ``absolute`` (default) the ranking is by magnitude, i.e. "do both
    methods consider the same features important". Returns 0.0 when one vector
    is constant (no ranking to agree with).
    """
    from scipy.stats import spearmanr

    a = ensure_array("a", a).ravel()
    b = ensure_array("b", b).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"a and b must have the same number (>= 2) of entries, got {a.size} and {b.size}")
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def randomize_weights(model: nn.Module, n_layers: int | None = None, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose last ``n_layers`` parametrised layers are re-initialised.

    Cascading randomisation from the top, as in the model-parameter
    randomisation test of Adebayo et al. (2018, sec. 3.1). ``None`` randomises all.
    """
    ensure_instance("model", model, nn.Module)
    layers = [m for m in model.modules() if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    n_layers = len(layers) if n_layers is None else ensure_int("n_layers", n_layers, 0, len(layers))
    clone = copy.deepcopy(model)
    clone_layers = [m for m in clone.modules() if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    state = torch.random.get_rng_state()
    torch.manual_seed(ensure_int("seed", seed, 0, 2**32 - 1))
    try:
        for layer in clone_layers[len(clone_layers) - n_layers:]:
            layer.reset_parameters()
    finally:
        torch.random.set_rng_state(state)
    return clone


# ---------------------------------------------------------------- rules
def surrogate_tree(predict, x_train: np.ndarray, x_test: np.ndarray, max_depth: int = 3, feature_names=None) -> dict:
    """Rule extraction: fit a decision tree to the *model's* predictions.

    Fidelity is the fraction of held-out samples on which tree and model agree
    (Craven and Shavlik 1996); it says how far the rules can be trusted as a
    description of the model, not of the data.

    Returns
    -------
    dict with tree, rules (text from sklearn's export_text), train_fidelity, test_fidelity.
    """
    from sklearn.tree import DecisionTreeClassifier, export_text

    x_train = ensure_array("x_train", x_train, ndim=2, min_len=2)
    x_test = ensure_array("x_test", x_test, ndim=2, min_len=1)
    max_depth = ensure_int("max_depth", max_depth, 1, 30)
    y_model_train, y_model_test = np.asarray(predict(x_train)), np.asarray(predict(x_test))
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=0).fit(x_train, y_model_train)
    names = list(feature_names) if feature_names is not None else None
    return {
        "tree": tree,
        "rules": export_text(tree, feature_names=names, decimals=2),
        "train_fidelity": float((tree.predict(x_train) == y_model_train).mean()),
        "test_fidelity": float((tree.predict(x_test) == y_model_test).mean()),
    }


# ---------------------------------------------------------------- attention task and probes
def make_signal_token_task(n: int, length: int = 10, vocab: int = 16, seed: int = 0):
    """Sequences where the label depends on one token.

    Each sequence holds noise tokens (ids 3..vocab-1) and exactly one signal
    token at a random position: id 1 (label 1) or id 2 (label 0). Id 0 is unused.

    Returns
    -------
    tokens (n, length) LongTensor, labels (n,) LongTensor, positions (n,) LongTensor.
    """
    n = ensure_int("n", n, 1, 10_000_000)
    length = ensure_int("length", length, 2, 4096)
    vocab = ensure_int("vocab", vocab, 4, 100_000)
    g = torch.Generator().manual_seed(ensure_int("seed", seed, 0, 2**63 - 1))
    tokens = torch.randint(3, vocab, (n, length), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    positions = torch.randint(0, length, (n,), generator=g)
    tokens[torch.arange(n), positions] = 2 - labels  # label 1 -> id 1, label 0 -> id 2
    return tokens, labels, positions


class AttentionClassifier(nn.Module):
    """Embedding + one attention head with a learned query, pooled, then a linear head.

    score_t = q . k_t / sqrt(d), a = softmax(score), h = sum_t a_t v_t
    (scaled dot-product attention, Vaswani et al. 2017, eq. 1, with one query).
    """

    def __init__(self, vocab: int = 16, length: int = 10, dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(length, dim)
        self.query = nn.Parameter(torch.zeros(dim))
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, 2)

    def attend(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (pooled hidden representation (n, dim), attention weights (n, length))."""
        e = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        scores = self.key(e) @ self.query / e.shape[-1] ** 0.5
        attn = torch.softmax(scores, dim=-1)
        return (attn.unsqueeze(-1) * self.value(e)).sum(1), attn

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.attend(tokens)[0]))


def train_attention_classifier(tokens: torch.Tensor, labels: torch.Tensor, epochs: int = 150, seed: int = 0,
                               vocab: int = 16) -> AttentionClassifier:
    """Full-batch Adam on the signal-token task (deterministic for a given seed)."""
    torch.manual_seed(ensure_int("seed", seed, 0, 2**63 - 1))
    model = AttentionClassifier(vocab=vocab, length=tokens.shape[1]).to(tokens.device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(ensure_int("epochs", epochs, 0, 100_000)):
        opt.zero_grad()
        nn.functional.cross_entropy(model(tokens), labels).backward()
        opt.step()
    return model.eval()


def linear_probe(x_train, y_train, x_test, y_test, seed: int = 0) -> float:
    """Accuracy of a logistic-regression probe on frozen representations (Alain and Bengio 2016).

    ``x_train``, ``x_test``: frozen representations (n, d); ``y_train``, ``y_test``: the property probed.
    A high accuracy says the information is *linearly decodable* from the
    representation, not that the model uses it; compare with a control
    (e.g. the same probe on an untrained model; Hewitt and Liang 2019 propose control tasks with random labels).
    """
    from sklearn.linear_model import LogisticRegression

    x_train = ensure_array("x_train", x_train, ndim=2, min_len=2)
    x_test = ensure_array("x_test", x_test, ndim=2, min_len=1)
    y_train = ensure_array("y_train", y_train, ndim=1, dtype=int)
    y_test = ensure_array("y_test", y_test, ndim=1, dtype=int)
    if len(y_train) != len(x_train) or len(y_test) != len(x_test):
        raise ValueError("x_train and y_train (and x_test and y_test) must have the same number of rows")
    probe = LogisticRegression(max_iter=2000, random_state=seed).fit(x_train, y_train)
    return float((probe.predict(x_test) == y_test).mean())


# ---------------------------------------------------------------- the refusal direction (Arditi et al. 2024)
# Token positions read at the end of a generation prompt: the assistant tag,
# the end tag before it, and the user's last token.
REFUSAL_POSITIONS = (-1, -2, -3)


def _chat_batch(tokenizer, prompts) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and pad mask of the prompts' generation text, so every last token sits in the last column."""
    from labkit.lm.world import prompt_text

    prompts = list(prompts)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError("prompts must be a non-empty sequence of str")
    rows = [tokenizer.encode(prompt_text(p)) for p in prompts]
    width = max(len(r) for r in rows)
    idx = torch.full((len(rows), width), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        idx[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = True
    return idx, mask


@torch.no_grad()
def mean_activations(model, tokenizer, prompts, positions=REFUSAL_POSITIONS) -> torch.Tensor:
    """Mean residual stream over ``prompts`` at each layer and end position: shape (n_layer + 1, len(positions), d).

    Layer 0 is the embedding, layer ``l`` the output of block ``l``.
    """
    idx, mask = _chat_batch(tokenizer, prompts)
    model.eval()
    hidden = model.run(idx.to(model.wte.weight.device), pad_mask=mask.to(model.wte.weight.device), return_hidden=True).hidden_states
    cols = [idx.size(1) + p if p < 0 else p for p in positions]
    return torch.stack([h[:, cols].mean(0) for h in hidden]).cpu()


def refusal_direction(model, tokenizer, harmful, harmless, layer: int, position: int = -1) -> torch.Tensor:
    """Difference of mean activations, harmful minus harmless (Arditi et al. 2024, eq. 1).

    Parameters
    ----------
    model : labkit.lm.tinygpt.TinyGPT
    tokenizer : labkit.lm.tokenizer.Tokenizer
    harmful, harmless : sequence of str
        User prompts of each kind (training or validation ones, never the test prompts reported).
    layer : int in [0, n_layer]
        Residual stream after this many blocks.
    position : int < 0
        Token position from the end of the generation prompt (-1: the assistant tag).

    Returns
    -------
    torch.Tensor (d_model,), not normalised (its norm is the addition's natural scale).
    """
    layer = ensure_int("layer", layer, low=0, high=model.cfg.n_layer)
    position = ensure_int("position", position, low=-8, high=-1)
    diff = mean_activations(model, tokenizer, harmful, (position,)) - mean_activations(model, tokenizer, harmless, (position,))
    return diff[layer, 0]


class steer:
    """Context manager: ablate or add a direction in the residual stream while it is active (also during generation).

    ``mode="ablate"``: every block's input and the final LayerNorm's input lose
    their component along ``direction`` (x <- x - (x . r) r, r unit; Arditi et
    al. 2024, eq. 4, at every layer and position). ``mode="add"``: ``scale *
    direction`` is added to the residual stream after ``layer`` blocks, at
    every position (activation addition, eq. 3).

    Example::

        with interpret.steer(model, r, "ablate"):
            replies = reply(model, tokenizer, prompts)
    """

    def __init__(self, model, direction: torch.Tensor, mode: str = "ablate", layer: int | None = None, scale: float = 1.0):
        self.model = model
        self.direction = ensure_tensor("direction", direction, ndim=1, floating=True).detach()
        if self.direction.numel() != model.cfg.d_model or not torch.isfinite(self.direction).all() or not self.direction.norm() > 0:
            raise ValueError(f"direction must be a finite, non-zero vector of length d_model={model.cfg.d_model}")
        self.mode = ensure_choice("mode", mode, ("ablate", "add"))
        if self.mode == "add":
            self.layer = ensure_int("layer", layer, low=0, high=model.cfg.n_layer)
        self.scale = ensure_float("scale", scale)
        self._handles: list = []

    def _modules(self) -> list:
        return list(self.model.blocks) + [self.model.ln_f]  # module i reads the stream after i blocks

    def _hook(self, module, args):
        x = args[0]
        r = self.direction.to(x.device, x.dtype)
        if self.mode == "ablate":
            unit = r / r.norm()
            x = x - (x @ unit)[..., None] * unit
        else:
            x = x + self.scale * r
        return (x, *args[1:])

    def __enter__(self):
        targets = self._modules() if self.mode == "ablate" else [self._modules()[self.layer]]
        self._handles = [m.register_forward_pre_hook(self._hook) for m in targets]
        return self.model

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@torch.no_grad()
def logit_lens(model, tokenizer, prompts, token: str) -> np.ndarray:
    """Mean probability of ``token`` as the reply's first token, read from each layer (nostalgebraist 2020).

    The residual stream after ``l`` blocks at the assistant tag goes through
    the final LayerNorm and the unembedding, as if the model ended there.
    Returns shape (n_layer + 1,).
    """
    ids = tokenizer.encode(token)
    if len(ids) != 1:
        raise ValueError(f"token must encode to one token, {token!r} encodes to {len(ids)}")
    idx, mask = _chat_batch(tokenizer, prompts)
    model.eval()
    hidden = model.run(idx, pad_mask=mask, return_hidden=True).hidden_states
    return np.array([model.lm_head(model.ln_f(h[:, -1])).softmax(-1)[:, ids[0]].mean().item() for h in hidden])


def refusal_rates(model, tokenizer, examples, mode: str | None = None, direction=None, layer: int | None = None,
                  scale: float = 1.0) -> dict:
    """Refusal of harmful and benign examples and helpfulness on benign ones, optionally under :class:`steer`.

    Returns a dict of rates ``refusal_harmful``, ``refusal_benign``, ``helpful`` and the replies.
    """
    import contextlib

    from labkit.lm.harness import is_correct, is_refusal
    from labkit.lm.replies import reply

    examples = list(examples)
    ctx = steer(model, direction, mode, layer, scale) if mode is not None else contextlib.nullcontext()
    with ctx:
        replies = reply(model, tokenizer, [e.prompt for e in examples])
    harm = [is_refusal(r) for r, e in zip(replies, examples) if e.kind == "harmful"]
    benign = [(is_refusal(r), is_correct(r, e.answer)) for r, e in zip(replies, examples) if e.kind == "benign"]
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return {"refusal_harmful": mean(harm), "refusal_benign": mean([b[0] for b in benign]),
            "helpful": mean([b[1] for b in benign]), "replies": replies}


REFUSAL_TOKEN = " I"  # every refusal of the world starts "I ..."; no benign answer does


@torch.no_grad()
def _first_token_logprobs(model, tokenizer, prompts) -> torch.Tensor:
    """Log-probabilities of the reply's first token for each prompt: shape (n, vocab)."""
    idx, mask = _chat_batch(tokenizer, prompts)
    model.eval()
    device = model.wte.weight.device
    return model.run(idx.to(device), pad_mask=mask.to(device)).logits[:, -1].log_softmax(-1).float().cpu()


def refusal_score(logprobs: torch.Tensor, token_id: int) -> float:
    """Mean log-odds that the reply starts with the refusal token (Arditi et al. 2024, section 2.4).

    Parameters
    ----------
    logprobs : Tensor (n, vocab)
        Log-probabilities of the first reply token.
    token_id : int
        The refusal token's id.

    Returns
    -------
    float : mean of log p - log(1 - p) over the prompts.
    """
    logprobs = ensure_tensor("logprobs", logprobs, ndim=2, floating=True)
    token_id = ensure_int("token_id", token_id, low=0, high=logprobs.size(1) - 1)
    lp = logprobs[:, token_id].double().clamp(max=-1e-12)
    return float((lp - torch.log1p(-lp.exp())).mean())


def select_refusal_direction(model, tokenizer, world, positions=REFUSAL_POSITIONS) -> "pd.DataFrame":
    """Every (layer, position) candidate, scored on the *validation* prompts.

    Directions come from the world's SFT training prompts (harmful against
    benign). Arditi et al.'s (2024, appendix C) three scores on validation
    prompts, read from the first reply token: ``bypass_score``, the refusal
    score (:func:`refusal_score`) of harmful prompts with the direction
    ablated; ``induce_score``, that of benign prompts with it added at its
    layer; ``kl_harmless``, the mean KL divergence of benign prompts'
    first-token distribution, plain against ablated. Beside them, the
    behaviour they stand for, by generation: refusal of harmful prompts under
    ablation, helpfulness under ablation, refusal of benign prompts under
    addition. :func:`best_refusal_direction` applies their selection rule.

    Returns
    -------
    pandas.DataFrame, one row per candidate, with its ``direction`` as a list.
    """
    import pandas as pd

    harmful = [e.prompt for e in world.sft if e.kind == "harmful"][:300]
    harmless = [e.prompt for e in world.sft if e.kind == "benign"][:300]
    val = [e for e in world.prompts("validation") if e.kind in ("harmful", "benign")]
    val_harmful = [e.prompt for e in val if e.kind == "harmful"]
    val_benign = [e.prompt for e in val if e.kind == "benign"]
    refusal_id = tokenizer.encode(REFUSAL_TOKEN)[0]
    plain_benign = _first_token_logprobs(model, tokenizer, val_benign)
    means_h = mean_activations(model, tokenizer, harmful, positions)
    means_b = mean_activations(model, tokenizer, harmless, positions)
    rows = []
    for layer in range(model.cfg.n_layer + 1):
        for j, pos in enumerate(positions):
            r = means_h[layer, j] - means_b[layer, j]
            with steer(model, r, "ablate"):
                bypass = refusal_score(_first_token_logprobs(model, tokenizer, val_harmful), refusal_id)
                ablated_benign = _first_token_logprobs(model, tokenizer, val_benign)
            with steer(model, r, "add", layer):
                induce = refusal_score(_first_token_logprobs(model, tokenizer, val_benign), refusal_id)
            kl = float((plain_benign.exp() * (plain_benign - ablated_benign)).sum(-1).mean())
            ablated = refusal_rates(model, tokenizer, val, "ablate", r)
            added = refusal_rates(model, tokenizer, val, "add", r, layer)
            rows.append(dict(layer=layer, position=pos, norm=float(r.norm()), bypass_score=bypass, induce_score=induce,
                             kl_harmless=kl, ablated_refusal=ablated["refusal_harmful"],
                             ablated_helpful=ablated["helpful"], added_refusal_benign=added["refusal_benign"],
                             direction=r.tolist()))
    return pd.DataFrame(rows)


def best_refusal_direction(table, kl_threshold: float = 0.1, induce_threshold: float = 0.0,
                           n_layer: int | None = None) -> dict:
    """Arditi et al.'s (2024, appendix C) choice among the candidates of :func:`select_refusal_direction`.

    Discard a candidate whose ablation moves benign prompts' first-token
    distribution by a KL above ``kl_threshold``, whose addition does not
    induce refusal (``induce_score`` below ``induce_threshold``), or that is
    read after the last block (the unembedding's input). Of the rest, take the
    lowest ``bypass_score``. Arditi et al. also discard the last 20 % of
    layers; in a two-block model that would leave only the embeddings, whose
    mean difference at the chat tags is zero, so only the final stream is
    dropped here.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`select_refusal_direction`.
    kl_threshold : float >= 0
        Arditi et al. use 0.1.
    induce_threshold : float
        Arditi et al. use 0 (addition makes refusal more likely than not).
    n_layer : int or None
        Blocks of the model; None: the table's largest layer.

    Returns
    -------
    dict : the chosen row, with ``filtered`` True when no candidate passed the
    filters (then the lowest ``bypass_score`` of all is returned).
    """
    kl_threshold = ensure_float("kl_threshold", kl_threshold, low=0.0)
    induce_threshold = ensure_float("induce_threshold", induce_threshold)
    missing = {"layer", "bypass_score", "induce_score", "kl_harmless"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks the columns {sorted(missing)}; build it with select_refusal_direction")
    n_layer = int(table.layer.max()) if n_layer is None else ensure_int("n_layer", n_layer, low=1)
    ok = table[(table.kl_harmless <= kl_threshold) & (table.induce_score >= induce_threshold) & (table.layer < n_layer)]
    row = (ok if len(ok) else table).sort_values("bypass_score").iloc[0].to_dict()
    return {**row, "filtered": len(ok) > 0}


REFUSAL_STUDY_VERSION = "2"  # 2: Arditi et al.'s scores and filters


def _refusal_study_key() -> str:
    import hashlib
    import json

    from labkit.lm.cache import config_key
    from labkit.lm.train import get_config

    blob = json.dumps({"assistant": config_key(get_config("default")), "positions": REFUSAL_POSITIONS,
                       "version": REFUSAL_STUDY_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_refusal_directions(rebuild: bool = False) -> "pd.DataFrame":
    """:func:`select_refusal_direction` on the shipped default assistant, through the model cache (a minute once)."""
    import pandas as pd

    from labkit.lm.cache import cached, get_assistant

    def build():
        a = get_assistant("default")
        return select_refusal_direction(a.sft, a.tokenizer, a.world)

    return cached("refusal-directions", _refusal_study_key(), build, lambda t: {"table": t.to_json(orient="records")},
                  lambda payload: pd.read_json(__import__("io").StringIO(payload["table"]), orient="records"),
                  rebuild=rebuild)


def _register_refusal_study() -> None:
    from labkit.lm.cache import CourseModel, cache_path, register_course_model

    register_course_model(CourseModel("refusal-directions", lambda rebuild: default_refusal_directions(rebuild),
                                      lambda: cache_path("refusal-directions", _refusal_study_key())))


_register_refusal_study()


__all__ = [
    "IG_METHODS", "TABULAR_METHODS", "gradient_saliency", "gradient_x_input", "quadrature", "integrated_gradients",
    "TabularMLP", "breast_cancer_demo", "shap_kernel", "lime_tabular", "explain_tabular", "plot_attribution",
    "attribution_widget",
    "rank_agreement", "randomize_weights", "surrogate_tree", "make_signal_token_task", "AttentionClassifier",
    "train_attention_classifier", "linear_probe", "REFUSAL_POSITIONS", "mean_activations", "refusal_direction",
    "steer", "logit_lens", "refusal_rates", "REFUSAL_TOKEN", "refusal_score", "select_refusal_direction", "best_refusal_direction",
    "default_refusal_directions",
]
