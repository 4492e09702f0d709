"""RecBole's Trainer with what SRT and fair side-by-side runs need, for every sequential model."""

from recbole.trainer import Trainer
from recbole.utils import set_color

from recbole_srt.compat import disable_anomaly_detection, load_checkpoint, save_checkpoint, use_fused_gelu
from recbole_srt.lr_schedule import build_scheduler


class SRTTrainer(Trainer):
    """Adds the one-cycle LR schedule (stepped after every optimizer step, saved with checkpoints), gradient clipping
    from `max_grad_norm`, and checkpoints that load under torch's weights-only unpickler."""

    def __init__(self, config, model):
        disable_anomaly_detection()
        use_fused_gelu(model)
        super().__init__(config, model)
        if config["max_grad_norm"] and not self.clip_grad_norm:
            self.clip_grad_norm = {"max_norm": config["max_grad_norm"]}
        self.lr_schedule = config["lr_schedule"] or "constant"
        self.lr_scheduler = None
        self._resumed_scheduler_state = None

    def _build_lr_scheduler(self, steps_per_epoch):
        self.lr_scheduler = build_scheduler(self.lr_schedule, self.optimizer, self.epochs * steps_per_epoch)
        if self.lr_scheduler is None:
            return
        if self._resumed_scheduler_state is not None:
            self.lr_scheduler.load_state_dict(self._resumed_scheduler_state)
            # Building the scheduler reset the optimizer's LR to step 0's; put back the resumed step's.
            for group, lr in zip(self.optimizer.param_groups, self.lr_scheduler.get_last_lr()):
                group["lr"] = lr
        self.optimizer.register_step_post_hook(lambda *_: self.lr_scheduler.step())

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if self.lr_scheduler is None:
            self._build_lr_scheduler(len(train_data))
        return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        state = {
            "config": self.config,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
        }
        save_checkpoint(state, saved_model_file)
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {saved_model_file}")

    def resume_checkpoint(self, resume_file):
        checkpoint = load_checkpoint(resume_file, self.device)
        self.saved_model_file = str(resume_file)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        if checkpoint["config"]["model"].lower() != self.config["model"].lower():
            self.logger.warning(
                f"checkpoint {resume_file} was trained as {checkpoint['config']['model']}, not {self.config['model']}"
            )
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self._resumed_scheduler_state = checkpoint.get("lr_scheduler")
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not eval_data:
            return None
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = load_checkpoint(checkpoint_file, self.device)
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
