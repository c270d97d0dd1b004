"""What the XGBoost adapter records besides metrics: params, data, importance, the model, and
where XGBoost's own ``TrainingCheckPoint`` writes its files.

Called inside ``guard`` by ``xgboost.py`` and ``_xgboost_wrap.py``, with the ``FitRecorder`` of
the training. A plain ``DMatrix`` is fingerprinted by content
(``get_data()`` as CSR, plus its labels) when it holds at most ``DMATRIX_HASH_LIMIT`` stored
values; larger ones, and ``QuantileDMatrix`` (which keeps no raw values), get shape and
feature names only.
"""

from __future__ import annotations

import numbers
import os
import tempfile
from typing import Any

import xgboost as xgb

from autotrack._capture.data import fingerprint
from autotrack.integrations._common import log_json, writes

__all__ = ["DMATRIX_HASH_LIMIT", "rank_zero", "train_params", "estimator_params", "config_seed", "log_data",
           "log_importance", "log_model", "checkpoint_files"]

DMATRIX_HASH_LIMIT = 4_000_000


def rank_zero() -> bool:
    """Only rank 0 of a distributed training records."""
    try:
        return xgb.collective.get_rank() == 0
    except Exception:  # noqa: BLE001 - no communicator: a single process
        return True


def _clean(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, str, numbers.Number)) or callable(value):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    return type(value).__name__ if type(value).__repr__ is object.__repr__ else value


def train_params(arguments: dict[str, Any]) -> dict[str, Any]:
    """``xgb.train``'s params dict (a list of pairs too) and its other arguments that shape training."""
    raw = arguments.get("params") or {}
    params: dict[str, Any] = {}
    for key, value in (raw.items() if isinstance(raw, dict) else raw):
        if key in params:  # [("eval_metric", "auc"), ("eval_metric", "logloss")]
            first = params[key]
            params[key] = [*(first if isinstance(first, list) else [first]), value]
        else:
            params[key] = value
    params = {str(k): _clean(v) for k, v in params.items()}
    params["num_boost_round"] = arguments.get("num_boost_round")
    params["early_stopping_rounds"] = arguments.get("early_stopping_rounds")
    for key in ("maximize", "obj", "custom_metric"):
        if arguments.get(key) is not None:
            params[key] = _clean(arguments[key])
    if arguments.get("xgb_model") is not None:
        params["xgb_model"] = str(arguments["xgb_model"]) if isinstance(arguments["xgb_model"], (str, os.PathLike)) \
            else type(arguments["xgb_model"]).__name__
    return params


def estimator_params(est: Any) -> dict[str, Any]:
    params = {str(k): _clean(v) for k, v in est.get_params().items()}
    params["estimator_class"] = f"xgboost.{type(est).__name__}" if getattr(xgb, type(est).__name__, None) is type(est) \
        else f"{type(est).__module__}.{type(est).__qualname__}"
    params["num_boost_round"] = est.get_num_boosting_rounds()
    params["early_stopping_rounds"] = est.early_stopping_rounds
    return params


def config_seed(config: dict[str, Any]) -> int | None:
    try:
        return int(config["learner"]["generic_param"]["seed"])
    except (KeyError, TypeError, ValueError):
        return None


def log_data(recorder: Any, name: str, value: Any) -> None:
    if not isinstance(value, xgb.DMatrix):
        recorder.data(name, value)
        return
    content = None
    if type(value) is xgb.DMatrix and value.num_nonmissing() <= DMATRIX_HASH_LIMIT:
        try:
            content = value.get_data()
        except xgb.core.XGBoostError:  # a DMatrix this build cannot give back: shape only
            content = None
    if content is None:
        recorder.data(name, value)
        return
    extra: dict[str, Any] = {"type": "xgboost.DMatrix"}
    if value.feature_names:
        extra["feature_names"] = list(value.feature_names)[:1000]
    label = value.get_label()
    if len(label):
        extra["label"] = fingerprint(label)
    recorder.data(name, content, **extra)


def log_importance(recorder: Any, booster: Any) -> None:
    scores: dict[str, Any] = {}
    for kind in ("gain", "weight"):
        try:
            scores[kind] = booster.get_score(importance_type=kind)
        except xgb.core.XGBoostError:  # e.g. gblinear has no gain
            pass
    if not scores:
        return
    log_json(recorder, "feature_importance.json", scores, {"format": "json", "importance_types": sorted(scores)})


def log_model(recorder: Any, model: Any) -> None:
    """``model.ubj`` by the model's own ``save_model``: ``xgboost.Booster(model_file=path)`` loads
    a Booster back; ``XGBClassifier(); .load_model(path)`` (the same class) an estimator, with
    its scikit-learn attributes."""
    cls = "xgboost.Booster" if isinstance(model, xgb.Booster) else \
        f"{type(model).__module__.split('.')[0]}.{type(model).__name__}"
    meta = {"flavor": "xgboost", "format": "ubj", "class": cls, "xgboost_version": xgb.__version__}
    if isinstance(model, xgb.Booster):  # the same bytes as save_model("model.ubj"), written by the run's writer
        recorder.model_made("model.ubj", writes(model.save_raw("ubj")), metadata=meta)
        return
    with tempfile.TemporaryDirectory(prefix="autotrack-xgboost-") as folder:  # an estimator's own save_model
        path = os.path.join(folder, "model.ubj")  # adds its scikit-learn attributes: no in-memory form
        model.save_model(path)
        recorder.model(path, metadata=meta)


def checkpoint_files(callback: Any) -> tuple[str, str, str] | None:
    """``(folder, name, extension)`` of the files an ``xgboost.callback.TrainingCheckPoint``
    writes: ``<folder>/<name>_<iteration>.<extension>``. XGBoost keeps its constructor arguments
    in private attributes and has no public way to read them, so they are read defensively:
    None (no checkpoint recorded) if a future version renames them."""
    folder, name = getattr(callback, "_path", None), getattr(callback, "_name", None)
    if not isinstance(folder, str) or not isinstance(name, str):
        return None
    return folder, name, "pkl" if getattr(callback, "_as_pickle", False) else str(callback.default_format)
