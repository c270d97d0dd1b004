"""Data fingerprints: what a run trained and evaluated on, as shape, dtype and a content hash.

A fingerprint is taken at fit start, on the training thread, so it must cost little and never
fail the fit. Three rules follow from that:

* No ML framework, numpy, pandas or scipy is imported here. Types are recognised by module and
  class name, and a library is only used when the object handed in already comes from it.
* Nothing is iterated. Generic datasets (torch ``Dataset``, ``tf.data.Dataset``, ...) get their
  type and a cheap ``len``; adapters that see the batches go further if they want.
* Hashing is bounded. Buffers up to ``HASH_FULL_LIMIT_BYTES`` are hashed in full; larger ones are
  *sampled*: the first and last 8 MiB, 64 evenly spaced 64 KiB blocks between them, and the total
  size (rows of a DataFrame and elements of an object array are sampled the same way, scaled by
  their size). Such fingerprints carry ``hash_sampled: True``. Sampling means a change that falls
  entirely inside an unsampled region is NOT detected; shape, dtype and size changes always are.

The hash covers the dtype and shape as well as the bytes, so a reshape or a cast changes it, and
the same values of the same dtype hash alike whether they come from numpy, torch or tensorflow.
Byte order is normalised to little-endian, so hashes agree across machines and processes.
Object arrays hash ``repr`` of each element (pickle is not stable across versions/processes).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any, Callable

__all__ = ["fingerprint", "HASH_FULL_LIMIT_BYTES"]

HASH_FULL_LIMIT_BYTES = 64 * 1024 * 1024
# a sampled buffer: _EDGE_BYTES at each end, and _BLOCKS blocks of _BLOCK_BYTES between them
_EDGE_BYTES, _BLOCK_BYTES, _BLOCKS = 8 * 1024 * 1024, 64 * 1024, 64
_OBJECT_ITEM_BYTES = 64  # assumed size of one object element's repr, to budget sampling
_JSON_MAX_ITEMS, _MAX_PARTS, _MAX_COLUMNS, _MAX_DEPTH = 1_000_000, 16, 1000, 3


def fingerprint(obj: Any) -> dict:
    """Describe ``obj`` as a JSON-serialisable dict; never raises (errors land in ``error``)."""
    return _fingerprint(obj, 0)


def _fingerprint(obj: Any, depth: int) -> dict:
    out: dict = {"type": _type_name(obj)}
    try:
        _describe(obj, out, depth)
    except Exception as exc:  # a fingerprint must never break a fit
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def _type_name(obj: Any) -> str:
    try:
        cls = type(obj)
        mod, name = cls.__module__ or "", cls.__qualname__
        root = mod.split(".")[0]
        if mod == "builtins":
            return name
        if root == "tensorflow" and name == "EagerTensor":
            return "tensorflow.Tensor"
        for short in ("scipy.sparse", root):
            if getattr(sys.modules.get(short), cls.__name__, None) is cls:
                return f"{short}.{cls.__name__}"
        return f"{mod}.{name}"
    except Exception:
        return "unknown"


def _describe(obj: Any, out: dict, depth: int) -> None:
    mod = type(obj).__module__ or ""
    root = mod.split(".")[0]
    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
    if np is not None and isinstance(obj, np.ndarray):
        _ndarray(obj, out)
    elif np is not None and isinstance(obj, np.generic):
        _ndarray(np.asarray(obj), out)
    elif pd is not None and isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
        _pandas(obj, out)
    elif root == "torch" and hasattr(obj, "element_size") and hasattr(obj, "layout"):
        _torch(obj, out)
    elif mod.startswith("scipy.sparse") and hasattr(obj, "tocsr") and hasattr(obj, "nnz"):
        _sparse(obj, out)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        view = memoryview(obj).cast("B")
        out["bytes"] = len(view)
        _hash_into(out, {"kind": "bytes"}, len(view), lambda a, b: view[a:b])
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, str) and len(obj) <= 256:
            out["value"] = obj
        text = json.dumps(obj).encode()
        _hash_into(out, {"kind": "json"}, len(text), lambda a, b: text[a:b])
    elif isinstance(obj, (list, tuple, dict)):
        _container(obj, out, depth)
    elif callable(getattr(obj, "numpy", None)) and hasattr(obj, "shape") and hasattr(obj, "dtype"):
        out.update(_fingerprint(obj.numpy(), depth), type=out["type"])  # tf tensors, variables
    else:
        _generic(obj, out)


def _ndarray(arr: Any, out: dict) -> None:
    dt = arr.dtype
    out.update(shape=[int(s) for s in arr.shape], dtype=str(dt), bytes=int(arr.nbytes))
    if arr.ndim:
        out["rows"] = int(arr.shape[0])
    if dt.byteorder == ">" or (dt.byteorder == "=" and sys.byteorder == "big"):
        arr, dt = arr.astype(dt.newbyteorder("<")), dt.newbyteorder("<")
    token = repr(dt.descr) if dt.names is not None else dt.name
    header = {"kind": "array", "dtype": token, "shape": out["shape"]}
    if dt.hasobject:  # pointers are meaningless across processes: hash each element's repr
        flat = arr.reshape(-1)
        _hash_into(out, header, flat.size, lambda a, b: _reprs(flat[a:b]), _OBJECT_ITEM_BYTES)
        return
    flat = (arr if arr.flags["C_CONTIGUOUS"] else arr.copy(order="C")).reshape(-1).view("u1")
    _hash_into(out, header, flat.size, lambda a, b: flat[a:b])


def _reprs(items: Any) -> bytes:
    parts = []
    for item in items:
        r = repr(item).encode("utf-8", "surrogatepass")
        parts += [len(r).to_bytes(8, "little"), r]
    return b"".join(parts)


def _torch(t: Any, out: dict) -> None:
    dtype = str(t.dtype).rpartition(".")[2]  # "torch.float32" -> "float32", as numpy names it
    shape = [int(s) for s in t.shape]
    out.update(shape=shape, dtype=dtype, bytes=t.numel() * t.element_size())
    if shape:
        out["rows"] = shape[0]
    if str(t.layout) != "torch.strided" or t.device.type == "meta" or t.is_quantized:
        return  # no plain byte buffer to hash
    t = t.detach().resolve_conj().resolve_neg().contiguous()  # lazy conj/neg views: real values
    flat = t.reshape(-1).view(sys.modules["torch"].uint8)  # bfloat16 & co. hashed as raw bytes
    header = {"kind": "array", "dtype": dtype, "shape": shape}
    if t.device.type == "cpu":
        buf = flat.numpy()
        _hash_into(out, header, buf.size, lambda a, b: buf[a:b])
    else:  # copy only the sampled slices off the device
        _hash_into(out, header, flat.numel(), lambda a, b: flat[a:b].cpu().numpy())


def _pandas(obj: Any, out: dict) -> None:
    from pandas.util import hash_pandas_object  # pandas is already imported: obj comes from it

    rows = len(obj)
    shape = [int(s) for s in obj.shape]
    out.update(shape=shape, rows=rows)
    header: dict = {"kind": "pandas", "shape": shape}
    if hasattr(obj, "columns"):
        cols = list(obj.columns)
        out["columns"] = [str(c) for c in cols[:_MAX_COLUMNS]]
        out["dtypes"] = {str(c): str(d) for c, d in list(obj.dtypes.items())[:_MAX_COLUMNS]}
        if len(cols) > _MAX_COLUMNS:
            out["columns_truncated"] = True
        header.update(columns=[repr(c) for c in cols], dtypes=[str(d) for d in obj.dtypes])
    else:
        out["dtype"] = str(obj.dtype)
        header.update(name=repr(obj.name), dtype=str(obj.dtype))
    usage = obj.memory_usage(deep=False)
    out["bytes"] = int(usage.sum()) if hasattr(usage, "sum") else int(usage)
    per_row = max(out["bytes"] / max(rows, 1), 1.0)
    by_row = obj.iloc if hasattr(obj, "iloc") else obj  # an Index slices positionally itself
    # each row hashes on its own, so row ranges can be sampled like byte ranges
    _hash_into(out, header, rows, lambda a, b: hash_pandas_object(by_row[a:b], index=True).values, per_row)


def _sparse(m: Any, out: dict) -> None:
    shape = [int(s) for s in m.shape]
    out.update(shape=shape, rows=shape[0], dtype=str(m.dtype), nnz=int(m.nnz))
    csr = m.tocsr()
    if not csr.has_canonical_format:  # equal content must hash alike: sort, sum duplicates
        csr = csr.copy()
        csr.sum_duplicates()
    bufs = [csr.data] + [ix.astype("int64", copy=False) for ix in (csr.indices, csr.indptr)]
    out["bytes"] = sum(int(b.nbytes) for b in bufs)
    header = {"kind": "sparse", "dtype": csr.dtype.name, "shape": shape, "nnz": int(csr.nnz)}
    h = hashlib.sha256(_header(header))
    for buf in bufs:
        flat = buf.reshape(-1).view("u1")
        if _feed(h, flat.size, lambda a, b: flat[a:b]):
            out["hash_sampled"] = True
    out["sha256"] = h.hexdigest()


def _container(obj: Any, out: dict, depth: int) -> None:
    if not isinstance(obj, dict):
        out["rows"] = len(obj)
    # (X, y): a short tuple of non-scalars is a set of parts, not one table
    as_parts = (isinstance(obj, tuple) and 0 < len(obj) <= _MAX_PARTS
                and not all(v is None or isinstance(v, (bool, int, float, str)) for v in obj))
    if not as_parts and len(obj) < _JSON_MAX_ITEMS:
        try:
            text = json.dumps(obj, sort_keys=True).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):  # not plain data (arrays, circular, odd keys)
            pass
        else:
            _hash_into(out, {"kind": "json"}, len(text), lambda a, b: text[a:b])
            return
    if len(obj) > _MAX_PARTS or depth >= _MAX_DEPTH:
        return
    items = list(obj.items()) if isinstance(obj, dict) else list(enumerate(obj))
    parts = [_fingerprint(v, depth + 1) for _, v in items]
    if isinstance(obj, dict):
        for (k, _), part in zip(items, parts):
            part["key"] = str(k)
    out["parts"] = parts
    if all("bytes" in p for p in parts):
        out["bytes"] = sum(p["bytes"] for p in parts)
    if any(p.get("hash_sampled") for p in parts):
        out["hash_sampled"] = True
    if parts and all("sha256" in p for p in parts):  # a part without a hash: no honest total
        text = "".join(f"{p.get('key', '')}\0{p['sha256']}\n" for p in parts)
        out["sha256"] = hashlib.sha256(_header({"kind": "parts"}) + text.encode("utf-8", "surrogatepass")).hexdigest()


def _generic(obj: Any, out: dict) -> None:
    """Unknown or iterable datasets: only what is cheap to ask, each piece on its own, no iteration."""
    shape = _safe(lambda: [int(obj.num_row()), int(obj.num_col())])  # xgboost.DMatrix & lookalikes
    shape = shape or _safe(lambda: [int(s) for s in obj.shape] if isinstance(obj.shape, tuple) else None)
    if shape is not None:
        out["shape"] = shape
    for attr, key in (("feature_names", "feature_names"), ("column_names", "columns")):
        names = _safe(lambda: getattr(obj, attr))
        if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
            out[key] = list(names[:_MAX_COLUMNS])
            if len(names) > _MAX_COLUMNS:
                out["columns_truncated"] = True
    rows = _safe(lambda: int(len(obj))) if hasattr(type(obj), "__len__") else None
    rows = rows if rows is not None else (shape[0] if shape else None)
    if rows is not None:
        out["rows"] = rows


def _safe(get: Callable) -> Any:
    try:
        return get()
    except Exception:  # unknown objects may raise anything (tf.data: infinite length)
        return None


def _header(header: dict) -> bytes:
    return b"autotrack-fingerprint/v1\0" + json.dumps(header, sort_keys=True).encode() + b"\0"


def _hash_into(out: dict, header: dict, n: int, read: Callable, unit: float = 1) -> None:
    h = hashlib.sha256(_header(header))
    if _feed(h, n, read, unit):
        out["hash_sampled"] = True
    out["sha256"] = h.hexdigest()


def _feed(h: Any, n: int, read: Callable, unit: float = 1) -> bool:
    """Feed ``n`` items (``unit`` bytes each) into ``h``, sampled past the limit; True if sampled."""
    if n * unit <= HASH_FULL_LIMIT_BYTES:
        h.update(read(0, n))
        return False
    edge, block = max(1, int(_EDGE_BYTES / unit)), max(1, int(_BLOCK_BYTES / unit))
    lo = min(edge, n)
    hi = max(n - edge, lo)
    h.update(b"sampled:%d\0" % n)
    h.update(read(0, lo))
    free = max(hi - lo - block, 0)
    for i in range(_BLOCKS if hi > lo else 0):
        start = lo + free * i // (_BLOCKS - 1)
        h.update(read(start, min(start + block, hi)))
    h.update(read(hi, n))
    return True
