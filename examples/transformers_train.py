"""A Hugging Face ``Trainer`` recorded with ``autotrack.autolog()``: a tiny GPT-2 language model.

Needs the transformers extra: pip install 'autotrack-ml[transformers]' (transformers, accelerate, PyTorch)

    python examples/transformers_train.py    # records into ./autotrack-runs
    autotrack show last                       # see what was recorded

It takes 7-10 s on a 2-core CPU (measured): ~6 s importing transformers and torch, ~2 s training.
A heavily loaded machine, or a first run with nothing in the disk cache, takes longer (a minute
was seen on a 2-core machine shared by several test runs).

The model is built from a config (nothing is downloaded) and trained on made-up token ids, with
evaluation, checkpoints rotated by ``save_total_limit`` and the best one kept. ``autolog()``
records the TrainingArguments, the model config and size, every log (loss, learning rate,
grad norm, eval loss), the checkpoints, the final model, and ``trainer.evaluate()`` afterwards
into the same run.
"""

from __future__ import annotations

import sys
import tempfile

try:
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    import accelerate  # noqa: F401  (the Trainer needs it: say so now, not at TrainingArguments)
    import torch
except ImportError as exc:  # one line that says what to install, not a traceback
    missing = (exc.name or "transformers").split(".")[0]
    sys.exit(f"autotrack: this example needs {missing}: pip install 'autotrack-ml[transformers]'")

import autotrack


class RandomTokens(torch.utils.data.Dataset):
    """Sequences of token ids that repeat a short pattern: something a tiny model can learn."""

    def __init__(self, n: int, length: int = 16, vocab: int = 64, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, vocab, (n, 1), generator=g)
        self.ids = (start + torch.arange(length)) % vocab

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def main(max_steps: int = 40) -> str:
    autotrack.autolog(experiment="quickstart")
    autotrack.seed_everything(42)  # the model's initial weights too (the Trainer seeds only after it is built)
    config = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, run_name="tiny-gpt2", use_cpu=True, report_to="none", seed=42,
            max_steps=max_steps, per_device_train_batch_size=16, learning_rate=3e-3, warmup_steps=4,
            logging_steps=5, eval_strategy="steps", eval_steps=10, save_strategy="steps", save_steps=10,
            save_total_limit=2, load_best_model_at_end=True, metric_for_best_model="loss", disable_tqdm=True,
        )
        trainer = Trainer(model=GPT2LMHeadModel(config), args=args,
                          train_dataset=RandomTokens(256), eval_dataset=RandomTokens(64, seed=1))
        trainer.train()
        trainer.evaluate()  # lands in the train's run
    run = autotrack.last_run()
    assert run is not None
    print(f"recorded run {run.id[:8]} ({run.status}): {len(run.metrics)} metrics, {len(run.artifacts)} artifact files")
    return run.id


if __name__ == "__main__":
    main()
