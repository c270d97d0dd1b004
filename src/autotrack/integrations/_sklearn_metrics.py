"""The scikit-learn adapter's training metrics, computed with numpy where the case is plain.

``sklearn.metrics`` validates its inputs on every call (target type, label sets, array API
namespace, dataframe detection): for the six training metrics of a classifier that is ~25 ms a
fit, several times a small fit itself (issue 20: a loop of short fits paid it every time). Our
inputs are known: the labels the user passed to ``fit``, the estimator's own ``predict`` and
``predict_proba``. For the plain case (one column of labels, every label among ``classes_``,
probabilities with one column per class) the same figures are a few numpy reductions.

Each function returns None where its case is not plain (object labels, one class only, scores
that are not probabilities...): the caller then asks ``sklearn.metrics``, so the edge cases keep
scikit-learn's own semantics. ``tests/integrations/test_sklearn_metrics.py`` checks, by
hypothesis, that both give the same figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["labels_of", "classification", "log_loss", "roc_auc", "regression"]

_LABEL_KINDS = "biuUS"  # bool, integers, strings; floats only when every value is a whole number


def labels_of(y: Any) -> np.ndarray | None:
    """``y`` as a 1-D array of class labels, or None where scikit-learn's own checks must decide."""
    y = np.asarray(y)
    if y.ndim != 1 or not len(y):
        return None
    if y.dtype.kind == "f":
        if not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            return None
    elif y.dtype.kind not in _LABEL_KINDS:
        return None
    return y


def classification(y: np.ndarray, pred: Any) -> dict[str, float] | None:
    """Accuracy, and precision, recall and F1 weighted by support (``zero_division=0``)."""
    pred = np.asarray(pred)
    if pred.shape != y.shape or pred.dtype.kind not in _LABEL_KINDS + "f" or \
            (pred.dtype.kind in "US") != (y.dtype.kind in "US"):
        return None
    labels, inverse = np.unique(np.concatenate([y, pred]), return_inverse=True)
    n = len(y)
    true_idx, pred_idx = inverse[:n], inverse[n:]
    k = len(labels)
    true_sum = np.bincount(true_idx, minlength=k).astype(np.float64)
    pred_sum = np.bincount(pred_idx, minlength=k).astype(np.float64)
    hit = true_idx == pred_idx
    tp = np.bincount(true_idx[hit], minlength=k).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_sum > 0, tp / pred_sum, 0.0)
        recall = np.where(true_sum > 0, tp / true_sum, 0.0)
        denom = true_sum + pred_sum
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    weights = true_sum / true_sum.sum()
    return {"training_accuracy": float(np.mean(hit)),
            "training_precision": float(np.sum(precision * weights)),
            "training_recall": float(np.sum(recall * weights)),
            "training_f1": float(np.sum(f1 * weights))}


def _columns(y: np.ndarray, proba: Any, classes: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The probabilities and, for each row, the column of its true class; None if not plain."""
    if classes is None:
        return None
    classes = np.asarray(classes)
    proba = np.asarray(proba)
    if classes.ndim != 1 or len(classes) < 2 or proba.ndim != 2 or proba.shape != (len(y), len(classes)) or \
            proba.dtype.kind != "f" or classes.dtype.kind not in _LABEL_KINDS + "f" or \
            (classes.dtype.kind in "US") != (y.dtype.kind in "US") or np.any(classes[1:] <= classes[:-1]):
        return None  # unsorted classes_: scikit-learn's label binarizer would order them otherwise
    if not (np.all(np.isfinite(proba)) and proba.min() >= 0 and proba.max() <= 1):
        return None
    col = np.searchsorted(classes, y)
    if np.any(col >= len(classes)) or np.any(classes[np.minimum(col, len(classes) - 1)] != y):
        return None  # a label the estimator does not know
    return proba, col


def log_loss(y: np.ndarray, proba: Any, classes: Any) -> float | None:
    """``log_loss(y, proba, labels=classes)``: probabilities clipped to [eps, 1 - eps]."""
    got = _columns(y, proba, classes)
    if got is None:
        return None
    proba, col = got
    eps = np.finfo(proba.dtype).eps
    if not np.allclose(proba.sum(axis=1), 1.0, rtol=np.sqrt(eps), atol=0):
        return None  # scikit-learn warns about it: let it
    picked = np.clip(proba[np.arange(len(y)), col], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """The area under the ROC curve as the Mann-Whitney statistic (tied scores count half)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranked = score[order]
    starts = np.concatenate([[True], ranked[1:] != ranked[:-1]])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(ranked)) - 1
    ranks = np.empty(len(score))
    ranks[order] = ((first + last) / 2.0 + 1.0)[group]  # average rank of each tie group
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y: np.ndarray, proba: Any, classes: Any) -> float | None:
    """Binary: the second class's score; more classes: one-vs-rest, weighted by prevalence."""
    got = _columns(y, proba, classes)
    if got is None:
        return None
    proba, col = got
    k = proba.shape[1]
    if k == 2:
        return _binary_auc(col == 1, proba[:, 1])
    if not np.allclose(proba.sum(axis=1), 1.0):
        return None
    support = np.bincount(col, minlength=k)
    total = 0.0
    for c in range(k):
        auc = _binary_auc(col == c, proba[:, c])
        if auc is None:
            return None  # a class absent from this sample: scikit-learn's answer, not ours
        total += auc * support[c]
    return float(total / len(y))


def regression(y: Any, pred: Any) -> dict[str, float] | None:
    """R², MSE, RMSE, MAE of one target column (``force_finite``: a constant target's R² is 1 or 0)."""
    y, pred = np.asarray(y), np.asarray(pred)
    if y.ndim != 1 or pred.shape != y.shape or len(y) < 2 or y.dtype.kind not in "biuf" or \
            pred.dtype.kind not in "biuf":
        return None
    y, pred = y.astype(np.float64), pred.astype(np.float64)
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(pred))):
        return None
    diff = y - pred
    mse = float(np.mean(diff * diff))
    ss_res = float(np.sum(diff * diff))
    centred = y - np.mean(y)
    ss_tot = float(np.sum(centred * centred))
    r2 = (1.0 if ss_res == 0 else 0.0) if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return {"training_r2": r2, "training_mse": mse, "training_rmse": float(np.sqrt(mse)),
            "training_mae": float(np.mean(np.abs(diff)))}
