"""``autotrack.seed_everything``: one call that seeds every library the user has imported."""

from __future__ import annotations

import random
import sys

from autotrack._capture.seeds import install_seed_hooks, record_seed
from autotrack._safety import guard

__all__ = ["seed_everything"]


def seed_everything(seed: int) -> int:
    """Seed random, numpy, torch, TensorFlow and Keras where already imported, and record it.

    Libraries that are not imported are not imported (that would make ``import`` order matter
    and slow start-up). ``PYTHONHASHSEED`` is left alone: the running interpreter's hash seed
    is fixed at start-up, so setting the variable now would only record a seed that was not used.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    install_seed_hooks()
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        with guard("seeding CUDA"):
            torch.cuda.manual_seed_all(seed)  # lazy: queued until CUDA initialises, if ever
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):
        tf.random.set_seed(seed)
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "utils") and hasattr(keras.utils, "set_random_seed"):
        keras.utils.set_random_seed(seed)
    record_seed("autotrack.seed_everything", seed)
    return seed
