"""The final ``model.keras`` of a fit: read on the training thread, written on the writer thread.

``model.save`` costs a short fit 25-45 ms on the training thread, and a third of it is writing:
the HDF5 weights file, the zip archive. What must happen on the training thread is reading the
model as ``fit`` returned it (the next ``fit`` changes it in place): its config (JSON) and a
copy of every variable Keras's saving would store, the optimizer's included. ``snapshot`` does
that with Keras's own walk (``saving_lib._save_state``) into an in-memory store; the returned
function writes the very archive ``model.save`` writes (same members, same order, same HDF5
layout), and the run's writer calls it on its own thread (``Run._log_made``).

Keras's saving internals are private: any name missing (another Keras version), a model class
with its own ``save``, a model too large to hold twice in memory, or any error while reading
gives None or raises, and the caller saves the model with ``model.save`` on the training thread
as before.
"""

from __future__ import annotations

import shutil
import zipfile
from typing import Any, Callable

import numpy as np

__all__ = ["snapshot", "MAX_SNAPSHOT_BYTES"]

MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024  # a larger model is written by model.save, as before


class _TooLarge(Exception):
    pass


def _saving_lib() -> Any:
    try:
        from keras.src.saving import saving_lib as lib
    except ImportError:
        return None
    names = ("_serialize_model_as_json", "_save_state", "H5IOStore", "DiskIOStore", "_CONFIG_FILENAME",
             "_METADATA_FILENAME", "_VARS_FNAME_H5", "_ASSETS_DIRNAME")
    return lib if all(hasattr(lib, n) for n in names) else None


def _own_save(model: Any) -> bool:
    """Whether ``model.save`` is Keras's ``Model.save`` (or autolog's wrapper of it), not a
    subclass's own."""
    import keras

    for cls in type(model).__mro__:
        if "save" in vars(cls):
            return cls is keras.Model or cls.__module__.startswith("keras.")
    return False


def snapshot(model: Any) -> Callable[[str], None] | None:
    """Read what ``model.save`` would write; returns ``write(path)`` that writes it as a
    ``.keras`` archive, or None when this model is saved the usual way."""
    import keras

    lib = _saving_lib()
    if lib is None or not isinstance(model, keras.Model) or not _own_save(model) or not model.built:
        return None
    config_json, metadata_json = lib._serialize_model_as_json(model)
    weights = _weights_store(lib)
    assets = lib.DiskIOStore(lib._ASSETS_DIRNAME, archive=None, mode="w")  # a folder of its own
    try:
        lib._save_state(model, weights_store=weights, assets_store=assets, inner_path="", visited_saveables=set())
    except BaseException as exc:
        shutil.rmtree(assets.tmp_dir, ignore_errors=True)
        if isinstance(exc, _TooLarge):
            return None
        raise

    def write(path: str) -> None:
        try:
            with open(path, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:  # as saving_lib._save_model_to_fileobj
                with zf.open(lib._METADATA_FILENAME, "w") as f:
                    f.write(metadata_json.encode())
                with zf.open(lib._CONFIG_FILENAME, "w") as f:
                    f.write(config_json.encode())
                store = lib.H5IOStore(lib._VARS_FNAME_H5, archive=zf, mode="w")
                try:
                    for inner_path, metadata, values in weights.entries:
                        store.make(inner_path, metadata=metadata)
                        for key, value in values:
                            store[key] = value
                finally:
                    store.close()
                assets.archive = zf  # its close() puts the folder in the archive, then removes it
                assets.close()
        finally:
            weights.entries = []
            shutil.rmtree(assets.tmp_dir, ignore_errors=True)

    return write


_store: type | None = None


def _weights_store(lib: Any) -> Any:
    """A store of what ``_save_state`` stores, copied, in order (``_Snapshot``). ``_save_state``
    accepts only Keras's own store classes: ours is made a subclass of ``H5IOStore`` at first use
    (without its ``__init__``: no file is opened)."""
    global _store
    if _store is None:
        _store = type("WeightsSnapshot", (_Snapshot, lib.H5IOStore), {"__module__": __name__})
    return _store()


class _Snapshot:
    """``entries``: ``[(inner path, metadata, [(key, array)])]``, as ``make`` and ``store[key] =``
    were called."""

    def __init__(self) -> None:
        self.mode = "w"
        self.entries: list[tuple[str, dict[str, Any] | None, list[tuple[str, np.ndarray]]]] = []
        self._values: list[tuple[str, np.ndarray]] = []
        self._bytes = 0

    def __bool__(self) -> bool:
        return True

    def make(self, path: str, metadata: dict[str, Any] | None = None) -> Any:
        self._values = []
        self.entries.append((path, dict(metadata) if metadata else None, self._values))
        return self

    def __setitem__(self, key: str, value: Any) -> None:
        from keras import ops

        array = np.asarray(ops.convert_to_numpy(value))
        if not array.flags.owndata:  # a view of the framework's buffer (changed in place by the next fit)
            array = array.copy()
        self._bytes += array.nbytes
        if self._bytes > MAX_SNAPSHOT_BYTES:
            raise _TooLarge()
        self._values.append((key, array))

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return [k for k, _ in self._values]

    def __getitem__(self, key: str) -> Any:
        return dict(self._values)[key]

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self._values)

    def close(self) -> None:
        pass
