import numpy as np
import pytest
import torch
from torch import nn

from labkit import classifiers as clf


@pytest.fixture(scope="module")
def digits():
    return clf.load_digits(val_fraction=0.2, test_fraction=0.25, seed=0)


def test_digits_are_scikit_learns_and_the_split_is_stratified(digits):
    from sklearn.datasets import load_digits

    pixels, labels = clf._digits_arrays()
    reference = load_digits()
    assert (pixels == reference.data).all() and (labels == reference.target).all()
    parts = [(digits.x_train, digits.y_train), (digits.x_val, digits.y_val), (digits.x_test, digits.y_test)]
    assert sum(len(x) for x, _ in parts) == 1797
    for x, y in parts:
        assert x.dtype == torch.float32 and y.dtype == torch.long and x.shape == (len(y), 64)
        assert x.min() >= 0 and x.max() <= 1
    rows = torch.cat([x for x, _ in parts]).numpy()
    assert len(np.unique(rows, axis=0)) == len(np.unique(reference.data, axis=0))  # every image once
    per_class = torch.stack([y.bincount(minlength=10) for _, y in parts]).float()
    share = per_class / per_class.sum(0)
    assert torch.allclose(share[1], torch.full((10,), 0.2), atol=0.01)
    assert torch.allclose(share[2], torch.full((10,), 0.25), atol=0.01)
    again = clf.load_digits(val_fraction=0.2, test_fraction=0.25, seed=0)
    assert torch.equal(again.x_test, digits.x_test) and torch.equal(again.y_val, digits.y_val)  # reproducible
    other = clf.load_digits(val_fraction=0.2, test_fraction=0.25, seed=1)
    assert not torch.equal(other.y_test, digits.y_test)


def test_without_validation_the_split_matches_the_two_way_split():
    two_way = clf.load_digits(test_fraction=0.25, seed=0)
    assert len(two_way.x_val) == 0 and two_way.x_val.shape == (0, 64)
    assert len(two_way.x_test) == sum(round(0.25 * n) for n in np.bincount(clf._digits_arrays()[1]))


def test_classes_keep_only_those_digits():
    some = clf.load_digits(val_fraction=0.1, test_fraction=0.3, classes=(3, 8))
    for y in (some.y_train, some.y_val, some.y_test):
        assert set(y.tolist()) == {3, 8}


def test_make_mlp_is_seeded_and_leaves_the_global_state_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = clf.make_mlp(64, hidden=(32, 16), n_classes=10, seed=5)
    assert torch.equal(torch.rand(1), before)
    b = clf.make_mlp(64, hidden=(32, 16), n_classes=10, seed=5)
    c = clf.make_mlp(64, hidden=(32, 16), n_classes=10, seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[1].weight, c[1].weight)
    assert [m.out_features for m in a if isinstance(m, nn.Linear)] == [32, 16, 10]
    assert clf.make_mlp(hidden=7)(torch.zeros(2, 8, 8)).shape == (2, 10)  # images are flattened


def test_training_learns_digits_and_returns_epoch_losses(digits):
    model = clf.make_mlp(seed=0)
    seen = []
    losses = clf.train_classifier(model, digits.x_train, digits.y_train, epochs=15, on_epoch_end=seen.append)
    assert len(losses) == 15 and seen == list(range(1, 16))
    assert losses[-1] < losses[0] / 5
    assert clf.accuracy(model, digits.x_test, digits.y_test) > 0.9
    assert not model.training
    again = clf.make_mlp(seed=0)
    assert clf.train_classifier(again, digits.x_train, digits.y_train, epochs=15) == losses  # reproducible


def test_loss_fn_sees_every_step_and_the_runs_generator(digits):
    steps = []

    def loss(model, batch):
        steps.append((batch.step, batch.total_steps, len(batch.y)))
        assert isinstance(batch.generator, torch.Generator)
        return clf.cross_entropy_loss(model, batch)

    clf.train_classifier(clf.make_mlp(seed=0), digits.x_train[:300], digits.y_train[:300], epochs=2, batch_size=128, loss_fn=loss)
    assert [s for s, _, _ in steps] == list(range(6)) and {t for _, t, _ in steps} == {6}
    assert [n for _, _, n in steps] == [128, 128, 44] * 2   # the last batch of an epoch is smaller


def test_accuracy_hand_computed():
    model = nn.Sequential(nn.Identity())
    x = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
    assert clf.accuracy(model, x, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


def _model():
    return clf.make_mlp(4, hidden=3, n_classes=2)


X, Y = torch.zeros(3, 4), torch.tensor([0, 1, 0])


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: clf.load_digits(val_fraction=-0.1), ValueError, "val_fraction"),
    (lambda: clf.load_digits(test_fraction=0.0), ValueError, "test_fraction"),
    (lambda: clf.load_digits(test_fraction=float("nan")), ValueError, "test_fraction must be finite"),
    (lambda: clf.load_digits(val_fraction=0.5, test_fraction=0.5), ValueError, r"val_fraction \+ test_fraction"),
    (lambda: clf.load_digits(seed=-1), ValueError, "seed"),
    (lambda: clf.load_digits(classes=(3, 11)), ValueError, "classes"),
    (lambda: clf.load_digits(classes=()), ValueError, "classes"),
    (lambda: clf.load_digits(classes=(3, 3)), ValueError, "distinct"),
    (lambda: clf.load_digits(classes="38"), TypeError, "classes"),
    (lambda: clf.make_mlp(0), ValueError, "n_inputs"),
    (lambda: clf.make_mlp(hidden=(8, 0)), ValueError, "hidden"),
    (lambda: clf.make_mlp(hidden="8"), TypeError, "hidden"),
    (lambda: clf.make_mlp(n_classes=1), ValueError, "n_classes"),
    (lambda: clf.train_classifier(_model(), X, Y, epochs=0), ValueError, "epochs"),
    (lambda: clf.train_classifier(_model(), X, Y, batch_size=0), ValueError, "batch_size"),
    (lambda: clf.train_classifier(_model(), X, Y, lr=-1.0), ValueError, "lr"),
    (lambda: clf.train_classifier(_model(), X, Y[:2]), ValueError, "same number of rows"),
    (lambda: clf.train_classifier(_model(), X[:0], Y[:0]), ValueError, "non-empty"),
    (lambda: clf.train_classifier(_model(), X, Y.float()), TypeError, "torch.long"),
    (lambda: clf.train_classifier(_model(), X.numpy(), Y), TypeError, "x must be a torch.Tensor"),
    (lambda: clf.train_classifier(_model(), X * float("nan"), Y), ValueError, "NaN"),
    (lambda: clf.train_classifier(lambda t: t, X, Y), TypeError, "model"),
    (lambda: clf.train_classifier(_model(), X, Y, loss_fn="ce"), TypeError, "loss_fn"),
    (lambda: clf.accuracy(_model(), X, Y[:1]), ValueError, "same number of rows"),
])
def test_bad_arguments_are_rejected(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()
