"""Evaluation over a horizon of k held-out items per user (`eval_horizon: k`, see data/horizon_split.py).

Step j ranks the user's j-th held-out item two ways:
- teacher-forced: after the true history, the earlier held-out items included (`ndcg@5@step3`);
- autoregressive: after the true history up to the first held-out item, then the model's own top-1 items of
  steps 1 .. j-1 (never an item it already generated and, by default, never one of the history) (`ndcg@5@gen_step3`).

Both rank against the same candidates, a pure function of (seed, phase, user, step): step 1's are today's test
candidates. A user's other held-out items are never negatives of each other. Over the horizon: the share of the k true
items among the k generated ones (`horizon_found@generated`), and among step 1's top-K list
(`horizon_found@5@step1_list`: what one list shown once would have caught). Every step is one batched pass over the
users on the model's device.
"""

from collections import OrderedDict

import torch
from recbole.data.interaction import Interaction

from recbole_srt.evaluation.ranking import positive_ranks, random_tie_break, rank_metrics

METRICS = ("ndcg", "hit", "mrr", "recall", "precision")
# Scores of [users, catalog] held at once by a step (256 MiB of floats): users are taken in chunks under it.
SCORE_BUDGET = 2**26


def step_of_rows(users):
    """1-based position of each row among its user's rows (rows grouped by user, in time order)."""
    index = torch.arange(len(users))
    starts = torch.ones(len(users), dtype=torch.bool)
    starts[1:] = users[1:] != users[:-1]
    first = torch.cummax(torch.where(starts, index, torch.zeros_like(index)), dim=0).values
    return index - first + 1


class HorizonEvaluation:
    """Teacher-forced and autoregressive metrics of `trainer.model` on a horizon test set of `horizon` rows per user;
    `n_neg` sampled negatives per step (None: the whole catalog)."""

    def __init__(self, trainer, eval_data, n_neg, horizon):
        config = trainer.config
        unsupported = [m for m in config["metrics"] if m.lower() not in METRICS]
        if unsupported:
            raise ValueError(f"eval_horizon: metrics {unsupported} are not computed over a horizon; it computes "
                             f"{list(METRICS)}")
        self.trainer, self.model, self.device = trainer, trainer.model, trainer.device
        self.n_neg, self.k = n_neg, horizon
        self.topk, self.metrics = config["topk"], [m.lower() for m in config["metrics"]]
        self.exclude_history = config["eval_horizon_exclude_history"] is not False
        self.uid, self.iid = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
        self.seq_field, self.len_field = trainer.model.ITEM_SEQ, trainer.model.ITEM_SEQ_LEN
        self.batch_size = max(1, min(config["eval_batch_size"], SCORE_BUDGET // eval_data._dataset.item_num))
        self.decimals = config["metric_decimal_place"]
        self.dataset = eval_data._dataset
        self.samplers = None if n_neg is None else [trainer.candidate_sampler(self.dataset.item_num, n_neg, step)
                                                    for step in range(1, horizon + 1)]

    @torch.no_grad()
    def run(self):
        self.model.eval()
        inter = self.dataset.inter_feat
        steps = step_of_rows(inter[self.uid])
        rows = [torch.nonzero(steps == j).squeeze(1) for j in range(1, self.k + 1)]
        if len({len(r) for r in rows}) != 1:
            raise ValueError(f"eval_horizon {self.k}: the test set does not hold {self.k} rows for every user")
        values, generated = {}, []
        for start in range(0, len(rows[0]), self.batch_size):
            chunk = [inter[r[start : start + self.batch_size]].to(self.device) for r in rows]
            chunk_values, chunk_generated = self._chunk(chunk)
            for name, per_user in chunk_values.items():
                values.setdefault(name, []).append(per_user)
            generated.append(chunk_generated.cpu())
        # What each user's roll-forward generated (users in the order of their rows), to look at.
        self.generated_items = torch.cat(generated)
        result = OrderedDict()
        for name, parts in values.items():
            result[name] = round(float(torch.cat(parts).mean()), self.decimals)
        return result

    def _chunk(self, steps):
        """(per-user metric values, generated items [B, k]) for one chunk of users; steps[j] holds their rows of
        step j + 1."""
        users = steps[0][self.uid]
        targets = torch.stack([s[self.iid] for s in steps], dim=1)
        generated = targets[:, :0]
        values = {}
        for j, batch in enumerate(steps, start=1):
            positives, others = targets[:, j - 1], torch.cat([targets[:, : j - 1], targets[:, j:]], dim=1)
            values.update(rank_metrics(self._ranks(batch, positives, others, j), self.topk, self.metrics,
                                       f"@step{j}"))
            rolled = self._rolled(batch, generated)
            scores = self.model.full_sort_predict(rolled).view(len(users), -1)
            values.update(rank_metrics(self._ranks(rolled, positives, others, j, scores), self.topk, self.metrics,
                                       f"@gen_step{j}"))
            allowed = self._allowed(rolled, generated, j)
            if j == 1:
                for k in self.topk:
                    top = scores.masked_fill(~allowed, float("-inf")).topk(k, dim=1).indices
                    values[f"horizon_found@{k}@step1_list"] = _found(targets, top)
            next_item = scores.masked_fill(~allowed, float("-inf")).argmax(dim=1, keepdim=True)
            generated = torch.cat([generated, next_item], dim=1)
        values["horizon_found@generated"] = _found(targets, generated)
        return values, generated

    def _rolled(self, batch, generated):
        """Step j's input with its last j - 1 items (the earlier true targets) replaced by the generated ones."""
        if generated.size(1) == 0:
            return batch
        seq = batch[self.seq_field].clone()
        lengths = batch[self.len_field]
        positions = lengths.unsqueeze(1) - generated.size(1) + torch.arange(generated.size(1), device=seq.device)
        seq.scatter_(1, positions, generated)
        return Interaction({**{key: batch[key] for key in batch.columns}, self.seq_field: seq})

    def _allowed(self, rolled, generated, step):
        """Items step `step` may generate: not padding, not already generated, by default not in the history."""
        allowed = torch.ones(len(generated), self.dataset.item_num, dtype=torch.bool, device=generated.device)
        allowed[:, 0] = False
        allowed.scatter_(1, generated, False)
        if self.exclude_history:
            seq = rolled[self.seq_field]
            history = torch.arange(seq.size(1), device=seq.device) < (rolled[self.len_field] - (step - 1)).unsqueeze(1)
            allowed.scatter_(1, torch.where(history, seq, torch.zeros_like(seq)), False)
            allowed[:, 0] = False
        return allowed

    def _ranks(self, batch, positives, others, step, scores=None):
        """0-based rank of each positive among its step's candidates, the user's other held-out items left out.
        `scores`: the catalog's scores, when already computed (the autoregressive pass)."""
        users = batch[self.uid]
        if self.samplers is None or self.samplers[step - 1].complement_is_smaller:
            if scores is None:
                scores = self.model.full_sort_predict(batch).view(len(users), -1)
            keep = torch.ones_like(scores, dtype=torch.bool)
            keep[:, 0] = False
            keep.scatter_(1, positives.unsqueeze(1), False)
            keep.scatter_(1, others, False)
            seed = self.trainer.config["seed"]
            if self.samplers is not None:
                sampler = self.samplers[step - 1]
                keep.scatter_(1, sampler.excluded("test", users, positives), False)
                seed = sampler.seed
            tie_break = random_tie_break(seed, "test", users, positives, lambda rows, cols: cols)
            return positive_ranks(scores.gather(1, positives.unsqueeze(1)), scores, keep, tie_break)
        sampler = self.samplers[step - 1]
        candidates, keep = sampler("test", users, positives)
        keep = keep & ~(candidates.unsqueeze(2) == others.unsqueeze(1)).any(dim=2)
        item_ids = torch.cat([positives.unsqueeze(1), candidates], dim=1)
        item_scores = (self.trainer.score_candidates(batch, item_ids) if scores is None
                       else scores.gather(1, item_ids))
        tie_break = random_tie_break(sampler.seed, "test", users, positives, lambda r, c: item_ids[r, c + 1])
        return positive_ranks(item_scores[:, :1], item_scores[:, 1:], keep, tie_break)


def _found(targets, items):
    """Per user: the share of the true items `targets` [B, k] that appear among `items` [B, n]."""
    return (targets.unsqueeze(2) == items.unsqueeze(1)).any(dim=2).double().mean(dim=1)
