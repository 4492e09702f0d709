"""Evaluation as our trainer runs it: `sampledN` modes (N negatives per user that depend only on seed, phase and
user) for any sequential model, and evaluation shared out over the processes of a distributed run, gathered so
that the metrics equal one process's."""

import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.evaluator.register import metric_information
from recbole.utils import set_color
from tqdm import tqdm

from recbole_srt import distributed
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.data.store_dataset import training_item_counts
from recbole_srt.data.store_loaders import StoreEvalLoader
from recbole_srt.evaluation.candidates import CandidateSampler
from recbole_srt.evaluation.horizon import HorizonEvaluation
from recbole_srt.evaluation.ranking import positive_ranks, random_tie_break, topk_hits


# Seed offset between the candidates of successive horizon steps.
_STEP_SEED = 0x632BE5AB


class EvaluationMixin:
    """Over RecBole's Trainer (or a model's own): `evaluate` with sampled and distributed modes, and over a horizon
    of `eval_horizon` held-out items."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.train_item_counts = None
        self._candidate_samplers = {}

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not eval_data:
            return None
        if load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            checkpoint = load_checkpoint(checkpoint_file, self.device, trust=bool(self.config["trust_checkpoint"]))
            self.model.load_state_dict(checkpoint["state_dict"])
            self.model.load_other_parameter(checkpoint.get("other_parameter"))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        phase = getattr(eval_data._sampler, "phase", None) or "test"
        n_neg = (self.config["sampled_eval"] or {}).get(phase)
        horizon = self.config["eval_horizon"] or 1
        if phase == "test" and horizon > 1:
            if distributed.is_distributed(self.config):
                raise ValueError(f"eval_horizon {horizon}: evaluation over a horizon runs in one process; evaluate "
                                 "the checkpoint with load_data_and_model")
            self.model.eval()
            return HorizonEvaluation(self, eval_data, n_neg, horizon).run()
        if n_neg is None and not distributed.is_distributed(self.config) and not isinstance(eval_data, StoreEvalLoader):
            return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
        return self._evaluate_users(eval_data, phase, n_neg, show_progress)

    def set_train_item_counts(self, train_data):
        """Popularity-sampled evaluation draws from training-split counts (fit() records them)."""
        self.train_item_counts = training_item_counts(train_data._dataset, self.config["ITEM_ID_FIELD"])
        self._candidate_samplers.clear()

    def candidate_sampler(self, n_items, n_neg, step=1):
        """One sampler per (catalog size, N, horizon step) for the trainer's life: candidates never change between
        epochs. Step 1 is the one-step evaluation's; a later step of `eval_horizon` draws from its own seed."""
        if (n_items, n_neg, step) not in self._candidate_samplers:
            self._candidate_samplers[(n_items, n_neg, step)] = self._new_candidate_sampler(n_items, n_neg, step)
        return self._candidate_samplers[(n_items, n_neg, step)]

    def _new_candidate_sampler(self, n_items, n_neg, step):
        args = self.config["sampled_eval_args"] or {}
        seed = self.config["seed"] if args.get("seed") is None else args["seed"]
        seed = (seed + (step - 1) * _STEP_SEED) & 0x7FFFFFFF if step > 1 else seed
        distribution = args.get("distribution", "uniform")
        if distribution == "popularity" and self.train_item_counts is None:
            raise ValueError("popularity-sampled evaluation needs training counts: "
                             "call fit() or set_train_item_counts()")
        if not args.get("replacement", False) and n_neg > n_items - 2:
            self.logger.warning(f"sampled{n_neg}: only {n_items - 2} other items exist; ranking against all of them")
        return CandidateSampler(
            n_items,
            n_neg,
            seed=seed,
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
    def _evaluate_users(self, eval_data, phase, n_neg, show_progress):
        """Sampled evaluation (n_neg negatives), or RecBole's full sort in a distributed run, where each process
        takes its share of the users and the per-user results are gathered: metrics equal one process's."""
        if not isinstance(eval_data, (FullSortEvalDataLoader, StoreEvalLoader)):
            raise ValueError(f"evaluation of phase '{phase}' (sampled, or in several processes) needs a full-sort or "
                             "sampledN mode in eval_args")
        unsupported = [m for m in self.config["metrics"] if not set(metric_information[m.lower()]) <= {"rec.topk"}]
        if n_neg is not None and unsupported:
            raise ValueError(
                f"metrics {unsupported} cannot be computed from sampled negatives; sampled evaluation supports the "
                "top-k metrics (NDCG, Hit, MRR, Recall, Precision, MAP)"
            )
        self.model.eval()
        self.tot_item_num = eval_data._dataset.item_num
        # RecBole's full sort scores through predict() without it.
        if n_neg is None and self.item_tensor is None and not isinstance(eval_data, StoreEvalLoader):
            self.item_tensor = eval_data._dataset.get_item_feature().to(self.device)
        is_distributed = distributed.is_distributed(self.config)
        batches = distributed.user_shard(eval_data) if is_distributed else eval_data
        if show_progress:
            total = None if is_distributed else len(eval_data)
            batches = tqdm(batches, total=total, ncols=100, desc=set_color("Evaluate   ", "pink"))
        for batch in batches:
            if n_neg is None:
                interaction, scores, positive_u, positive_i = self._full_sort_batch_eval(batch)
                self.eval_collector.eval_batch_collect(scores, interaction, positive_u, positive_i)
            else:
                self._sampled_batch(batch, phase, n_neg)
        self.eval_collector.model_collect(self.model)
        struct = self.eval_collector.get_data_struct()
        if is_distributed:
            struct = distributed.gather_per_user(struct, self.device)
        result = self.evaluator.evaluate(struct)
        self.wandblogger.log_eval_metrics(result, head="eval")
        return result

    @torch.no_grad()
    def sampled_positive_ranks(self, eval_data):
        """(positive items, their 0-based ranks among the sampled negatives), one per evaluated user, in the
        loader's order: the per-user figures behind the sampled metrics, for breaking them down (by the
        positive's popularity, say). The same candidates, ranks and ties as `evaluate`."""
        phase = getattr(eval_data._sampler, "phase", None) or "test"
        n_neg = (self.config["sampled_eval"] or {}).get(phase)
        if n_neg is None:
            raise ValueError(f"sampled_positive_ranks: phase '{phase}' is not evaluated against sampled negatives "
                             f"(eval_args mode: sampledN)")
        self.model.eval()
        self.tot_item_num = eval_data._dataset.item_num
        positives, ranks = zip(*(self._sampled_ranks(batch, phase, n_neg) for batch in eval_data))
        return torch.cat(positives), torch.cat(ranks)

    def _sampled_batch(self, batch, phase, n_neg):
        _, ranks = self._sampled_ranks(batch, phase, n_neg)
        self.eval_collector.data_struct.update_tensor("rec.topk", topk_hits(ranks, max(self.config["topk"])))

    def _sampled_ranks(self, batch, phase, n_neg):
        interaction, _, _, positives = batch
        sampler = self.candidate_sampler(self.tot_item_num, n_neg)
        interaction = interaction.to(self.device)
        positives = positives.to(self.device)
        users = interaction[self.config["USER_ID_FIELD"]]
        if sampler.complement_is_smaller:
            return positives, self._ranks_among_all_but_excluded(sampler, phase, interaction, users, positives)
        candidates, keep = sampler(phase, users, positives)
        item_ids = torch.cat([positives.unsqueeze(1), candidates], dim=1)
        scores = self.score_candidates(interaction, item_ids)
        tie_break = random_tie_break(sampler.seed, phase, users, positives, lambda r, c: item_ids[r, c + 1])
        return positives, positive_ranks(scores[:, :1], scores[:, 1:], keep, tie_break)

    def _ranks_among_all_but_excluded(self, sampler, phase, interaction, users, positives):
        """The same ranks as scoring the drawn candidates, from the whole catalog's scores minus the few items
        left out: used when N is most of the catalog (e.g. sampled10000 on 12K items), where it is cheaper."""
        scores = self.model.full_sort_predict(interaction).view(len(users), -1)
        keep = torch.ones_like(scores, dtype=torch.bool)
        keep[:, 0] = False
        keep.scatter_(1, positives.unsqueeze(1), False)
        keep.scatter_(1, sampler.excluded(phase, users, positives), False)
        tie_break = random_tie_break(sampler.seed, phase, users, positives, lambda rows, cols: cols)
        return positive_ranks(scores.gather(1, positives.unsqueeze(1)), scores, keep, tie_break)
