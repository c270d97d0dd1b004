"""Property test of the public ``Run`` API: any sequence of calls with keys, values, steps and
epochs of many types. Whatever was accepted is read back exactly; whatever was refused raised a
TypeError at the call (strict mode) and cost nothing else; the run ends with the right status."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import autotrack

_counter = itertools.count()

# -- what a caller may pass, each with the number (or refusal) it must become ----------------------
_finite = st.floats(allow_nan=False, allow_infinity=False)
good_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: (v, v)),
    st.integers(-(2**70), 2**70).map(lambda v: (v, v)),
    st.booleans().map(lambda v: (v, int(v))),
    _finite.map(lambda v: (np.float32(v), float(np.float32(v)))).filter(lambda p: math.isfinite(p[1])),
    _finite.map(lambda v: (np.float64(v), v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: (np.int64(v), v)),
    st.integers(0, 255).map(lambda v: (np.uint8(v), v)),
    st.fractions(max_denominator=100).map(lambda v: (v, float(v))),
    _finite.map(lambda v: (Decimal(repr(v)), float(Decimal(repr(v))))),
    _finite.map(lambda v: (np.array(v), v)),
)
bad_values = st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers(), min_size=2, max_size=3),
                       st.builds(object), st.just(1j), st.just(np.array([1.0, 2.0])))
good_keys = st.one_of(st.text(max_size=12), st.sampled_from(["val_loss", "train/loss", "ключ 🙂", "a\udce9"]),
                      st.text(min_size=1, max_size=5).map(np.str_))
bad_keys = st.one_of(st.tuples(st.text(max_size=3)), st.integers(), st.none(), st.builds(object), st.binary(max_size=3))
good_steps = st.one_of(st.integers(-(2**40), 2**40).map(lambda v: (v, v)), st.integers(0, 10**6).map(lambda v: (np.int64(v), v)),
                       st.integers(0, 1000).map(lambda v: (float(v), v)))
bad_steps = st.one_of(st.floats().filter(lambda v: not (math.isfinite(v) and v.is_integer())), st.text(max_size=3),
                      st.booleans(), st.builds(object))
good_epochs = st.one_of(st.none().map(lambda v: (v, v)), st.integers(0, 1000).map(lambda v: (v, v)),
                        st.integers(0, 1000).map(lambda v: (np.int32(v), v)), _finite.map(lambda v: (v, v)))
bad_epochs = st.one_of(st.just(math.nan), st.just(math.inf), st.text(max_size=3), st.builds(object))


@st.composite
def metric_calls(draw):
    entries = draw(st.lists(st.tuples(good_keys, good_values), max_size=4, unique_by=lambda kv: str(kv[0])))
    refused = draw(st.lists(st.one_of(st.tuples(bad_keys, good_values), st.tuples(good_keys, bad_values)), max_size=1))
    refused = [(k, v) for k, v in refused if str(k) not in {str(e[0]) for e in entries}]
    step_ok, epoch_ok = draw(st.integers(0, 9)) > 0, draw(st.integers(0, 9)) > 0
    step = draw(good_steps) if step_ok else (draw(bad_steps), None)
    epoch = draw(good_epochs) if epoch_ok else (draw(bad_epochs), None)
    return ("metrics", entries, refused, step, step_ok, epoch, epoch_ok)


param_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), _finite, st.text(max_size=8),
                         st.lists(st.integers(), max_size=3))
calls = st.lists(st.one_of(
    metric_calls(),
    st.tuples(st.just("params"), st.dictionaries(st.text(max_size=8).filter(lambda k: "/" not in k), param_values,
                                                max_size=3)),
    st.tuples(st.just("tags"), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)),
    st.tuples(st.just("flush")),
), max_size=12)


def _same(a, b) -> bool:
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or (a == b and type(a) is type(b))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(calls=calls, fail=st.booleans())
def test_any_sequence_of_calls_reads_back(tmp_path, calls, fail):
    store = str(tmp_path / f"store-{next(_counter)}")
    expected: dict[str, list[tuple]] = {}
    params: dict = {}
    tags: dict = {}
    with pytest.raises(RuntimeError) if fail else _nothing():
        with autotrack.start_run(uri=store) as run:
            for call in calls:
                kind = call[0]
                if kind == "flush":
                    assert run.flush()
                elif kind == "params":
                    run.log_params(call[1])
                    params.update(call[1])
                elif kind == "tags":
                    run.set_tags(call[1])
                    tags.update(call[1])
                else:
                    _, entries, refused, (step, want_step), step_ok, (epoch, want_epoch), epoch_ok = call
                    metrics = {k: v for k, (v, _) in entries}
                    metrics.update(dict(refused))
                    if not (step_ok and epoch_ok) or refused:
                        with pytest.raises(TypeError):
                            run.log_metrics(metrics, step=step, epoch=epoch)
                    else:
                        run.log_metrics(metrics, step=step, epoch=epoch)
                    if step_ok and epoch_ok:  # a refused entry costs only itself
                        for key, (_, want) in entries:
                            expected.setdefault(str(key), []).append((want_step, want_epoch, want))
            if fail:
                raise RuntimeError("the user's own error")
    rec = autotrack.get_run(run.id, uri=store)
    assert rec.status == ("failed" if fail else "finished")
    assert (rec.error is not None and "the user's own error" in rec.error) if fail else rec.error is None
    assert set(rec.metrics) == set(expected)
    for name, points in expected.items():
        got = [(p.step, p.epoch, p.value) for p in rec.metrics[name]]
        assert len(got) == len(points), name
        for (s, e, v), (gs, ge, gv) in zip(points, got):
            assert gs == s and type(gs) is int
            assert ge == e
            assert _same(float(gv) if isinstance(v, float) else gv, v), (name, v, gv)
    assert rec.params == {k: v for k, v in params.items()}
    assert rec.tags == tags


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
