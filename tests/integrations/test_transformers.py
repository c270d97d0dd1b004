"""transformers adapter: real tiny Trainer runs (models built from configs, no download),
asserted through what ``autotrack`` reads back."""

from __future__ import annotations

import json
import os
import types

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers import (BertConfig, BertForSequenceClassification, BertTokenizer,  # noqa: E402
                          DataCollatorWithPadding, Trainer, TrainingArguments)

import autotrack  # noqa: E402
import autotrack._autolog  # noqa: E402

autotrack._autolog.register_integration("transformers", ["transformers.trainer"], "autotrack.integrations.transformers")

from autotrack.integrations.transformers import AutotrackCallback  # noqa: E402
from tests.dead_store import DeadStore  # noqa: E402

SECRET = "hf_do_not_store_me"
WRAPPED = ("train", "evaluate", "predict")
ORIGINALS = {name: vars(Trainer)[name] for name in WRAPPED}  # importing the integration patched nothing


class Tokens(torch.utils.data.Dataset):
    """Random token ids with binary labels: enough for a loss that moves."""

    def __init__(self, n=32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)
        self.labels = torch.randint(0, 2, (n,), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def tiny_bert():
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=16))


def make_args(tmp_path, **kwargs):
    settings = dict(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none", max_steps=4,
                    per_device_train_batch_size=8, per_device_eval_batch_size=8, logging_steps=2,
                    save_strategy="no", disable_tqdm=True, seed=7)
    settings.update(kwargs)
    return TrainingArguments(**settings)


def make_trainer(tmp_path, callbacks=(), cls=Trainer, model=None, **kwargs):
    return cls(model=model or tiny_bert(), args=make_args(tmp_path, **kwargs), train_dataset=Tokens(),
               eval_dataset=Tokens(16, seed=1), callbacks=list(callbacks))


def restored():
    return all(vars(Trainer)[name] is ORIGINALS[name] for name in WRAPPED)


@pytest.fixture(autouse=True)
def _autolog_off():
    yield
    autotrack.autolog(disable=True)
    assert restored(), "autolog(disable=True) puts back the very same functions"


def test_train_records_params_seeds_metrics_summary(store, tmp_path):
    t = make_trainer(tmp_path, [AutotrackCallback(uri=store, experiment="tiny")], hub_token=SECRET, data_seed=3,
                     eval_strategy="steps", eval_steps=2, include_num_input_tokens_seen=True)
    t.train()
    (run,) = autotrack.runs(uri=store)
    assert run.framework == "transformers" and run.status == "finished" and run.experiment == "tiny"
    p = run.params
    assert p["learning_rate"] == 5e-05 and isinstance(p["learning_rate"], float) and p["max_steps"] == 4
    assert p["per_device_train_batch_size"] == 8 and p["train_batch_size"] == 8 and p["seed"] == 7
    assert p["lr_scheduler_type"] == "linear" and p["eval_strategy"] == "steps"
    assert p["hub_token"] == "<redacted>" and p["include_num_input_tokens_seen"] == "all", "word match only"
    assert p["average_tokens_across_devices"] in (True, False)
    recorded = {k: v for k, v in run.to_dict().items() if k != "environment"}  # (git diff: this file's own)
    assert SECRET not in json.dumps(recorded, default=str)
    n_params = sum(q.numel() for q in t.model.parameters())
    assert p["model/class"] == "transformers.models.bert.modeling_bert.BertForSequenceClassification"
    assert p["model/params_total"] == p["model/params_trainable"] == n_params
    assert p["model/config/hidden_size"] == 16 and p["model/config/model_type"] == "bert"
    assert p["model/config/num_labels"] == 2 and not any("id2label" in k for k in p)
    assert p["model/config/pad_token_id"] == 0, "model config keys are not secrets"
    assert run.seeds["TrainingArguments.seed"] == 7 and run.seeds["TrainingArguments.data_seed"] == 3
    assert run.seeds["torch.initial_seed"] == 7, "the Trainer seeded torch (in __init__, before the run)"
    m = run.metrics
    assert [pt.step for pt in m["loss"]] == [2, 4] and [pt.epoch for pt in m["loss"]] == [0.5, 1.0]
    assert [pt.step for pt in m["learning_rate"]] == [2, 4] and len(m["grad_norm"]) == 2
    assert [pt.step for pt in m["eval_loss"]] == [2, 4] and [pt.epoch for pt in m["eval_loss"]] == [0.5, 1.0]
    assert "eval_runtime" in m and "num_input_tokens_seen" in m and "epoch" not in m
    for name in ("train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos"):
        assert [pt.step for pt in m[name]] == [4], name
    assert m["train_runtime"][-1].step == 4, "also per log: include_num_input_tokens_seen adds it"
    assert m["train_loss"][0].value == pytest.approx(t.state.log_history[-1]["train_loss"])
    assert run.data["train"]["samples"] == 32 and run.data["train"]["batches"] == 4
    assert run.data["train"]["batch_size"] == 8 and run.data["eval"]["samples"] == 16
    assert run.artifacts and all(a.kind == "model" for a in run.artifacts), "no checkpoints saved"


def test_peft_config_when_present(store, tmp_path):
    class LoraLike:  # what peft puts on a model: adapter name -> config with to_dict()
        def to_dict(self):
            return {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": {"query", "value"}}

    model = tiny_bert()
    model.peft_config = {"default": LoraLike()}
    for name, prm in model.named_parameters():
        prm.requires_grad = "classifier" in name
    make_trainer(tmp_path, [AutotrackCallback(uri=store, log_models=False)], model=model, max_steps=2).train()
    p = autotrack.last_run(store).params
    assert p["peft/r"] == 4 and p["peft/peft_type"] == "LORA" and p["peft/target_modules"] == ["query", "value"]
    assert p["model/params_trainable"] == 16 * 2 + 2 < p["model/params_total"]


def test_checkpoints_rotation_and_best(store, tmp_path):
    t = make_trainer(tmp_path, [AutotrackCallback(uri=store, log_models=False)], max_steps=8, save_strategy="steps",
                     save_steps=2, save_total_limit=2, eval_strategy="steps", eval_steps=2,
                     metric_for_best_model="loss", greater_is_better=True)  # best = highest loss: not the last
    t.train()
    run = autotrack.last_run(store)
    groups = {}
    for art in run.artifacts:
        assert art.kind == "checkpoint"
        groups.setdefault(art.metadata["group"], []).append(art)
    assert sorted(groups) == [f"checkpoints/checkpoint-{s}" for s in (2, 4, 6, 8)], "every save recorded"
    on_disk = {f"checkpoints/{d}" for d in os.listdir(tmp_path / "out")}
    assert len(on_disk) == 2
    best_name = "checkpoints/" + os.path.basename(t.state.best_model_checkpoint)
    for name, files in groups.items():
        step = int(name.rsplit("-", 1)[1])
        names = {a.name.rsplit("/", 1)[1] for a in files}
        assert {"model.safetensors", "trainer_state.json", "optimizer.pt", "config.json", "training_args.bin"} <= names
        for art in files:
            meta = art.metadata
            assert meta["step"] == step and meta["epoch"] == step / 4 and meta["monitor"] == "eval_loss"
            assert meta["score"] == pytest.approx(next(h["eval_loss"] for h in t.state.log_history
                                                       if h.get("step") == step and "eval_loss" in h))
            assert meta.get("best", False) is (name == best_name)
            if name in on_disk:
                assert "superseded" not in meta
                assert art.read_bytes() == (tmp_path / "out" / art.name.split("/", 1)[1]).read_bytes()
            else:  # rotated out after it was recorded: superseded, its bytes released
                assert meta["superseded"] is True
                if meta["kept"] is False:
                    with pytest.raises(autotrack.ArtifactNotFoundError, match="released: superseded by"):
                        art.read_bytes()
    released = [name for name, files in groups.items()
                if any(a.metadata.get("kept") is False and a.name.endswith("model.safetensors") for a in files)]
    assert len(released) == 2
    best = [a for a in groups[best_name] if a.name.endswith("trainer_state.json")][0]
    assert best.metadata["best_score"] == pytest.approx(t.state.best_metric)


def test_secret_in_checkpoints_never_reaches_the_store(store, tmp_path):
    make_trainer(tmp_path, [AutotrackCallback(uri=store, log_models=False)], max_steps=2, save_strategy="steps",
                 save_steps=2, hub_token=SECRET).train()
    arts = autotrack.last_run(store).artifacts
    names = {a.name for a in arts}
    assert "checkpoints/checkpoint-2/model.safetensors" in names
    assert "checkpoints/checkpoint-2/training_args.bin" not in names, "a pickle of the args, token in clear"
    assert (tmp_path / "out" / "checkpoint-2" / "training_args.bin").exists()
    for art in arts:
        assert art.metadata["group"] == "checkpoints/checkpoint-2" and art.metadata["step"] == 2
        assert art.metadata["left_out"] == ["training_args.bin"] and SECRET.encode() not in art.read_bytes()


def test_log_checkpoints_all_keeps_rotated_bytes(store, tmp_path):
    make_trainer(tmp_path, [AutotrackCallback(uri=store, log_checkpoints="all", log_models=False)], max_steps=6,
                 save_strategy="steps", save_steps=2, save_total_limit=1).train()
    arts = autotrack.last_run(store).artifacts
    superseded = [a for a in arts if a.metadata.get("superseded")]
    assert {a.metadata["group"] for a in superseded} == {"checkpoints/checkpoint-2", "checkpoints/checkpoint-4"}
    for art in superseded:
        assert art.metadata["kept"] is True and len(art.read_bytes()) == art.size


def test_final_model_reloads_identically(store, tmp_path):
    t = make_trainer(tmp_path, [AutotrackCallback(uri=store)], max_steps=2)
    t.train()
    run = autotrack.last_run(store)
    files = [a for a in run.artifacts if a.kind == "model"]
    assert {a.metadata["group"] for a in files} == {"model"} and files[0].metadata["step"] == 2
    for art in files:
        art.download(tmp_path / "restored" / art.name.split("/", 1)[1])
    restored = BertForSequenceClassification.from_pretrained(tmp_path / "restored")
    ids = torch.randint(0, 50, (3, 8))
    t.model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.equal(restored(input_ids=ids).logits, t.model(input_ids=ids).logits)


class ExplodingTrainer(Trainer):
    def compute_loss(self, model, inputs, *args, **kwargs):
        if self.state.global_step >= self.explode_at:
            raise self.error
        return super().compute_loss(model, inputs, *args, **kwargs)


def test_exception_fails_the_run_and_propagates(store, tmp_path):
    autotrack.autolog(uri=store)
    t = make_trainer(tmp_path, cls=ExplodingTrainer, max_steps=6)
    t.explode_at, t.error = 3, ValueError("loss exploded")
    with pytest.raises(ValueError, match="loss exploded") as info:
        t.train()
    assert info.value is t.error
    run = autotrack.last_run(store)
    assert run.status == "failed" and "ValueError: loss exploded" in run.error
    assert [pt.step for pt in run.metrics["loss"]] == [2] and autotrack.active_run() is None


def test_callback_alone_a_train_that_raised_is_failed_by_the_next_train(store, tmp_path):
    t = make_trainer(tmp_path, [AutotrackCallback(uri=store)], cls=ExplodingTrainer, max_steps=6)
    t.explode_at, t.error = 3, ValueError("loss exploded")
    with pytest.raises(ValueError, match="loss exploded"):
        t.train()
    assert autotrack.last_run(store).status == "running", "no callback hook hears of the exception"
    t.explode_at = 100
    t.train()
    second, first = autotrack.runs(uri=store)
    assert first.status == "failed" and "did not complete" in first.error and len(first.metrics["loss"]) == 1
    assert second.status == "finished" and [pt.step for pt in second.metrics["loss"]] == [2, 4, 6]
    assert restored(), "a callback patches nothing"


def test_keyboard_interrupt_is_killed(store, tmp_path):
    autotrack.autolog()
    t = make_trainer(tmp_path, [AutotrackCallback(uri=store)], cls=ExplodingTrainer, max_steps=6)
    t.explode_at, t.error = 1, KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        t.train()
    run = autotrack.last_run(store)
    assert run.status == "killed" and "KeyboardInterrupt" in run.error


def test_failing_backend_cannot_stop_train(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")
    autotrack.register_backend("deadtransformers", DeadStore, clobber=True)
    t = make_trainer(tmp_path, [AutotrackCallback(uri="deadtransformers://x")], save_strategy="steps", save_steps=2)
    with pytest.warns(autotrack.AutotrackWarning):
        out = t.train()
        t.evaluate()
    assert out.global_step == 4 and os.path.isdir(tmp_path / "out" / "checkpoint-4")


def test_autolog_one_run_per_train_no_duplicates(store, tmp_path):
    autotrack.autolog(uri=store)
    t = make_trainer(tmp_path, max_steps=2)
    t.train()
    t.train()  # second train: second run
    assert len(autotrack.runs(uri=store)) == 2
    assert not any(isinstance(c, AutotrackCallback) for c in t.callback_handler.callbacks), "removed after"
    mine = AutotrackCallback(uri=store, experiment="mine")  # the user's own callback + autolog: one run
    make_trainer(tmp_path, [mine], max_steps=2).train()
    runs = autotrack.runs(uri=store)
    assert len(runs) == 3 and runs[0].experiment == "mine"
    assert all(r.framework == "transformers" and r.status == "finished" for r in runs)


def test_evaluate_after_train_lands_in_the_train_run(store, tmp_path):
    autotrack.autolog(uri=store)
    t = make_trainer(tmp_path, max_steps=2)
    t.train()
    metrics = t.evaluate()
    (run,) = autotrack.runs(uri=store)
    assert run.status == "finished" and "loss" in run.metrics
    (point,) = run.metrics["eval_loss"]
    assert point.value == pytest.approx(metrics["eval_loss"]) and point.step == 2
    t.predict(Tokens(8, seed=2))
    assert len(autotrack.runs(uri=store)) == 1 and "test_loss" in autotrack.last_run(store).metrics
    other = make_trainer(tmp_path, max_steps=2)
    other.evaluate()  # no train before: a run of its own
    assert len(autotrack.runs(uri=store)) == 2 and "eval_loss" in autotrack.last_run(store).metrics


def test_user_run_wraps_train_and_evaluate(store, tmp_path):
    with autotrack.start_run(uri=store, name="mine") as run:
        t = make_trainer(tmp_path, [AutotrackCallback()], max_steps=2)
        t.train()
        t.evaluate()
        assert autotrack.active_run() is run
    (rec,) = autotrack.runs(uri=store)
    assert rec.id == run.id and rec.framework == "transformers" and rec.status == "finished"
    assert {"loss", "train_loss", "eval_loss"} <= set(rec.metrics)


def test_only_world_process_zero_records(store, tmp_path):
    t = make_trainer(tmp_path, [AutotrackCallback(uri=store)], max_steps=2, save_strategy="steps", save_steps=2)
    t.is_world_process_zero = lambda: False  # what a rank > 0 of a distributed job sees
    t.train()
    t.evaluate()
    assert autotrack.runs(uri=store) == [] and autotrack.active_run() is None


def test_trainer_subclass_with_own_train(store, tmp_path):
    class MyTrainer(Trainer):
        def train(self, *args, **kwargs):
            self.called = True
            return super().train(*args, **kwargs)

    autotrack.autolog(uri=store)
    t = make_trainer(tmp_path, cls=MyTrainer, max_steps=2)
    t.train()
    (run,) = autotrack.runs(uri=store)
    assert t.called and run.status == "finished" and [pt.step for pt in run.metrics["loss"]] == [2]


def test_log_every_n_steps_thins_training_logs(store, tmp_path):
    make_trainer(tmp_path, [AutotrackCallback(uri=store, log_every_n_steps=4)], logging_steps=1, max_steps=8,
                 eval_strategy="steps", eval_steps=2).train()
    m = autotrack.last_run(store).metrics
    assert [pt.step for pt in m["loss"]] == [4, 8] and [pt.step for pt in m["eval_loss"]] == [2, 4, 6, 8]
    assert len(m["train_loss"]) == 1


def test_resume_is_tagged_and_bad_option_fails_early(store, tmp_path):
    make_trainer(tmp_path, max_steps=2, save_strategy="steps", save_steps=2).train()
    t = make_trainer(tmp_path, [AutotrackCallback(uri=store, log_models=False)], max_steps=4,
                     save_strategy="steps", save_steps=2)
    t.train(resume_from_checkpoint=True)
    run = autotrack.last_run(store)
    assert run.tags["resumed_from_checkpoint"] == str(tmp_path / "out" / "checkpoint-2")
    assert [pt.step for pt in run.metrics["loss"]] == [4]
    with pytest.raises(ValueError, match="log_every_n_steps"):
        AutotrackCallback(log_every_n_steps=0)


def test_disable_restores_every_original(store, tmp_path):
    assert all(type(f) is types.FunctionType for f in ORIGINALS.values()), "importing the integration patched nothing"
    AutotrackCallback(uri=store)
    assert restored(), "making a callback patches nothing"
    autotrack.autolog(uri=store)
    assert not restored()
    t = make_trainer(tmp_path, max_steps=2)
    t.train()
    t.evaluate()
    t.predict(Tokens(8, seed=2))
    autotrack.autolog(disable=True)
    assert restored(), "train, evaluate, predict: the very same functions"
    make_trainer(tmp_path, max_steps=2).train()
    assert len(autotrack.runs(uri=store)) == 1, "no autolog, no callback: nothing recorded"


class Texts(torch.utils.data.Dataset):
    """Tokenized sentences of different lengths: the data collator pads them (as in the task guides)."""

    def __init__(self, tokenizer, n=16):
        words = ["good", "bad", "movie", "plot", "acting"]
        self.items = [dict(tokenizer(" ".join(words[: 1 + i % 5])), label=i % 2) for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def tiny_tokenizer():
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie", "plot", "acting"]
    return BertTokenizer(vocab={w: i for i, w in enumerate(words)})  # from a local vocabulary: no download


@pytest.mark.parametrize("given_as", ["data_collator", "processing_class"])
def test_tokenizer_recorded_with_the_model_and_in_checkpoints(store, tmp_path, given_as):
    tokenizer = tiny_tokenizer()
    extra = {"processing_class": tokenizer} if given_as == "processing_class" else {}
    t = Trainer(model=tiny_bert(), args=make_args(tmp_path, max_steps=2, save_strategy="steps", save_steps=2),
                train_dataset=Texts(tokenizer), data_collator=DataCollatorWithPadding(tokenizer=tokenizer),
                callbacks=[AutotrackCallback(uri=store)], **extra)
    t.train()
    arts = {a.name: a for a in autotrack.last_run(store).artifacts}
    for folder in ("model", "checkpoints/checkpoint-2"):  # the Trainer saves the collator's tokenizer there
        assert {f"{folder}/tokenizer.json", f"{folder}/tokenizer_config.json"} <= set(arts), folder
    assert arts["model/config.json"].metadata["tokenizer"] == "BertTokenizer"
    for art in arts.values():
        if art.kind == "model":
            art.download(tmp_path / "restored" / art.name.split("/", 1)[1])
    restored_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "restored")
    assert restored_tokenizer("good movie")["input_ids"] == tokenizer("good movie")["input_ids"]
