import numpy as np
import pytest
import torch

import labkit
from labkit import core, validation


def test_device_env_override(monkeypatch):
    monkeypatch.setenv("LABKIT_DEVICE", "cpu")
    assert labkit.get_device() == torch.device("cpu")
    monkeypatch.setenv("LABKIT_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="not a torch device"):
        labkit.get_device()


def test_device_unavailable_cuda_is_a_clear_error(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        labkit.get_device("cuda")


def test_seed_everything_reproduces_all_generators():
    labkit.seed_everything(123)
    a = (np.random.rand(), torch.rand(1).item())
    labkit.seed_everything(123)
    b = (np.random.rand(), torch.rand(1).item())
    assert a == b
    with pytest.raises(ValueError, match="seed"):
        labkit.seed_everything(-1)


def test_setup_sets_threads_and_returns_device(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LABKIT_NUM_THREADS", "1")
        assert labkit.setup(0) == torch.device("cpu")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_progress_is_silent_under_ci(monkeypatch):
    monkeypatch.setenv("LABKIT_PROGRESS", "0")
    assert not labkit.progress_enabled()
    assert list(labkit.progress(range(3))) == [0, 1, 2]
    monkeypatch.setenv("LABKIT_PROGRESS", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")  # tqdm's own switch counts too
    assert not labkit.progress_enabled()
    monkeypatch.delenv("TQDM_DISABLE")
    monkeypatch.setenv("CI", "true")
    assert not labkit.progress_enabled()
    monkeypatch.delenv("CI")
    assert labkit.progress_enabled()


def test_doctor_reports_every_check():
    rows = core.doctor()
    names = [r[0] for r in rows]
    assert {"python", "torch", "numpy", "device"} <= set(names)
    assert all(isinstance(ok, bool) for _, _, ok in rows)


@pytest.mark.parametrize(
    "call, exc, text",
    [
        (lambda: validation.ensure_float("eps", -0.1, 0.0, 1.0), ValueError, r"eps must be in \[0, 1\]"),
        (lambda: validation.ensure_float("eps", "a"), TypeError, "eps must be a real number"),
        (lambda: validation.ensure_float("eps", float("nan")), ValueError, "eps must be finite"),
        (lambda: validation.ensure_float("t", 0.0, 0.0, low_open=True), ValueError, r"t must be in \(0, inf\)"),
        (lambda: validation.ensure_int("steps", 1.5), TypeError, "steps must be an integer"),
        (lambda: validation.ensure_int("steps", True), TypeError, "steps must be an integer"),
        (lambda: validation.ensure_int("steps", 0, low=1), ValueError, r"steps must be an integer in \[1, inf\)"),
        (lambda: validation.ensure_choice("method", "x", ["a", "b"]), ValueError, "method must be one of 'a', 'b'"),
        (lambda: validation.ensure_tensor("x", [1.0]), TypeError, "x must be a torch.Tensor"),
        (lambda: validation.ensure_tensor("x", torch.ones(2), ndim=2), ValueError, "x must have 2 dimensions"),
        (lambda: validation.ensure_tensor("x", torch.tensor([float("nan")])), ValueError, "NaN"),
        (lambda: validation.ensure_array("a", "text"), TypeError, "a must be array-like"),
        (lambda: validation.ensure_array("a", [1.0], min_len=2), ValueError, "at least 2"),
    ],
)
def test_validation_messages_name_argument_and_range(call, exc, text):
    with pytest.raises(exc, match=text):
        call()


def test_validation_returns_converted_values():
    assert validation.ensure_float("x", np.float32(0.5), 0, 1) == 0.5
    assert validation.ensure_int("n", np.int64(3)) == 3
    assert validation.ensure_probability("p", 1) == 1.0
