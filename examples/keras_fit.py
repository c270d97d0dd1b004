"""A Keras fit recorded with autotrack: a tiny classifier on generated data, any Keras backend.

Needs the keras extra: pip install 'autotrack-ml[keras]' (Keras 3 and TensorFlow)

    python examples/keras_fit.py                          # TensorFlow backend, into ./autotrack-runs
    KERAS_BACKEND=torch python examples/keras_fit.py      # the same with the torch backend
    autotrack show last                                   # see what was recorded

``autotrack.autolog()`` records the fit: params (fit arguments, optimizer and its schedule, loss,
metrics, model size), per-epoch metrics under Keras's names, the learning rate, seeds, data
fingerprints, the checkpoints ModelCheckpoint writes, EarlyStopping's outcome and the final
model; the ``evaluate()`` after ``fit`` adds ``test_*`` metrics to the same run. The
``AutotrackCallback`` in the list only names the run: a callback alone records what Keras's
hooks show (docs/integrations/keras.md says what autolog adds).
"""

from __future__ import annotations

import os
import sys
import tempfile

try:
    import keras
    import numpy as np
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "keras").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[keras]'")

import autotrack
from autotrack.integrations.keras import AutotrackCallback


def make_data(n: int = 600, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] * x[:, 1] + x[:, 2] > 0).astype("int32")
    return x, y


def main(epochs: int = 20) -> None:
    autotrack.autolog(experiment="quickstart")
    keras.utils.set_random_seed(42)  # recorded in the run
    x, y = make_data()
    x_train, y_train, x_test, y_test = x[:480], y[:480], x[480:], y[480:]
    model = keras.Sequential([
        keras.Input((x.shape[1],)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(2),
    ])
    schedule = keras.optimizers.schedules.CosineDecay(0.01, decay_steps=epochs * 12)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    with tempfile.TemporaryDirectory() as tmp:
        callbacks = [
            keras.callbacks.ModelCheckpoint(os.path.join(tmp, "best.keras"), monitor="val_accuracy",
                                            save_best_only=True),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True),
            AutotrackCallback(experiment="quickstart", name="keras-xor-ish"),
        ]
        model.fit(x_train, y_train, validation_split=0.2, epochs=epochs, batch_size=32, callbacks=callbacks, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)  # lands in the fit's run as test_*
    print(f"test accuracy {accuracy:.3f} (backend: {keras.backend.backend()}); now try: autotrack show last")


if __name__ == "__main__":
    main()
