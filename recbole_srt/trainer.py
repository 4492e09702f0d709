"""What SRT and fair side-by-side runs need, added on top of RecBole's trainer for every sequential model."""

import functools
import math
import os
import uuid

import torch
import torch.distributed as dist
from recbole.trainer import Trainer
from recbole.utils import ModelType, init_seed, set_color
from recbole.utils import get_trainer as recbole_get_trainer
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import clip_grad_norm_

from recbole_srt import distributed, random_state
from recbole_srt.acceleration.attention import use_attention
from recbole_srt.acceleration.dropout import use_cpu_mask_dropout
from recbole_srt.acceleration.precision import autocast_loss, check as check_precision
from recbole_srt.acceleration.training_epoch import train_epoch
from recbole_srt.checkpoint import data_only_other_parameter, load_checkpoint, save_checkpoint
from recbole_srt.compat import disable_anomaly_detection, use_fused_gelu
from recbole_srt.config import checkpoint_settings, plain_value
from recbole_srt.evaluation.trainer_evaluation import EvaluationMixin
from recbole_srt.lr_schedule import build_scheduler, warming_up
from recbole_srt.scaling.flops import epoch_flops, parameter_counts
from recbole_srt.transfer import ewc, finetune


class _Loss(torch.nn.Module):
    """The model's training loss (plus a regulariser such as EWC's, if any) as a module's forward, so
    DistributedDataParallel and torch.compile wrap the loss itself."""

    def __init__(self, model, penalty=None):
        super().__init__()
        self.model = model
        self.penalty = penalty

    def forward(self, interaction):
        loss = self.model.calculate_loss(interaction)
        return loss if self.penalty is None else loss + self.penalty()


class SRTTrainerMixin(EvaluationMixin):
    """Adds the one-cycle LR schedule (stepped after every optimizer step, saved with checkpoints), gradient clipping
    from `max_grad_norm`, checkpoints that load under torch's weights-only unpickler, data-parallel training
    (`recbole_srt.distributed`), mixed precision, fine-tuning stages, compute accounting, and (EvaluationMixin)
    `sampledN` and distributed evaluation, to RecBole's `Trainer` or to a model's own trainer (S3Rec's), whose
    behaviour is otherwise kept.

    `pretraining_data`, a function from a checkpoint path to (model, training dataloader) rebuilt from it, is what
    EWC needs for its Fisher information; the caller (the quick start) hands it down.
    """

    def __init__(self, config, model, pretraining_data=None):
        self.pretraining_data = pretraining_data
        disable_anomaly_detection()
        use_fused_gelu(model)
        use_attention(model, config["attention"] or "sdpa")
        use_cpu_mask_dropout(model, config["fast_cpu_dropout"] is not False)
        self.precision = config["precision"] or "fp32"
        check_precision(self.precision, config["device"])
        if config["device"].type == "cuda" and config["allow_tf32"]:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        is_distributed = distributed.is_distributed(config)
        # RecBole's constructor wraps the model in DDP for CUDA only, and reduces gradients through a dummy forward
        # (set_reduce_hook); we wrap the loss instead, on any device (_set_up_training_step).
        config["single_spec"] = True
        try:
            super().__init__(config, model)
        finally:
            config["single_spec"] = not is_distributed
        # RecBole names checkpoints MODEL-<time to the second>.pth: two runs started in the same second (parallel
        # benchmark processes) would write one file. A random suffix keeps them apart; a distributed run uses
        # process 0's choice.
        root, ext = os.path.splitext(self.saved_model_file)
        self.saved_model_file = f"{root}-{uuid.uuid4().hex[:6]}{ext}"
        if is_distributed:
            self.saved_model_file = distributed.shared_path(self.saved_model_file)
        self._set_up_training_step(config, model, is_distributed)
        self.lr_schedule = config["lr_schedule"] or "constant"
        self.lr_scheduler = None
        self.stopping_in_warmup = bool(config["stopping_in_warmup"])
        self._resumed_scheduler_state = None
        self._resumed = None  # a checkpoint being resumed from, until its RNG states are restored
        self._train_data = None
        self.finetune_stage = None  # the progressive fine-tuning stage being trained (its 1-based index)
        # Compute accounting (the scaling study's axes), logged after every epoch and returned by run_recbole.
        self.n_parameters, self.n_non_embedding_parameters = parameter_counts(model)
        self.train_flops = 0
        self.seen_interactions = 0
        self.last_valid_result = None

    def _set_up_training_step(self, config, model, is_distributed):
        """The loss as a module (compiled if asked, in DDP when distributed), clipping, mixed precision."""
        self.loss_module = _Loss(model, ewc.from_config(config, model, self.pretraining_data)
                                        if config["ewc_lambda"] else None)
        if config["compile"]:
            # Static shapes: the smaller last batch gets its own graph instead of turning the full batches' into a
            # symbolic-shape one (slower kernels, no CUDA graphs).
            self.loss_module = torch.compile(self.loss_module, backend=config["compile_backend"] or "inductor",
                                             dynamic=False)
        if is_distributed:
            # Buffers a checkpoint leaves out (SRT's token table, popularity) are rebuilt from the dataset alike in
            # every process: broadcasting them would copy a store's whole token table, in a type gloo refuses.
            persistent = set(self.loss_module.state_dict())
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self.loss_module, [name for name, _ in self.loss_module.named_buffers() if name not in persistent])
            device_ids = [config["device"].index] if config["device"].type == "cuda" else None
            # Unused parameters (a model's branch a step does not take) must not stall the gradient reduction.
            self.distributed_model = DistributedDataParallel(self.loss_module, device_ids=device_ids,
                                                             find_unused_parameters=True)
        if config["max_grad_norm"] and not self.clip_grad_norm:
            self.clip_grad_norm = {"max_norm": config["max_grad_norm"]}
        # RecBole clips right after backward, before fp16 loss scaling is undone; clipping as the optimizer step
        # begins sees the true gradients in every precision (GradScaler unscales before stepping).
        self.grad_clipping, self.clip_grad_norm = self.clip_grad_norm, None
        if self.grad_clipping:
            self.optimizer.register_step_pre_hook(self._clip_gradients)
        # Our autocast (bf16 or fp16) replaces RecBole's enable_amp (fp16 on CUDA only, no choice of dtype).
        self.enable_amp, self.enable_scaler = False, self.precision == "fp16"

    def _clip_gradients(self, *_):
        clip_grad_norm_(self.model.parameters(), **self.grad_clipping)

    def _scheduled_epochs(self):
        """A pre-training stage (PretrainTrainer's) runs `pretrain_epochs`, not `epochs`."""
        if getattr(self.model, "train_stage", None) == "pretrain" and hasattr(self, "pretrain_epochs"):
            return self.pretrain_epochs
        return self.epochs

    @property
    def stopping_step(self):
        """RecBole's early-stopping patience, read at every validation: unbounded while a one-cycle rate warms up
        (unless `stopping_in_warmup`). Those epochs train at a fraction of the peak, and a validation dip there (a
        from-scratch history-match run scores well after its first epoch) ended 50-epoch runs after 5."""
        if self._waits_for_the_peak():
            return math.inf
        return self._stopping_step

    @stopping_step.setter
    def stopping_step(self, value):
        self._stopping_step = value

    def _waits_for_the_peak(self):
        return not self.stopping_in_warmup and warming_up(self.lr_scheduler)

    def _build_lr_scheduler(self, total_steps):
        self.lr_scheduler = build_scheduler(self.lr_schedule, self.optimizer, total_steps)
        if self.lr_scheduler is None:
            return
        if self._resumed_scheduler_state is not None:
            self.lr_scheduler.load_state_dict(self._resumed_scheduler_state)
            # Building the scheduler reset the optimizer's LR to step 0's; put back the resumed step's.
            for group, lr in zip(self.optimizer.param_groups, self.lr_scheduler.get_last_lr()):
                group["lr"] = lr
        self.optimizer.register_step_post_hook(lambda *_: self.lr_scheduler.step())

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """RecBole's fit (progressive in stages where set), then the TensorBoard writer closed: RecBole leaves it
        open, one writer thread per run, flushing to a path relative to the directory the run started in."""
        try:
            return self._fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)
        finally:
            self.tensorboard.close()

    def _fit(self, train_data, valid_data, verbose, saved, show_progress, callback_fn):
        self.set_train_item_counts(train_data)
        self._train_data = train_data
        if distributed.is_distributed(self.config):
            repeated = len(train_data.sampler) * self.config["world_size"] - train_data.sample_size
            self.logger.info(f"{self.config['world_size']} processes, {train_data.step} training samples each "
                             f"per step; {repeated} of {train_data.sample_size} samples repeated per epoch for "
                             "equal shares")
        fit_epochs = functools.partial(self._fit_epochs, train_data, valid_data, verbose, saved, show_progress,
                                       callback_fn)
        if finetune.check(self.config) == "progressive":
            result = finetune.fit_progressive(self, fit_epochs, len(train_data))
        else:
            if self.lr_scheduler is None:
                self._build_lr_scheduler(len(train_data) * self._scheduled_epochs())
            self.restore_resumed_state()
            result = fit_epochs()
        if distributed.is_main_process(self.config) and os.path.exists(self.last_checkpoint_file):
            os.remove(self.last_checkpoint_file)  # finished: nothing left to resume
        return result

    def _fit_epochs(self, train_data, valid_data, verbose, saved, show_progress, callback_fn):
        """RecBole's fit over start_epoch .. epochs, writing the `-last` state after every validated epoch."""

        def after_validation(epoch_idx, valid_score):
            if self._waits_for_the_peak():
                # Patience counts from the peak: a dip as long as the warm-up must not stop a run that is rising.
                self.cur_step = 0
            if saved:
                self._save_checkpoint(epoch_idx, verbose=False, saved_model_file=self.last_checkpoint_file,
                                      best_model_file=self.saved_model_file)
            if callback_fn:
                callback_fn(epoch_idx, valid_score)

        return super().fit(train_data, valid_data, verbose, saved, show_progress, after_validation)

    @property
    def last_checkpoint_file(self):
        """The state after the latest validated epoch, rewritten every epoch while a run trains: what `resume_from`
        continues from after an interruption (the best checkpoint alone would lose the epochs after it)."""
        root, ext = os.path.splitext(self.saved_model_file)
        return f"{root}-last{ext}"

    def new_optimizer(self, params, total_steps):
        """A fresh optimizer over `params` with its own schedule of `total_steps` (a fine-tuning stage's)."""
        self.optimizer = self._build_optimizer(params=params)
        if self.grad_clipping:
            self.optimizer.register_step_pre_hook(self._clip_gradients)
        self.lr_scheduler, self._resumed_scheduler_state = None, None
        self._build_lr_scheduler(total_steps)

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if loss_func is None:
            # Through DDP when distributed (gradients averaged over processes), compiled if asked, autocast to
            # the training precision.
            loss_func = self.distributed_model if distributed.is_distributed(self.config) else self.loss_module
            loss_func = autocast_loss(loss_func, self.precision, self.device)
        if _step_loop_is_recboles(super()._train_epoch):
            loss = train_epoch(self, train_data, epoch_idx, loss_func, show_progress)
        else:
            loss = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        flops = epoch_flops(self.model, self.config, train_data)
        self.train_flops = None if flops is None or self.train_flops is None else self.train_flops + flops
        self.seen_interactions += train_data.sample_size
        flops_text = "not counted for this model" if self.train_flops is None else f"{self.train_flops:.4g}"
        self.logger.info(f"epoch {epoch_idx}: training FLOPs so far {flops_text}, seen interactions "
                         f"{self.seen_interactions:,}")
        return loss

    def _valid_epoch(self, valid_data, show_progress=False):
        """RecBole's, keeping the result: fit's callback receives only the score (the scaling sweep records both)."""
        valid_score, self.last_valid_result = super()._valid_epoch(valid_data, show_progress=show_progress)
        return valid_score, self.last_valid_result

    def compute(self):
        """The run's compute accounting: parameters, cumulative training FLOPs and seen interactions."""
        return {"parameters": self.n_parameters, "non_embedding_parameters": self.n_non_embedding_parameters,
                "train_flops": self.train_flops, "seen_interactions": self.seen_interactions}

    def set_reduce_hook(self):
        """RecBole's dummy forward through DDP, not needed: the loss itself goes through DDP."""

    def sync_grad_loss(self):
        """RecBole's zero-weighted sum of every parameter, not needed: DDP finds unused parameters itself."""
        return 0

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        """Process 0 writes; every process waits until it has, so none reads a half-written file."""
        if distributed.is_main_process(self.config):
            self._write_checkpoint(epoch, verbose, **kwargs)
        if distributed.is_distributed(self.config):
            dist.barrier()

    def _write_checkpoint(self, epoch, verbose=True, **kwargs):
        """Tensors and plain values only (the config as settings, the tokenizer as bytes): a data-only file, with
        everything an interrupted run needs to go on as if it never stopped."""
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        settings, meta = checkpoint_settings(self.config)
        state = {
            "best_model_file": kwargs.pop("best_model_file", None),
            "config": settings,
            "config_meta": meta,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "best_valid_result": plain_value(dict(self.best_valid_result or {}), "best_valid_result") or None,
            "state_dict": self.model.state_dict(),
            "other_parameter": data_only_other_parameter(self.model.other_parameter()),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "finetune_stage": self.finetune_stage,
            "random_state": random_state.capture(self.device, getattr(self._train_data, "generator", None)),
            "compute": self.compute(),
        }
        save_checkpoint(state, saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def save_pretrained_model(self, epoch, saved_model_file):
        """PretrainTrainer's pre-training snapshots, in the same loadable format as every other checkpoint."""
        self._save_checkpoint(epoch, verbose=False, saved_model_file=saved_model_file)
        self.saved_model_file = saved_model_file

    def resume_checkpoint(self, resume_file):
        """Continue after the checkpoint's epoch, drawing the same random numbers as the uninterrupted run would
        have (RNG states are restored when `fit` starts). From a `-last` state, the best checkpoint it names stays
        the best (and is what the test loads); from a best checkpoint, training goes on from it."""
        checkpoint = load_checkpoint(resume_file, self.device, trust=bool(self.config["trust_checkpoint"]))
        trained_as = checkpoint["config"]["model"]
        if str(trained_as).lower() != str(self.config["model"]).lower():
            raise ValueError(f"resume_from: checkpoint {resume_file} was trained as {trained_as}, not "
                             f"{self.config['model']}")
        self.saved_model_file = checkpoint.get("best_model_file") or str(resume_file)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint.get("best_valid_result")
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self._resumed = checkpoint
        if checkpoint.get("finetune_stage") is None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self._resumed_scheduler_state = checkpoint.get("lr_scheduler")
        compute = checkpoint.get("compute") or {}
        self.train_flops = compute.get("train_flops", self.train_flops)
        self.seen_interactions = compute.get("seen_interactions", self.seen_interactions)
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def resumed_stage(self):
        """The progressive fine-tuning stage the run resumes inside, or None."""
        return None if self._resumed is None else self._resumed.get("finetune_stage")

    def restore_resumed_state(self, optimizer_too=False):
        """Once training is about to go on: the RNG states (and, for a fine-tuning stage's fresh optimizer, its
        optimizer and schedule) of the resumed checkpoint; nothing when the run did not resume."""
        if self._resumed is None:
            return
        if optimizer_too:
            self.optimizer.load_state_dict(self._resumed["optimizer"])
            if self.lr_scheduler is not None and self._resumed.get("lr_scheduler") is not None:
                self.lr_scheduler.load_state_dict(self._resumed["lr_scheduler"])
                for group, lr in zip(self.optimizer.param_groups, self.lr_scheduler.get_last_lr()):
                    group["lr"] = lr
        if distributed.is_distributed(self.config):
            # The checkpoint holds process 0's generators: each process draws its own from here, as from the start.
            init_seed(self.config["seed"] + self.config["rank"] + self.start_epoch * self.config["world_size"],
                      self.config["reproducibility"])
        elif self._resumed.get("random_state") is not None:
            random_state.restore(self._resumed["random_state"], self.device,
                                 getattr(self._train_data, "generator", None))
        self._resumed = None


def _step_loop_is_recboles(train_epoch_method):
    """Whether the trainer below the mixin runs RecBole's plain step loop, which ours replaces; a trainer with its
    own `_train_epoch` keeps it."""
    return getattr(train_epoch_method, "__func__", None) is Trainer._train_epoch


class SRTTrainer(SRTTrainerMixin, Trainer):
    """RecBole's Trainer with the additions above: what every sequential model without a trainer of its own gets."""


_TRAINERS = {Trainer: SRTTrainer}


def with_plugin_additions(recbole_trainer):
    """The trainer a sequential model gets: RecBole's choice for it (S3Rec's own, or the plain Trainer), extended."""
    if recbole_trainer not in _TRAINERS:
        _TRAINERS[recbole_trainer] = type(
            recbole_trainer.__name__, (SRTTrainerMixin, recbole_trainer), {"__doc__": recbole_trainer.__doc__}
        )
    return _TRAINERS[recbole_trainer]


def get_trainer(model_type, model_name):
    """RecBole's trainer for the model; for sequential models extended with ours (one-cycle LR, sampled evaluation,
    safe checkpoints), keeping a model-specific trainer (S3Rec's pre-training) as RecBole would pick it."""
    trainer = recbole_get_trainer(model_type, model_name)
    if model_type == ModelType.SEQUENTIAL:
        return with_plugin_additions(trainer)
    return trainer
