"""Data fingerprints: what a run trained and evaluated on, as shape, dtype and a content hash.

A fingerprint is taken at fit start, on the training thread, so it must cost little and never
fail the fit, whatever it is given. Hence:

* No ML framework, numpy, pandas or scipy is imported here. Types are recognised by module and
  class name, and a library is only used when the object handed in already comes from it.
* Nothing is iterated. Generic datasets (torch ``Dataset``, ``tf.data.Dataset``, ...) get their
  type and a cheap ``len``; adapters that see the batches go further if they want.
* Bounded time: buffers up to ``HASH_FULL_LIMIT_BYTES`` (64 MiB) are hashed in full; larger ones
  are *sampled*: the first and last 8 MiB, 64 evenly spaced 64 KiB blocks between them, and the
  total size, so ~20 MiB is read at most (DataFrame rows and object array elements likewise,
  scaled by their size). Lists, tuples and dicts hash their JSON text up to ``_JSON_VALUES``
  values (a string counts one per 64 characters), past that the JSON of sampled items: first,
  last and evenly spaced ones (for a dict, its first and last items). Sampled fingerprints carry
  ``hash_sampled: True``: a change entirely inside an unsampled region is NOT detected; shape,
  dtype and size changes always are. Measured: ~0.1 s for a 2 GB strided view, < 0.1 s for a
  list of ten million values.
* Bounded memory: nothing is copied whole. Bytes are read ``_CHUNK_BYTES`` (4 MiB) at a time, a
  non-contiguous array or tensor (transpose, strided slice, expanded tensor) in C order chunk by
  chunk, so ~10 MB is used whatever the input, and only those chunks leave a GPU. A sparse matrix
  is converted to canonical CSR only when small (``_SPARSE_CANONICAL_BYTES``), so equal content
  hashes alike in any format; a larger one is hashed from its own buffers (its ``format`` is then
  recorded and hashed), and a large ``dok``/``lil`` matrix, having none, gets no hash.

The hash covers dtype and shape as well as the bytes, so a reshape or a cast changes it; the same
values of the same dtype hash alike from numpy, torch or tensorflow, contiguous or not. Byte order
is normalised to little-endian, so hashes agree across machines and processes. Object arrays hash
``repr`` of each element (pickle is not stable across versions/processes).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from typing import Any, Callable

from autotrack._capture._sampling import json_size as _json_size
from autotrack._capture._sampling import sampled_json as _sampled_json
from autotrack._capture._sampling import spans as _spans

__all__ = ["fingerprint", "HASH_FULL_LIMIT_BYTES"]

HASH_FULL_LIMIT_BYTES = 64 * 1024 * 1024
# a sampled buffer: _EDGE_BYTES at each end, and _sampling.BLOCKS blocks of _BLOCK_BYTES between them
_EDGE_BYTES, _BLOCK_BYTES = 8 * 1024 * 1024, 64 * 1024
_CHUNK_BYTES = 4 * 1024 * 1024  # the most read, and so copied, at once
_OBJECT_ITEM_BYTES = 64  # assumed size of one object element's repr, to budget sampling
_SPARSE_CANONICAL_BYTES = 16 * 1024 * 1024
_JSON_VALUES, _MAX_PARTS, _MAX_COLUMNS, _MAX_DEPTH = 100_000, 16, 1000, 3


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
        _json(obj, out)
    elif isinstance(obj, (list, tuple, dict)):
        _container(obj, out, depth)
    elif callable(getattr(obj, "numpy", None)) and hasattr(obj, "shape") and hasattr(obj, "dtype"):
        _tensorflow(obj, out, depth)
    else:
        _generic(obj, out)


# -- arrays and tensors: C-order bytes, read a chunk at a time -----------------------------------
def _little(dt: Any) -> Any:
    return dt.newbyteorder("<") if dt.byteorder == ">" or (dt.byteorder == "=" and sys.byteorder == "big") else dt


def _ndarray(arr: Any, out: dict) -> None:
    out.update(shape=[int(s) for s in arr.shape], dtype=str(arr.dtype), bytes=int(arr.nbytes))
    if arr.ndim:
        out["rows"] = int(arr.shape[0])
    dt = _little(arr.dtype)
    token = repr(dt.descr) if dt.names is not None else dt.name
    header = {"kind": "array", "dtype": token, "shape": out["shape"]}
    _hash_elements(out, header, arr.size, dt.itemsize, _numpy_elements(arr, dt), dt.hasobject)


def _numpy_elements(arr: Any, dtype: Any) -> Callable[[int, int], list]:
    """Elements ``[i, j)`` of ``arr`` in C order as ``dtype``, copying those elements only."""
    np = sys.modules["numpy"]
    base = arr.view(np.ndarray)  # an np.matrix stays 2-D when indexed

    def dense(piece: Any) -> Any:
        return np.ascontiguousarray(piece, dtype=dtype)  # no copy when already so

    return lambda i, j: _elements(base, i, j, dense, lambda x: x.flags.c_contiguous, [])


def _elements(x: Any, start: int, stop: int, dense: Callable, contiguous: Callable, out: list) -> list:
    """Append ``x``'s elements ``[start, stop)`` in C order to ``out`` as dense pieces.

    Rows wholly inside the range are copied in one go, and the partial rows at its ends are
    walked one dimension down, so a strided view costs a copy of the range only (numpy's
    ``reshape(-1)`` of a view would copy all of it).
    """
    if start >= stop:
        return out
    if x.ndim <= 1 or contiguous(x):
        out.append(dense(x.reshape(-1)[start:stop]))
        return out
    inner = math.prod(int(s) for s in x.shape[1:])
    first, last = start // inner, (stop - 1) // inner
    if first == last:
        return _elements(x[first], start - first * inner, stop - first * inner, dense, contiguous, out)
    _elements(x[first], start - first * inner, inner, dense, contiguous, out)
    if last > first + 1:
        out.append(dense(x[first + 1:last]).reshape(-1))
    return _elements(x[last], 0, stop - last * inner, dense, contiguous, out)


def _hash_elements(out: dict, header: dict, n: int, itemsize: int, elements: Callable, objects: bool = False) -> None:
    if objects:  # pointers are meaningless across processes: hash each element's repr
        _hash_into(out, header, n, lambda a, b: b"".join(_reprs(p) for p in elements(a, b)), _OBJECT_ITEM_BYTES)
    else:
        _hash_into(out, header, n * itemsize, _byte_reader(elements, itemsize))


def _byte_reader(elements: Callable, itemsize: int) -> Callable[[int, int], Any]:
    """Bytes ``[a, b)`` of the C-order copy from the elements holding them (ranges need not be aligned)."""

    def read(a: int, b: int) -> Any:
        first = a // itemsize
        pieces = [p.reshape(-1).view("u1") for p in elements(first, -(-b // itemsize))]
        buf = memoryview(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        return buf[a - first * itemsize:b - first * itemsize]

    return read


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
    torch, t = sys.modules["torch"], t.detach()
    uint8, fmt = torch.uint8, torch.contiguous_format

    def dense(piece: Any) -> Any:  # lazy conj/neg views: real values, of this piece only
        piece = piece.resolve_conj().resolve_neg()  # a 1-element view may keep a stride != 1: clone
        return piece if piece.is_contiguous() and piece.stride()[-1:] in ((1,), ()) else piece.clone(memory_format=fmt)

    def elements(i: int, j: int) -> list:  # bfloat16 & co. as raw bytes; only these leave a GPU
        pieces = _elements(t, i, j, dense, lambda x: x.is_contiguous(), [])
        return [p.reshape(-1).view(uint8).cpu().numpy() for p in pieces]

    _hash_elements(out, {"kind": "array", "dtype": dtype, "shape": shape}, t.numel(), t.element_size(), elements)


def _tensorflow(obj: Any, out: dict, depth: int) -> None:
    """TensorFlow tensors and variables: small ones through ``.numpy()``; large ones a slice at a
    time, so a GPU tensor is not copied to the host whole."""
    tf, np = sys.modules.get("tensorflow"), sys.modules.get("numpy")
    dt = _safe(lambda: np.dtype(obj.dtype.as_numpy_dtype)) if np is not None else None
    n = _safe(lambda: int(obj.shape.num_elements()))
    if tf is None or dt is None or n is None or n * dt.itemsize <= HASH_FULL_LIMIT_BYTES:
        out.update(_fingerprint(obj.numpy(), depth), type=out["type"])  # also tensors of other libraries
        return
    shape = [int(s) for s in obj.shape]
    out.update(shape=shape, dtype=str(dt), bytes=n * dt.itemsize)
    if shape:
        out["rows"] = shape[0]
    flat, dt = tf.reshape(obj, [-1]), _little(dt)
    header = {"kind": "array", "dtype": dt.name, "shape": shape}
    elements = lambda i, j: [np.ascontiguousarray(flat[i:j].numpy(), dtype=dt)]  # noqa: E731
    _hash_elements(out, header, n, dt.itemsize, elements, dt.hasobject)


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
    shape, fmt, nnz = [int(s) for s in m.shape], str(getattr(m, "format", "")), int(m.nnz)
    out.update(shape=shape, rows=shape[0], dtype=str(m.dtype), nnz=nnz)
    small = nnz * (m.dtype.itemsize + 16) <= _SPARSE_CANONICAL_BYTES
    if fmt == "csr" or small:  # canonical CSR: the same content hashes alike in any format
        csr = m.tocsr()
        if small and not csr.has_canonical_format:  # (a large CSR is hashed as it is: O(nnz) to check)
            csr = csr.copy()
            csr.sum_duplicates()
        header = {"kind": "sparse", "dtype": csr.dtype.name, "shape": shape, "nnz": int(csr.nnz)}
        bufs = [csr.data, csr.indices, csr.indptr]
    else:  # converting would copy the whole matrix: hash the buffers it has, format included
        out["format"] = fmt
        stored = {"coo": lambda: [m.data, *(getattr(m, "coords", None) or (m.row, m.col))],
                  "dia": lambda: [m.data, m.offsets]}.get(fmt, lambda: [m.data, m.indices, m.indptr])
        bufs = _safe(stored) if fmt not in ("dok", "lil") else None
        if bufs is None:
            return  # Python objects (dok, lil): nothing to read without walking every entry
        header = {"kind": "sparse", "format": fmt, "dtype": m.dtype.name, "shape": shape, "nnz": nnz}
    h, total = hashlib.sha256(_header(header)), 0
    np = sys.modules["numpy"]
    for i, buf in enumerate(bufs):  # indices as int64 whatever scipy chose, one chunk at a time
        dt = _little(buf.dtype) if i == 0 else np.dtype("<i8")
        total += buf.size * dt.itemsize
        if _feed(h, buf.size * dt.itemsize, _byte_reader(_numpy_elements(buf, dt), dt.itemsize)):
            out["hash_sampled"] = True
    out["bytes"] = total
    out["sha256"] = h.hexdigest()


# -- plain Python data: JSON text, sampled past a budget --------------------------------------
def _json(obj: Any, out: dict, size: int | None = None) -> None:
    sampled = (_json_size(obj, _JSON_VALUES) if size is None else size) > _JSON_VALUES
    text = _sampled_json(obj, _JSON_VALUES) if sampled else json.dumps(obj, sort_keys=True)
    raw = text.encode("utf-8", "surrogatepass")
    header = {"kind": "json", "sampled": len(obj)} if sampled else {"kind": "json"}
    _hash_into(out, header, len(raw), lambda a, b: raw[a:b])
    if sampled:
        out["hash_sampled"] = True


def _container(obj: Any, out: dict, depth: int) -> None:
    if not isinstance(obj, dict):
        out["rows"] = len(obj)
    # (X, y): a short tuple of non-scalars is a set of parts, not one table
    as_parts = (isinstance(obj, tuple) and 0 < len(obj) <= _MAX_PARTS
                and not all(v is None or isinstance(v, (bool, int, float, str)) for v in obj))
    size = _json_size(obj, _JSON_VALUES) if not as_parts else 0
    # a few large values ({"input_ids": [...], "labels": [...]}) are parts, each with its own hash
    if not as_parts and (size <= _JSON_VALUES or len(obj) > _MAX_PARTS):
        try:
            _json(obj, out, size)
            return
        except (TypeError, ValueError, RecursionError):  # not plain data (arrays, circular, odd keys)
            pass
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


# -- hashing --------------------------------------------------------------------------------------
def _header(header: dict) -> bytes:
    return b"autotrack-fingerprint/v1\0" + json.dumps(header, sort_keys=True).encode() + b"\0"


def _hash_into(out: dict, header: dict, n: int, read: Callable, unit: float = 1) -> None:
    h = hashlib.sha256(_header(header))
    if _feed(h, n, read, unit):
        out["hash_sampled"] = True
    out["sha256"] = h.hexdigest()


def _feed(h: Any, n: int, read: Callable, unit: float = 1) -> bool:
    """Feed ``n`` items (``unit`` bytes each) into ``h``, sampled past the limit and read a chunk
    at a time (the same hash as one read: sha256 is a stream); True if sampled."""
    sampled = n * unit > HASH_FULL_LIMIT_BYTES
    if sampled:
        h.update(b"sampled:%d\0" % n)
    spans = _spans(n, max(1, int(_EDGE_BYTES / unit)), max(1, int(_BLOCK_BYTES / unit))) if sampled else [(0, n)]
    step = max(1, int(_CHUNK_BYTES / unit))
    for a, b in spans:
        for start in range(a, b, step):
            h.update(read(start, min(start + step, b)))
    return sampled
