"""Data fingerprints of framework tensors agree with numpy for the same values and dtype."""

from __future__ import annotations

import json
import time
from unittest import mock

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


# -- non-contiguous tensors, read a chunk at a time -----------------------------------------------
# sampling sizes shrunk so that small tensors exercise sampling, chunking and unaligned reads
SMALL_LIMITS = dict(HASH_FULL_LIMIT_BYTES=4096, _EDGE_BYTES=1001, _BLOCK_BYTES=37, _CHUNK_BYTES=333)


def _views(torch):
    base = torch.from_numpy(np.random.default_rng(2).normal(size=(60, 70)).astype(np.float32))
    cube = torch.arange(4 * 5 * 6, dtype=torch.int16).reshape(4, 5, 6)
    return {
        "transposed": base.T,
        "stepped": base[1::3, ::2],
        "sliced-transposed-stepped": base[:, 5:-5].T[::2],
        "expanded": torch.arange(7.0).expand(500, 7),
        "expanded-middle": torch.arange(6.0).reshape(2, 1, 3).expand(2, 400, 3),
        "permuted": cube.permute(2, 0, 1),
        "single-column": base[:, 3:4],
        "conj": torch.randn(40, 30, dtype=torch.complex64).T.conj(),
        "bfloat16": base.to(torch.bfloat16)[::2, 1::2],
        "bool": (base > 0).T,
    }


@pytest.mark.parametrize("limits", [{}, SMALL_LIMITS], ids=["full", "sampled"])
def test_torch_views_hash_like_contiguous_copies_and_numpy(limits):
    torch = pytest.importorskip("torch")
    with mock.patch.multiple(data, **{"_CHUNK_BYTES": data._CHUNK_BYTES, **limits}):
        for name, view in _views(torch).items():
            assert not view.is_contiguous() or name == "conj", name
            fp = fingerprint(view)
            assert fp["sha256"] == fingerprint(view.resolve_conj().contiguous())["sha256"], name
            if view.dtype != torch.bfloat16:
                assert fp["sha256"] == fingerprint(view.resolve_conj().numpy())["sha256"], name


def _peak_rss_growth(fn):
    """Seconds, and how far the process's peak resident memory rose above where it was (torch
    allocations do not show in tracemalloc)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM to the current RSS
            fh.write("5")
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to measure peak memory")

    def status(key):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))

    before, start = status("VmRSS:"), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start, status("VmHWM:") - before


def test_2gb_torch_views_copy_only_sampled_slices():
    torch = pytest.importorskip("torch")
    big = torch.from_numpy(np.zeros((1 << 15, 1 << 14), dtype=np.float32))  # 2 GiB of untouched pages
    expanded = torch.zeros(1, 1 << 14).expand(1 << 15, 1 << 14)  # 2 GiB that exist only as a view
    for name, view in {"transposed": big.T, "stepped": big[:, ::2], "expanded": expanded}.items():
        fp, seconds, grown = _peak_rss_growth(lambda: fingerprint(view))
        assert fp["hash_sampled"] is True and fp["shape"] == list(view.shape), name
        assert seconds < 2.0 and grown < 100 * 2**20, (name, seconds, grown / 2**20)


def test_large_tensorflow_tensors_are_read_in_slices(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    monkeypatch.setattr(data, "HASH_FULL_LIMIT_BYTES", 4096)
    monkeypatch.setattr(data, "_CHUNK_BYTES", 333)
    values = np.random.default_rng(3).normal(size=(300, 70)).astype(np.float32)
    fp = fingerprint(tf.constant(values))
    assert fp["hash_sampled"] is True and fp["type"] == "tensorflow.Tensor"
    assert (fp["shape"], fp["dtype"], fp["bytes"]) == ([300, 70], "float32", values.nbytes)
    assert fp["sha256"] == fingerprint(values)["sha256"] == fingerprint(tf.Variable(values))["sha256"]
    texts = np.array([f"row {i}".encode() for i in range(5000)], dtype=object)
    assert fingerprint(tf.constant(texts))["sha256"] == fingerprint(texts)["sha256"]
    bf16 = tf.cast(tf.constant(values), tf.bfloat16)
    torch = pytest.importorskip("torch")
    assert fingerprint(bf16)["sha256"] == fingerprint(torch.from_numpy(values).to(torch.bfloat16))["sha256"]


def test_512mb_tensorflow_tensor_is_bounded():
    tf = pytest.importorskip("tensorflow")
    t = tf.ones((1 << 14, 1 << 13))  # 512 MiB
    for obj in (t, tf.Variable(t)):
        fp, seconds, grown = _peak_rss_growth(lambda: fingerprint(obj))
        assert fp["hash_sampled"] is True and seconds < 2.0 and grown < 100 * 2**20, (seconds, grown / 2**20)
