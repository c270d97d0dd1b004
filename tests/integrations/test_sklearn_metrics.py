"""The scikit-learn adapter's numpy training metrics give scikit-learn's own figures.

``_sklearn_metrics`` replaces ``sklearn.metrics`` for the plain cases (issue 20: the metrics cost
several times a short fit). Any labels, predictions and probabilities hypothesis makes: where the
fast path answers, it answers what ``sklearn.metrics`` does; where it declines (None), the adapter
asks ``sklearn.metrics``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")
from sklearn import metrics as m  # noqa: E402

from autotrack.integrations import _sklearn_metrics as fast  # noqa: E402
from autotrack.integrations import _sklearn_record as rec  # noqa: E402

CLOSE = dict(rel_tol=1e-9, abs_tol=1e-12)


@st.composite
def classification_case(draw):
    k = draw(st.integers(2, 5))
    kind = draw(st.sampled_from(["int", "str", "float", "bool"])) if k == 2 else draw(st.sampled_from(["int", "str"]))
    base = {"int": np.array([-3, 0, 2, 7, 11])[:k], "str": np.array(["ant", "bee", "cat", "dog", "eel"])[:k],
            "float": np.array([0.0, 1.0]), "bool": np.array([False, True])}[kind]
    n = draw(st.integers(1, 60))
    y = base[np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))]
    pred = base[np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))]
    raw = np.array(draw(st.lists(st.lists(st.integers(0, 4), min_size=k, max_size=k), min_size=n, max_size=n)),
                   dtype=float) + draw(st.sampled_from([0.0, 0.5]))  # small integers: many tied scores
    proba = raw / raw.sum(axis=1, keepdims=True) if np.all(raw.sum(axis=1) > 0) else np.full((n, k), 1.0 / k)
    return y, pred, proba, np.sort(base)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(classification_case())
def test_classification_figures_match_scikit_learn(case):
    y, pred, proba, classes = case
    labels = fast.labels_of(y)
    assert labels is not None
    got = fast.classification(labels, pred)
    assert got is not None
    p, r, f, _ = m.precision_recall_fscore_support(y, pred, average="weighted", zero_division=0)
    want = {"training_accuracy": m.accuracy_score(y, pred), "training_precision": p, "training_recall": r,
            "training_f1": f}
    for key, value in want.items():
        assert math.isclose(got[key], float(value), **CLOSE), (key, got[key], value)

    loss = fast.log_loss(labels, proba, classes)
    if loss is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert math.isclose(loss, m.log_loss(y, proba, labels=classes), **CLOSE)

    auc = fast.roc_auc(labels, proba, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's "undefined" warnings: then it is no figure
        try:
            want_auc = (m.roc_auc_score(y, proba[:, 1]) if len(classes) == 2 else
                        m.roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=classes))
        except (ValueError, Warning):
            want_auc = None
    if auc is not None:
        assert want_auc is not None and math.isclose(auc, want_auc, **CLOSE), (auc, want_auc)
    elif want_auc is not None and not np.isnan(want_auc):
        assert len(set(y.tolist())) < len(classes)  # declined only where a class is absent: sklearn answers


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=2, max_size=50),
       st.booleans())
def test_regression_figures_match_scikit_learn(pairs, constant):
    y = np.array([a for a, _ in pairs])
    pred = np.array([b for _, b in pairs])
    if constant:
        y = np.full_like(y, y[0])
    got = fast.regression(y, pred)
    assert got is not None
    mse = m.mean_squared_error(y, pred)
    assert math.isclose(got["training_mse"], mse, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(got["training_rmse"], math.sqrt(mse), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(got["training_mae"], m.mean_absolute_error(y, pred), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(got["training_r2"], m.r2_score(y, pred), rel_tol=1e-7, abs_tol=1e-7)


@pytest.mark.parametrize("y, pred", [
    (np.array(["a", 1, "b"], dtype=object), np.array(["a", 1, "b"], dtype=object)),  # mixed label types
    (np.array([[0, 1], [1, 0]]), np.array([[0, 1], [1, 0]])),  # multilabel
    (np.array([0.5, 1.5]), np.array([0.5, 1.5])),  # not whole numbers: not class labels
    (np.array([], dtype=int), np.array([], dtype=int)),
])
def test_what_is_not_plain_is_left_to_scikit_learn(y, pred):
    labels = fast.labels_of(y)
    assert labels is None or fast.classification(labels, pred) is None


def test_regression_declines_several_targets_and_non_finite_values():
    assert fast.regression(np.ones((3, 2)), np.ones((3, 2))) is None
    assert fast.regression(np.array([1.0, np.nan]), np.array([1.0, 2.0])) is None
    assert fast.regression(np.array([1.0]), np.array([1.0])) is None  # R² undefined: sklearn says so


def test_the_adapter_uses_them_and_falls_back_for_object_labels():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = np.where(x[:, 0] > 0, "yes", "no")
    est = LogisticRegression().fit(x, y)
    plain = rec.training_metrics(est, x, y)
    objects = rec.training_metrics(est, x, y.astype(object))  # scikit-learn's own path
    assert set(plain) == set(objects) == {"training_accuracy", "training_precision", "training_recall",
                                          "training_f1", "training_log_loss", "training_roc_auc"}
    for key in plain:
        assert math.isclose(plain[key], objects[key], **CLOSE), key
