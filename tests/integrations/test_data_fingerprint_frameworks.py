"""Data fingerprints of framework tensors agree with numpy for the same values and dtype."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autotrack._capture import data
from autotrack._capture.data import fingerprint

VALUES = np.linspace(-3.0, 3.0, 24, dtype=np.float32).reshape(4, 6)


def test_torch_float32_matches_numpy():
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(VALUES.copy()).requires_grad_(True)
    fp = fingerprint(t)
    ref = fingerprint(VALUES)
    assert fp["type"] == "torch.Tensor"
    assert (fp["shape"], fp["rows"], fp["dtype"], fp["bytes"]) == ([4, 6], 4, "float32", VALUES.nbytes)
    assert fp["sha256"] == ref["sha256"]
    assert fingerprint(t.T)["sha256"] == fingerprint(VALUES.T)["sha256"]  # non-contiguous view
    assert fingerprint(t.double())["sha256"] != ref["sha256"]
    assert fingerprint(t.reshape(6, 4))["sha256"] != ref["sha256"]
    json.dumps(fp)


def test_torch_bfloat16():
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(VALUES.copy()).to(torch.bfloat16)
    fp = fingerprint(t)
    assert fp["dtype"] == "bfloat16" and fp["bytes"] == VALUES.size * 2
    assert fingerprint(t.clone())["sha256"] == fp["sha256"]
    # same bits, other dtype: differs
    assert fingerprint(t.view(torch.int16))["sha256"] != fp["sha256"]
    assert fingerprint(t.view(torch.float16))["sha256"] != fp["sha256"]
    ml_dtypes = pytest.importorskip("ml_dtypes")
    as_numpy = t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    assert fingerprint(as_numpy)["sha256"] == fp["sha256"]


def test_torch_large_tensor_is_sampled(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(data, "HASH_FULL_LIMIT_BYTES", 1024 * 1024)
    values = np.random.default_rng(0).normal(size=6 * 1024 * 1024).astype(np.float32)
    fp = fingerprint(torch.from_numpy(values))
    assert fp["hash_sampled"] is True
    assert fp["sha256"] == fingerprint(values)["sha256"]


def test_torch_special_tensors_do_not_raise():
    torch = pytest.importorskip("torch")
    meta = fingerprint(torch.empty(3, 4, device="meta"))
    assert meta["shape"] == [3, 4] and "sha256" not in meta and "error" not in meta
    sparse = fingerprint(torch.eye(3).to_sparse())
    assert sparse["shape"] == [3, 3] and "error" not in sparse
    conj = torch.tensor([1 + 2j, 3 - 1j]).conj()
    assert fingerprint(conj)["sha256"] == fingerprint(np.array([1 - 2j, 3 + 1j], dtype=np.complex64))["sha256"]


def test_torch_dataset_is_not_iterated():
    torch = pytest.importorskip("torch")

    class Counting(torch.utils.data.Dataset):
        reads = 0

        def __len__(self):
            return 5

        def __getitem__(self, i):
            Counting.reads += 1
            return i

    fp = fingerprint(Counting())
    assert fp["rows"] == 5 and Counting.reads == 0


def test_tensorflow_tensor_matches_numpy():
    tf = pytest.importorskip("tensorflow")
    fp = fingerprint(tf.constant(VALUES))
    assert fp["type"] == "tensorflow.Tensor"
    assert (fp["shape"], fp["dtype"]) == ([4, 6], "float32")
    assert fp["sha256"] == fingerprint(VALUES)["sha256"]
    assert fingerprint(tf.Variable(VALUES))["sha256"] == fp["sha256"]
    torch = pytest.importorskip("torch")
    bf16 = tf.cast(tf.constant(VALUES), tf.bfloat16)
    assert fingerprint(bf16)["sha256"] == fingerprint(torch.from_numpy(VALUES).to(torch.bfloat16))["sha256"]


def test_tf_data_dataset_is_not_iterated():
    tf = pytest.importorskip("tensorflow")
    finite = fingerprint(tf.data.Dataset.range(10))
    assert finite["rows"] == 10 and "sha256" not in finite
    infinite = fingerprint(tf.data.Dataset.range(10).repeat())
    assert "rows" not in infinite and "error" not in infinite
