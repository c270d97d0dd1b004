"""Hugging Face transformers: ``AutotrackCallback`` for ``Trainer`` and its subclasses.

One ``train()`` is one run, on the world process zero only. Every ``on_log`` is recorded under
transformers' names at the global step, with its own (fractional) epoch; ``evaluate()``/
``predict()`` after ``train()`` reopen the train's run. The final model is saved with its
tokenizer: ``processing_class``, else the data collator's (which the Trainer saves into
checkpoints then). ``on_save`` comes after the Trainer wrote ``checkpoint-N`` *and* rotated old
folders out (never the newest, and the others were logged, pinned, at their own ``on_save``): it
logs the new folder and marks the logged folders that are gone superseded.

A ``TrainerCallback`` hears of no exception: under ``autolog()`` only, ``Trainer.train``,
``evaluate`` and ``predict`` are wrapped (``disable()`` puts the very same functions back). The
wrapper adds the callback when the trainer has none and, around ``train()``, begins the run,
hands it to the callback (:meth:`AutotrackCallback.attach`) and ends it, ``failed``/``killed``
with the traceback when ``train()`` raises. Without it, a ``train()`` that raised is ended
``failed`` by the callback's next ``train()``, or at the program's end (by the core).
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import Any

import transformers
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import get_last_checkpoint

from autotrack._safety import guard
from autotrack.integrations._common import FitRecorder, Patcher, explicit_options, resolve_options
from autotrack.integrations._transformers_params import (REDACTED, checkpoint_dir, checkpoint_score, loader_info,
                                                          scalar_logs, seeds, tokenizer_of, train_params)

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
                 log_models: bool | None = None, log_every_n_steps: int | None = None, name: str | None = None,
                 register_as: str | None = None) -> None:
        self.options = resolve_options(**explicit_options(
            uri=uri, experiment=experiment, log_checkpoints=log_checkpoints, log_models=log_models,
            log_every_n_steps=log_every_n_steps, register_as=register_as))
        self.name = name
        self.recorder: FitRecorder | None = None  # the train() being recorded
        self.attached = False  # the recorder was handed in by autolog's train wrapper, which ends it
        self.resumed_from: str | None = None  # the checkpoint train() resumes from, when the wrapper saw it
        self._started = self._eval_logged = self._secret = False
        self._last_train: Any = None  # the run of the last train(), for evaluate()/predict() after it

    # -- the run's life -----------------------------------------------------------------------
    def attach(self, recorder: FitRecorder, resumed_from: str | None = None) -> None:
        """Record the coming ``train()`` into ``recorder``, which the caller (autolog's wrapper)
        began and ends after :meth:`close`."""
        self.recorder, self.attached, self.resumed_from, self._started = recorder, True, resumed_from, False

    def close(self, exc: BaseException | None = None) -> None:
        """The train is over: the recorder is let go, and ended here unless it was attached."""
        recorder, attached = self.recorder, self.attached
        self.recorder, self.attached, self.resumed_from, self._started = None, False, None, False
        if recorder is not None and not attached:
            with guard("transformers: finishing the run"):
                recorder.end(exc)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, train_dataloader: Any = None,
                       **kwargs: Any) -> None:
        with guard("transformers: starting the run"):
            if self._started and args.auto_find_batch_size:  # a retry inside one train(): same run
                self.recorder.params({"train_batch_size": state.train_batch_size})
                return
            if self._started:  # no wrapper saw it: the last train() raised before on_train_end
                self.close(RuntimeError("the train() did not complete: it raised before on_train_end "
                                        "(seen when the next train() started)"))
            if not self.attached:
                self.recorder = FitRecorder("transformers", self.options, record=state.is_world_process_zero)
                self.recorder.begin(self.name or args.run_name)
            self._started, rec = True, self.recorder
            if not rec.active:
                return
            self._last_train, self._eval_logged = rec.run, False
            params = train_params(args, model)
            self._secret = REDACTED in params.values()  # then training_args.bin holds it in clear
            rec.params(params)
            rec.seeds(seeds(args))
            if state.global_step:  # the Trainer has loaded the state of the checkpoint it resumes from
                resumed = self.resumed_from or checkpoint_dir(args, state)
                rec.tags({"resumed_from_checkpoint": os.path.abspath(resumed)})
            if train_dataloader is not None:
                rec.data("train", train_dataloader.dataset, **loader_info(train_dataloader, args.train_batch_size))

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None,
                     train_dataloader: Any = None, **kwargs: Any) -> None:
        rec = self.recorder
        if rec is not None and rec.active:
            with guard("transformers: recording the end of training"):
                self._sweep(args, state)
                sharded = bool(args.deepspeed or args.fsdp)  # rank 0 alone cannot gather the weights
                if rec.options.log_models and model is not None and not sharded:
                    _log_final_model(rec, args, state, model, tokenizer_of(processing_class, train_dataloader))
        if not self.attached:
            self.close()
        self._started = False

    # -- metrics --------------------------------------------------------------------------------
    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        with guard("transformers: recording metrics"):
            self._record(args, state, scalar_logs(logs), (logs or {}).get("epoch", state.epoch))

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        with guard("transformers: recording prediction metrics"):
            self._record(args, state, scalar_logs(metrics), state.epoch)

    def on_evaluate(self, args: Any, state: Any, control: Any, eval_dataloader: Any = None, **kwargs: Any) -> None:
        rec = self.recorder
        if rec is not None and self._started and not self._eval_logged and eval_dataloader is not None:
            self._eval_logged = True
            with guard("transformers: fingerprinting data"):
                rec.data("eval", eval_dataloader.dataset, **loader_info(eval_dataloader, args.eval_batch_size))

    def _record(self, args: Any, state: Any, values: dict[str, Any], epoch: Any) -> None:
        if not values:
            return
        rec = self.recorder
        if rec is None or not self._started:  # evaluate()/predict() outside train(): into the train's run
            rec = FitRecorder("transformers", self.options, record=state.is_world_process_zero, evaluation=True)
            rec.begin(self.name or args.run_name, reopen=self._last_train)  # (or the user's, or its own)
            try:
                rec.metrics(values, step=state.global_step, epoch=epoch)
            finally:
                rec.end()
            return
        n = rec.options.log_every_n_steps
        if n and "loss" in values and state.global_step % n:
            return  # log_every_n_steps thins the training-step logs; eval and summary always pass
        rec.metrics(values, step=state.global_step, epoch=epoch)

    # -- checkpoints and the final model ------------------------------------------------------
    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        rec = self.recorder
        tracker = rec.checkpoints if rec is not None and self._started else None
        if tracker is None:
            return
        with guard("transformers: recording a checkpoint"):
            path = checkpoint_dir(args, state)
            meta = {"step": state.global_step, "epoch": state.epoch, **checkpoint_score(args, state)}
            if not self._secret:
                rec.checkpoint(path, meta)
            elif os.path.isdir(path):  # every file but the pickled TrainingArguments, as one group
                name = tracker.names[os.path.abspath(path)] = tracker.prefix + os.path.basename(path)
                meta.update(group=name, left_out=[TRAINING_ARGS_NAME])
                for folder, _dirs, files in os.walk(path):
                    for file in sorted(set(files) - {TRAINING_ARGS_NAME}):
                        rel = os.path.relpath(os.path.join(folder, file), path).replace(os.sep, "/")
                        rec.run.log_artifact(os.path.join(folder, file), f"{name}/{rel}", "checkpoint", meta)
            self._sweep(args, state)

    def _sweep(self, args: Any, state: Any) -> None:
        """Folders logged but gone are superseded (rotation); the best one is marked."""
        tracker = self.recorder.checkpoints
        if tracker is None:
            return
        for path in list(tracker.names):
            if not os.path.isdir(path):
                self.recorder.checkpoint_removed(path)
        best = state.best_model_checkpoint
        if best and os.path.abspath(best) in tracker.names:
            self.recorder.best_checkpoint(best, {"best_score": state.best_metric, **checkpoint_score(args, state)})


def _log_final_model(rec: FitRecorder, args: Any, state: Any, model: Any, tokenizer: Any) -> None:
    """``save_pretrained`` (a plain torch module: its state dict) and the tokenizer beside it."""
    meta = {"step": state.global_step, "epoch": state.epoch,
            "best_model_loaded": bool(args.load_best_model_at_end and state.best_model_checkpoint)}
    with tempfile.TemporaryDirectory() as tmp:
        if callable(getattr(model, "save_pretrained", None)):
            model.save_pretrained(tmp)
            meta["format"] = "transformers"
        else:
            import torch

            torch.save(model.state_dict(), os.path.join(tmp, "pytorch_model.bin"))
            meta["format"] = "torch-state-dict"
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
            meta["tokenizer"] = type(tokenizer).__name__
        rec.model(tmp, name="model", metadata=meta)


# -- autolog(): the Trainer wrappers ------------------------------------------------------------
_patcher = Patcher()
_added: "weakref.WeakKeyDictionary[Any, AutotrackCallback]" = weakref.WeakKeyDictionary()  # trainer -> ours


def _around(wrapped: Any, trainer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Adds the callback for the call when the trainer has none (the same one every call, so
    that evaluate() finds the train's run); around train(), begins and ends the run."""
    added, attached, rec = None, [], None
    with guard("transformers: preparing the callback"):
        ours = [c for c in trainer.callback_handler.callbacks if isinstance(c, AutotrackCallback)]
        if not ours:
            added = _added.setdefault(trainer, AutotrackCallback())
            trainer.add_callback(added)
        if wrapped.__name__ == "train":
            attached = ours or [added]
            rec = FitRecorder("transformers", attached[0].options, record=trainer.is_world_process_zero())
            rec.begin(attached[0].name or trainer.args.run_name)
            resume = kwargs.get("resume_from_checkpoint", args[0] if args else None)
            resume = get_last_checkpoint(trainer.args.output_dir) if resume is True else resume
            attached[0].attach(rec, os.fspath(resume) if resume else None)
            for other in attached[1:]:  # one run, not two
                other.attach(FitRecorder("transformers", other.options, record=False))
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _end(attached, rec, exc)
        raise
    finally:
        if added is not None:
            with guard("transformers: removing the autolog callback"):
                trainer.remove_callback(added)
    _end(attached, rec, None)
    return result


def _end(attached: list[AutotrackCallback], rec: FitRecorder | None, exc: BaseException | None) -> None:
    for cb in attached:
        cb.close()
    if rec is not None:
        with guard("transformers: finishing the run"):
            rec.end(exc)


def enable(config: Any) -> None:
    """autolog(): wrap ``Trainer.train/evaluate/predict`` (once)."""
    if not _patcher:
        for method in ("train", "evaluate", "predict"):
            _patcher.wrap(transformers.Trainer, method, _around)


def disable() -> None:
    _patcher.undo()
