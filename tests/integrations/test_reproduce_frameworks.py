"""``autotrack reproduce`` on every framework: a seeded script, and one whose author never set a
seed but called ``autolog()`` first, each recorded in a fresh interpreter from a git checkout
and replayed: the verdict must be ``identical`` (every metric point bit for bit, the model the
same) on CPU."""

from __future__ import annotations

import subprocess

import pytest

from tests.integrations.reproduce_helpers import make_repo, record, replay

SKLEARN = {
    "seeded": """
        import autotrack, numpy as np
        autotrack.autolog()
        from sklearn.ensemble import RandomForestClassifier
        rng = np.random.default_rng(0)
        X = rng.random((60, 4)); y = (X[:, 0] > 0.5).astype(int)
        RandomForestClassifier(n_estimators=5, random_state=3).fit(X, y)
    """,
    "unseeded": """
        import autotrack
        autotrack.autolog()
        import numpy as np
        from sklearn.ensemble import RandomForestClassifier
        X = np.random.rand(60, 4); y = (X[:, 0] > 0.5).astype(int)
        RandomForestClassifier(n_estimators=5).fit(X, y)
    """,
}
XGBOOST = {
    "seeded": """
        import autotrack, numpy as np
        autotrack.autolog()
        import xgboost as xgb
        rng = np.random.default_rng(0)
        X = rng.random((80, 4)); y = X[:, 0] * 2 + rng.random(80) * 0.1
        d = xgb.DMatrix(X, label=y)
        xgb.train({"subsample": 0.7, "colsample_bytree": 0.7, "seed": 5, "nthread": 1}, d, 4, evals=[(d, "train")])
    """,
    "unseeded": """
        import autotrack
        autotrack.autolog()
        import numpy as np, xgboost as xgb
        X = np.random.rand(80, 4); y = X[:, 0] * 2 + np.random.rand(80) * 0.1
        xgb.XGBRegressor(n_estimators=4, subsample=0.7, random_state=np.random.randint(1000), n_jobs=1).fit(
            X, y, eval_set=[(X, y)])
    """,
}
TORCH = {
    "seeded": """
        import random, torch, autotrack
        torch.manual_seed(0); random.seed(0)
        x = torch.randn(64, 4); y = x.sum(1, keepdim=True)
        net = torch.nn.Linear(4, 1); opt = torch.optim.SGD(net.parameters(), lr=0.1)
        with autotrack.start_run(params={"lr": 0.1}) as run:
            for epoch in range(3):
                idx = list(range(64)); random.shuffle(idx)
                for i in range(0, 64, 16):
                    b = idx[i:i + 16]
                    loss = torch.nn.functional.mse_loss(net(x[b]), y[b])
                    opt.zero_grad(); loss.backward(); opt.step()
                run.log_metrics({"loss": loss.item()}, epoch=epoch)
            torch.save(net.state_dict(), "model.pt"); run.log_artifact("model.pt", kind="model")
    """,
    "unseeded": """
        import autotrack
        autotrack.autolog()
        import random, torch, numpy as np
        torch.manual_seed(np.random.randint(1 << 30))  # the seed itself drawn unseeded
        x = torch.randn(64, 4); y = x.sum(1, keepdim=True)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        with autotrack.start_run() as run:
            for epoch in range(3):
                idx = list(range(64)); random.shuffle(idx)
                for i in range(0, 64, 16):
                    b = idx[i:i + 16]
                    loss = torch.nn.functional.mse_loss(net(x[b]), y[b])
                    opt.zero_grad(); loss.backward(); opt.step()
                run.log_metrics({"loss": loss.item()}, epoch=epoch)
            torch.save(net.state_dict(), "model.pt"); run.log_artifact("model.pt", kind="model")
    """,
}
KERAS = {
    "seeded": """
        import os; os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import autotrack
        autotrack.autolog()
        import numpy as np, keras
        keras.utils.set_random_seed(1)
        x = np.random.rand(64, 4).astype("float32"); y = x.sum(1, keepdims=True)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dropout(0.2), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    """,
    "unseeded": """
        import os; os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import autotrack
        autotrack.autolog()
        import numpy as np, keras
        x = np.random.rand(64, 4).astype("float32"); y = x.sum(1, keepdims=True)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dropout(0.2), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        # shuffle=False: Keras shuffles with TensorFlow's unseeded ops, which draw from the OS (docs/reproduce.md)
        model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    """,
}
LIGHTNING = {
    "seeded": """
        import autotrack
        autotrack.autolog()
        import torch, lightning as L
        L.seed_everything(3)
        class M(L.LightningModule):
            def __init__(self):
                super().__init__(); self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2),
                                                                     torch.nn.Linear(8, 1))
            def training_step(self, batch, i):
                loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]); self.log("train_loss", loss)
                return loss
            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.05)
        x = torch.randn(64, 4); ds = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
        L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, log_every_n_steps=1).fit(M(), torch.utils.data.DataLoader(ds, 16, shuffle=True))
    """,
}
LIGHTNING["unseeded"] = LIGHTNING["seeded"].replace("L.seed_everything(3)", "x0 = __import__('random').random()")
TRANSFORMERS = {
    "seeded": """
        import autotrack
        autotrack.autolog()
        import torch
        from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
        class Tokens(torch.utils.data.Dataset):
            def __init__(self):
                self.ids = torch.randint(0, 50, (32, 8)); self.labels = torch.randint(0, 2, (32,))
            def __len__(self): return 32
            def __getitem__(self, i): return {"input_ids": self.ids[i], "labels": self.labels[i]}
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                         num_attention_heads=2, intermediate_size=16))
        args = TrainingArguments(output_dir="out", use_cpu=True, report_to="none", max_steps=4, logging_steps=1,
                                 per_device_train_batch_size=8, save_strategy="no", disable_tqdm=True, SEED)
        Trainer(model=model, args=args, train_dataset=Tokens()).train()
    """,
}
TRANSFORMERS["unseeded"] = TRANSFORMERS["seeded"].replace("        torch.manual_seed(0)\n", "").replace(
    "SEED", "seed=__import__('random').randrange(1000)")
TRANSFORMERS["seeded"] = TRANSFORMERS["seeded"].replace("SEED", "seed=7")

FRAMEWORKS = {"sklearn": SKLEARN, "xgboost": XGBOOST, "torch": TORCH, "keras": KERAS, "lightning": LIGHTNING,
              "transformers": TRANSFORMERS}
NEEDS = {"sklearn": "sklearn", "xgboost": "xgboost", "torch": "torch", "keras": "keras", "lightning": "lightning",
         "transformers": "transformers"}


@pytest.mark.parametrize("kind", ["seeded", "unseeded"])
@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_a_recorded_run_reproduces_identical_on_cpu(tmp_path, framework, kind):
    pytest.importorskip(NEEDS[framework])
    repo = make_repo(tmp_path / "repo", {"train.py": FRAMEWORKS[framework][kind]})
    original = record(repo)
    assert original.status == "finished" and original.metrics, original.error
    assert original.environment["random_state"]["autolog" if kind == "unseeded" else "run_start"]
    result = replay(original, repo)
    assert result["verdict"] == "identical", (result["divergence"], result["models"], result["causes"])
    assert result["exit_status"] == 0 and result["run"] != original.id
    import autotrack

    new = autotrack.get_run(result["run"], uri=f"{repo}/store")
    assert new.tags["reproduces"] == original.id
    from autotrack._explain import is_timing

    assert {n: [p.value for p in pts] for n, pts in new.metrics.items() if not is_timing(n)} == \
        {n: [p.value for p in pts] for n, pts in original.metrics.items() if not is_timing(n)}
    listing = subprocess.run(["git", "worktree", "list"], check=False, cwd=repo, capture_output=True, text=True).stdout
    assert len(listing.splitlines()) == 1, listing  # the temporary worktree is gone
