"""What the XGBoost adapter records besides metrics: params, seeds, data, importance, the model.

Called inside ``guard`` by ``xgboost.py``. A plain ``DMatrix`` is fingerprinted by content
(``get_data()`` as CSR, plus its labels) when it holds at most ``DMATRIX_HASH_LIMIT`` stored
values; larger ones, and ``QuantileDMatrix`` (which keeps no raw values), get shape and
feature names only.
"""

from __future__ import annotations

import json
import numbers
import os
import tempfile
from typing import Any

import xgboost as xgb

from autotrack._capture.data import fingerprint

__all__ = ["DMATRIX_HASH_LIMIT", "train_params", "estimator_params", "explicit_seeds", "config_seed",
           "log_dmatrix", "log_importance", "log_booster", "log_estimator"]

DMATRIX_HASH_LIMIT = 4_000_000


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


def explicit_seeds(params: dict[str, Any]) -> dict[str, int]:
    return {f"xgboost.{k}": int(v) for k, v in params.items()
            if k in ("seed", "random_state") and isinstance(v, numbers.Integral) and not isinstance(v, bool)}


def config_seed(config: dict[str, Any]) -> int | None:
    try:
        return int(config["learner"]["generic_param"]["seed"])
    except (KeyError, TypeError, ValueError):
        return None


def log_dmatrix(run: Any, name: str, dm: Any) -> None:
    content = None
    if type(dm) is xgb.DMatrix and dm.num_nonmissing() <= DMATRIX_HASH_LIMIT:
        try:
            content = dm.get_data()
        except xgb.core.XGBoostError:  # a DMatrix this build cannot give back: shape only
            content = None
    if content is None:
        run.log_data(name, dm)
        return
    extra: dict[str, Any] = {"type": "xgboost.DMatrix"}
    if dm.feature_names:
        extra["feature_names"] = list(dm.feature_names)[:1000]
    label = dm.get_label()
    if len(label):
        extra["label"] = fingerprint(label)
    run.log_data(name, content, **extra)


def log_importance(run: Any, booster: Any) -> None:
    scores: dict[str, Any] = {}
    for kind in ("gain", "weight"):
        try:
            scores[kind] = booster.get_score(importance_type=kind)
        except xgb.core.XGBoostError:  # e.g. gblinear has no gain
            pass
    if not scores:
        return
    with tempfile.TemporaryDirectory(prefix="autotrack-xgboost-") as folder:
        path = os.path.join(folder, "feature_importance.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(scores, f, indent=1, sort_keys=True)
        run.log_artifact(path, kind="file", metadata={"format": "json", "importance_types": sorted(scores)})


def _log_saved(run: Any, save: Any, cls: str) -> None:
    with tempfile.TemporaryDirectory(prefix="autotrack-xgboost-") as folder:
        path = os.path.join(folder, "model.ubj")
        save(path)
        run.log_artifact(path, kind="model", metadata={
            "flavor": "xgboost", "format": "ubj", "class": cls, "xgboost_version": xgb.__version__})


def log_booster(run: Any, booster: Any) -> None:
    """``xgboost.Booster(model_file=path)`` loads it back."""
    _log_saved(run, booster.save_model, "xgboost.Booster")


def log_estimator(run: Any, est: Any) -> None:
    """``XGBClassifier(); .load_model(path)`` (the same class) loads it back, sklearn attributes too."""
    _log_saved(run, est.save_model, f"{type(est).__module__.split('.')[0]}.{type(est).__name__}")
