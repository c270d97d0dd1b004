"""Hugging Face transformers: ``AutotrackCallback`` for ``Trainer`` and its subclasses.

One ``train()`` is one run, started at ``on_train_begin`` on the world process zero only. Every
``on_log`` is recorded under transformers' names (``loss``, ``learning_rate``, ``grad_norm``,
``eval_*``, the ``train_runtime``/``train_loss`` summary) at the global step, with its own
(fractional) epoch. ``evaluate()``/``predict()`` after ``train()`` reopen the train's run.

Checkpoints: ``on_save`` comes after ``_save_checkpoint`` has written ``checkpoint-N`` *and*
rotated old folders out. Rotation never deletes the newest folder, and those it deletes were
logged (files pinned by hard links) at their own ``on_save``; so each ``on_save`` (and
``on_train_end``, for the final ``save_total_limit=1`` clean-up) logs the new folder, then marks
the logged folders that are gone superseded. No private Trainer method is patched for this.

A ``TrainerCallback`` hears of no exception, so ``Trainer.train/evaluate/predict`` are wrapped at
class level once an ``AutotrackCallback`` exists or ``autolog()`` is on: a pass-through unless the
trainer carries an ``AutotrackCallback``; it ends that run ``failed``/``killed`` when the call
raises, and adds the callback for the call under ``autolog()``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import transformers
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import get_last_checkpoint

from autotrack._run import active_run
from autotrack._safety import guard
from autotrack.integrations._common import (CheckpointTracker, FitSession, Patcher, explicit_options,
                                             resolve_options)
from autotrack.integrations._transformers_params import (REDACTED, checkpoint_dir, checkpoint_score, loader_info,
                                                          scalar_logs, seeds, train_params)

__all__ = ["AutotrackCallback", "enable", "disable"]


class AutotrackCallback(transformers.TrainerCallback):
    """Record every ``train()`` (and ``evaluate()``/``predict()``) of the Trainer it is given to.

    Example::

        from autotrack.integrations.transformers import AutotrackCallback
        trainer = Trainer(model=model, args=args, train_dataset=ds,
                          callbacks=[AutotrackCallback(experiment="sst2")])
        trainer.train()
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None, log_checkpoints: Any = None,
                 log_models: bool | None = None, log_every_n_steps: int | None = None, name: str | None = None) -> None:
        self._explicit = explicit_options(uri=uri, experiment=experiment, log_checkpoints=log_checkpoints,
                                          log_models=log_models, log_every_n_steps=log_every_n_steps)
        self._name = name
        self._session: FitSession | None = None
        self._last_train: Any = None
        self._tracker: CheckpointTracker | None = None
        self._resume: Any = None
        self._eval_logged = self._secret = False
        _install("callback")

    @property
    def _run(self) -> Any:
        return self._session.run if self._session is not None and self._session.active else None

    def _end(self, exc: BaseException | None = None) -> None:
        self._tracker = None
        session, self._session = self._session, None
        if session is not None:
            session.end(exc)

    # -- the run's life -----------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, train_dataloader: Any = None,
                       **kwargs: Any) -> None:
        with guard("transformers: starting the run"):
            if self._session is not None:  # auto_find_batch_size retries inside one train(): same run
                if self._run is not None:
                    self._run.log_params({"train_batch_size": args.train_batch_size})
                return
            options = resolve_options(**self._explicit)
            self._session = FitSession("transformers", options, record=state.is_world_process_zero)
            run = self._session.begin(self._name or args.run_name)
            if not self._session.active:
                return
            self._last_train, self._eval_logged = run, False
            if options.log_checkpoints:
                self._tracker = CheckpointTracker(run, keep_all=options.log_checkpoints == "all")
            params = train_params(args, model)
            self._secret = REDACTED in params.values()  # then training_args.bin holds it in clear
            run.log_params(params)
            run.log_seeds(seeds(args))
            resume = get_last_checkpoint(args.output_dir) if self._resume is True else self._resume
            if resume:
                run.set_tags({"resumed_from_checkpoint": os.path.abspath(str(resume))})
        run = self._run
        if run is not None and train_dataloader is not None:
            with guard("transformers: fingerprinting data"):
                run.log_data("train", train_dataloader.dataset, **loader_info(train_dataloader, args.train_batch_size))

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None,
                     **kwargs: Any) -> None:
        run = self._run
        if run is not None:
            with guard("transformers: recording the end of training"):
                self._sweep(args, state)
                sharded = bool(args.deepspeed or args.fsdp)  # rank 0 alone cannot gather the weights
                if self._session is not None and self._session.options.log_models and model is not None and not sharded:
                    _log_final_model(run, args, state, model, processing_class)
        with guard("transformers: finishing the run"):
            self._end()

    # -- metrics ------------------------------------------------------------------------
    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        with guard("transformers: recording metrics"):
            self._record(args, state, scalar_logs(logs), (logs or {}).get("epoch", state.epoch))

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        with guard("transformers: recording prediction metrics"):
            self._record(args, state, scalar_logs(metrics), state.epoch)

    def on_evaluate(self, args: Any, state: Any, control: Any, eval_dataloader: Any = None, **kwargs: Any) -> None:
        run = self._run
        if run is not None and not self._eval_logged and eval_dataloader is not None:
            self._eval_logged = True
            with guard("transformers: fingerprinting data"):
                run.log_data("eval", eval_dataloader.dataset, **loader_info(eval_dataloader, args.eval_batch_size))

    def _record(self, args: Any, state: Any, values: dict[str, Any], epoch: Any) -> None:
        if not values:
            return
        if self._session is None:  # evaluate()/predict() outside train(): a short session of its own
            self._record_outside(args, state, values, epoch)
            return
        run = self._run
        n = self._session.options.log_every_n_steps
        if run is None or n and "loss" in values and state.global_step % n:
            return  # log_every_n_steps thins the training-step logs; eval and summary always pass
        run.log_metrics(values, step=state.global_step, epoch=epoch)

    def _record_outside(self, args: Any, state: Any, values: dict[str, Any], epoch: Any) -> None:
        session = FitSession("transformers", resolve_options(**self._explicit), record=state.is_world_process_zero)
        last = self._last_train
        if session.record and last is not None and last.status != "running" and active_run() is None:
            session.run, session.owned = last.reopen(), True  # evaluate after train: the train's run
        else:
            session.begin(self._name or args.run_name)  # the user's run, or a run of its own
        try:
            session.run.log_metrics(values, step=state.global_step, epoch=epoch)
        finally:
            session.end()

    # -- checkpoints and the final model ------------------------------------------------------
    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        tracker, run = self._tracker, self._run
        if tracker is None or run is None:
            return
        with guard("transformers: recording a checkpoint"):
            path = checkpoint_dir(args, state)
            meta = {"step": state.global_step, "epoch": state.epoch, **checkpoint_score(args, state)}
            if not self._secret:
                tracker.saved(path, meta)
            elif os.path.isdir(path):  # every file but the pickled TrainingArguments, as one group
                name = tracker.names[os.path.abspath(path)] = tracker.prefix + os.path.basename(path)
                meta.update(group=name, left_out=[TRAINING_ARGS_NAME])
                for folder, _dirs, files in os.walk(path):
                    for file in sorted(set(files) - {TRAINING_ARGS_NAME}):
                        rel = os.path.relpath(os.path.join(folder, file), path).replace(os.sep, "/")
                        run.log_artifact(os.path.join(folder, file), f"{name}/{rel}", "checkpoint", meta)
            self._sweep(args, state)

    def _sweep(self, args: Any, state: Any) -> None:
        """Folders logged but gone are superseded (rotation); the best one is marked."""
        tracker = self._tracker
        if tracker is None:
            return
        for path in list(tracker.names):
            if not os.path.isdir(path):
                tracker.removed(path)
        best = state.best_model_checkpoint
        if best and os.path.abspath(best) in tracker.names:
            tracker.mark_best(best, {"best_score": state.best_metric, **checkpoint_score(args, state)})


def _log_final_model(run: Any, args: Any, state: Any, model: Any, processing_class: Any) -> None:
    meta = {"step": state.global_step, "epoch": state.epoch,
            "best_model_loaded": bool(args.load_best_model_at_end and state.best_model_checkpoint)}
    with tempfile.TemporaryDirectory() as tmp:
        if callable(getattr(model, "save_pretrained", None)):
            model.save_pretrained(tmp)
            meta["format"] = "transformers"
        else:  # a plain torch module given to the Trainer
            import torch

            torch.save(model.state_dict(), os.path.join(tmp, "pytorch_model.bin"))
            meta["format"] = "torch-state-dict"
        if callable(getattr(processing_class, "save_pretrained", None)):
            processing_class.save_pretrained(tmp)
        run.log_artifact(tmp, name="model", kind="model", metadata=meta)


# -- the Trainer wrapper: failures, and the callback for autolog() -----------------------------
_patcher = Patcher()
_state = {"autolog": False, "callback": False}


def _around(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    trainer, injected, ours = instance, None, []
    with guard("transformers: preparing the callback"):
        ours = [c for c in trainer.callback_handler.callbacks if isinstance(c, AutotrackCallback)]
        if not ours and _state["autolog"]:
            injected = trainer.__dict__.get("_autotrack_callback") or AutotrackCallback()
            trainer.__dict__["_autotrack_callback"] = injected  # the same one each call: evaluate finds the train's run
            trainer.add_callback(injected)
            ours = [injected]
        if getattr(wrapped, "__name__", "") == "train":
            resume = kwargs.get("resume_from_checkpoint", args[0] if args else None)
            for cb in ours:
                cb._resume = resume
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        for cb in ours:
            with guard("transformers: recording the failure"):
                cb._end(exc)
        raise
    finally:
        if injected is not None:
            with guard("transformers: removing the autolog callback"):
                trainer.remove_callback(injected)


def _install(reason: str) -> None:
    _state[reason] = True
    for method in ("train", "evaluate", "predict"):
        _patcher.wrap(transformers.Trainer, method, _around)


def enable(config: Any) -> None:
    """autolog(): add the callback to every ``Trainer.train/evaluate/predict`` call."""
    _install("autolog")


def disable() -> None:
    _state["autolog"] = False
    if not _state["callback"]:  # callbacks the user made still need to hear of failures
        _patcher.undo()
