"""What SRT and fair side-by-side runs need, added on top of RecBole's trainer for every sequential model."""

import os
import uuid

import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.evaluator.register import metric_information
from recbole.trainer import Trainer
from recbole.utils import set_color
from tqdm import tqdm

from recbole_srt.compat import disable_anomaly_detection, load_checkpoint, save_checkpoint, use_fused_gelu
from recbole_srt.evaluation.candidates import CandidateSampler
from recbole_srt.evaluation.ranking import positive_ranks, tie_keys, topk_hits
from recbole_srt.lr_schedule import build_scheduler


class SRTTrainerMixin:
    """Adds the one-cycle LR schedule (stepped after every optimizer step, saved with checkpoints), gradient clipping
    from `max_grad_norm`, checkpoints that load under torch's weights-only unpickler, and `sampledN` evaluation, to
    RecBole's `Trainer` or to a model's own trainer (S3Rec's), whose behaviour is otherwise kept."""

    def __init__(self, config, model):
        disable_anomaly_detection()
        use_fused_gelu(model)
        super().__init__(config, model)
        # RecBole names checkpoints MODEL-<time to the second>.pth: two runs started in the same second (parallel
        # benchmark processes) would write one file. A random suffix keeps them apart.
        root, ext = os.path.splitext(self.saved_model_file)
        self.saved_model_file = f"{root}-{uuid.uuid4().hex[:6]}{ext}"
        if config["max_grad_norm"] and not self.clip_grad_norm:
            self.clip_grad_norm = {"max_norm": config["max_grad_norm"]}
        self.lr_schedule = config["lr_schedule"] or "constant"
        self.lr_scheduler = None
        self._resumed_scheduler_state = None
        self.train_item_counts = None
        self._candidate_samplers = {}

    def _scheduled_epochs(self):
        """A pre-training stage (PretrainTrainer's) runs `pretrain_epochs`, not `epochs`."""
        if getattr(self.model, "train_stage", None) == "pretrain" and hasattr(self, "pretrain_epochs"):
            return self.pretrain_epochs
        return self.epochs

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
        if self.lr_scheduler is None:
            self._build_lr_scheduler(len(train_data) * self._scheduled_epochs())
        self.set_train_item_counts(train_data)
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

    def save_pretrained_model(self, epoch, saved_model_file):
        """PretrainTrainer's pre-training snapshots, in the same loadable format as every other checkpoint."""
        self._save_checkpoint(epoch, verbose=False, saved_model_file=saved_model_file)
        self.saved_model_file = saved_model_file

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
        phase = getattr(eval_data._sampler, "phase", None) or "test"
        n_neg = (self.config["sampled_eval"] or {}).get(phase)
        if n_neg is None:
            return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
        return self._sampled_evaluate(eval_data, phase, n_neg, show_progress)

    def set_train_item_counts(self, train_data):
        """Popularity-sampled evaluation draws from training-split counts (fit() records them)."""
        item_ids = train_data._dataset.inter_feat[self.config["ITEM_ID_FIELD"]]
        self.train_item_counts = torch.bincount(item_ids, minlength=train_data._dataset.item_num)
        self._candidate_samplers.clear()

    def candidate_sampler(self, n_items, n_neg):
        """One sampler per (catalog size, N) for the trainer's life: candidates never change between epochs."""
        if (n_items, n_neg) not in self._candidate_samplers:
            self._candidate_samplers[(n_items, n_neg)] = self._new_candidate_sampler(n_items, n_neg)
        return self._candidate_samplers[(n_items, n_neg)]

    def _new_candidate_sampler(self, n_items, n_neg):
        args = self.config["sampled_eval_args"] or {}
        seed = args.get("seed")
        distribution = args.get("distribution", "uniform")
        if distribution == "popularity" and self.train_item_counts is None:
            raise ValueError("popularity-sampled evaluation needs training counts: call fit() or set_train_item_counts()")
        if not args.get("replacement", False) and n_neg > n_items - 2:
            self.logger.warning(f"sampled{n_neg}: only {n_items - 2} other items exist; ranking against all of them")
        return CandidateSampler(
            n_items,
            n_neg,
            seed=self.config["seed"] if seed is None else seed,
            distribution=distribution,
            weights=self.train_item_counts,
            replacement=args.get("replacement", False),
        )

    def score_candidates(self, interaction, item_ids):
        """Scores [B, C] of item_ids [B, C], encoding each sequence once: the model's own `sampled_predict` if it
        has one (SRT), else a gather from `full_sort_predict` (any RecBole sequential model, unchanged)."""
        if hasattr(self.model, "sampled_predict"):
            return self.model.sampled_predict(interaction, item_ids)
        return self.model.full_sort_predict(interaction).gather(1, item_ids)

    @torch.no_grad()
    def _sampled_evaluate(self, eval_data, phase, n_neg, show_progress):
        if not isinstance(eval_data, FullSortEvalDataLoader):
            raise ValueError(f"sampled evaluation of phase '{phase}' needs RecBole's full-sort loader")
        unsupported = [m for m in self.config["metrics"] if not set(metric_information[m.lower()]) <= {"rec.topk"}]
        if unsupported:
            raise ValueError(
                f"metrics {unsupported} cannot be computed from sampled negatives; sampled evaluation supports the "
                "top-k metrics (NDCG, Hit, MRR, Recall, Precision, MAP)"
            )
        if not self.config["single_spec"]:
            raise NotImplementedError("sampled evaluation runs in a single process (nproc=1)")
        self.model.eval()
        sampler = self.candidate_sampler(eval_data._dataset.item_num, n_neg)
        seed = sampler.seed
        max_k = max(self.config["topk"])
        user_field = self.config["USER_ID_FIELD"]
        batches = tqdm(eval_data, total=len(eval_data), ncols=100, desc=set_color("Evaluate   ", "pink")) \
            if show_progress else eval_data
        for interaction, _, _, positives in batches:
            interaction = interaction.to(self.device)
            positives = positives.to(self.device)
            users = interaction[user_field]
            candidates, keep = sampler(phase, users, positives)
            item_ids = torch.cat([positives.unsqueeze(1), candidates], dim=1)
            scores = self.score_candidates(interaction, item_ids)
            ranks = positive_ranks(scores, keep, lambda: tie_keys(seed, phase, users, item_ids))
            self.eval_collector.data_struct.update_tensor("rec.topk", topk_hits(ranks, max_k))
        result = self.evaluator.evaluate(self.eval_collector.get_data_struct())
        self.wandblogger.log_eval_metrics(result, head="eval")
        return result


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
