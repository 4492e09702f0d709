"""Negatives for the sampled softmax, drawn on the model's device, with the log-probabilities logQ needs."""

import math

import torch
from torch import nn

DISTRIBUTIONS = ("popularity", "uniform")
SCOPES = ("catalog", "source")
_MULTINOMIAL_MAX_CATEGORIES = 2**24


def sampling_probabilities(item_counts, distribution="popularity", smoothing=1.0, alpha=1.0, item_sources=None):
    """q(item) for ids 0..n-1; id 0 is RecBole's padding item and is never drawn.

    Popularity is (count + smoothing) ** alpha, so items never seen in training keep a finite logQ. With
    `item_sources` ([n] source index per item), q is normalised within each source: a negative of a positive from one
    source is drawn from that source only, so it cannot be told apart by its category alone.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"neg_sampling_distribution must be one of {DISTRIBUTIONS}, got '{distribution}'")
    if distribution == "uniform":
        weights = torch.ones(len(item_counts), dtype=torch.float64)
    else:
        if smoothing <= 0 and (item_counts[1:] == 0).any():
            raise ValueError("popularity_smoothing must be > 0 when some items have no training interaction")
        weights = (item_counts.double() + smoothing) ** alpha
    weights[0] = 0.0
    if item_sources is None:
        return weights / weights.sum()
    totals = torch.zeros(int(item_sources.max()) + 1, dtype=torch.float64).index_add_(0, item_sources, weights)
    return weights / totals[item_sources]


def mixture_log_q(ids, log_q, log_target, neg_count, batch):
    """log q of `ids` when a step's candidates are `neg_count` draws from q plus the batch's `batch` positives (mixed
    negative sampling), which come from the training targets' distribution p: log((N q + B p) / (N + B))."""
    return (torch.logaddexp(log_q[ids] + math.log(neg_count), log_target[ids] + math.log(batch))
            - math.log(neg_count + batch))


class NegativeSampler(nn.Module):
    """Draws i.i.d. (with replacement) from q, over the whole catalog or within each item source.

    Within sources, items are laid out source by source and each source's probabilities sum to one, so a draw from
    source s is `searchsorted(cumulative, s + u)`: one vectorised call for any number of sources, no host sync.
    """

    def __init__(self, probabilities, item_sources=None):
        super().__init__()
        if item_sources is None:
            item_sources = torch.zeros(len(probabilities), dtype=torch.long)
        self.n_sources = int(item_sources.max()) + 1
        order = torch.argsort(item_sources, stable=True)
        # Not persistent: they come from the training split of the dataset the model is built on.
        self.register_buffer("probabilities", probabilities.float(), persistent=False)
        self.register_buffer("item_sources", item_sources, persistent=False)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("cumulative", probabilities.double()[order].cumsum(0), persistent=False)
        ends = torch.bincount(item_sources, minlength=self.n_sources).cumsum(0)
        self.register_buffer("last_index", ends - 1, persistent=False)
        log_q = torch.full_like(self.probabilities, float("-inf"))
        positive = self.probabilities > 0
        log_q[positive] = self.probabilities[positive].log()
        self.register_buffer("log_q", log_q, persistent=False)

    def forward(self, shape):
        """Item ids of `shape`, drawn from q over one source (a single-source catalog)."""
        if self.n_sources > 1:
            raise ValueError("this catalog has several item sources: draw with per_source or for_positives")
        count = int(torch.Size(shape).numel())
        if len(self.probabilities) <= _MULTINOMIAL_MAX_CATEGORIES:
            return torch.multinomial(self.probabilities, count, replacement=True).view(shape)
        return self._draw(torch.zeros(shape, dtype=torch.long, device=self.cumulative.device))

    def draw(self, pos_ids, count, shared):
        """(negative ids, group) for a batch of positives: shared, [count] for one source or [n_sources, count] with
        `group` [B] naming each positive's row; per sequence, [B, count] from each positive's source (group None)."""
        if not shared:
            if self.n_sources == 1:
                return self((len(pos_ids), count)), None
            return self.for_positives(pos_ids, count), None
        if self.n_sources == 1:
            return self((count,)), None
        return self.per_source(count), self.item_sources[pos_ids]

    def per_source(self, count):
        """[n_sources, count]: row s drawn within source s."""
        sources = torch.arange(self.n_sources, device=self.cumulative.device).unsqueeze(1)
        return self._draw(sources.expand(-1, count))

    def for_positives(self, pos_ids, count):
        """[B, count]: row b drawn within the source of pos_ids[b]."""
        return self._draw(self.item_sources[pos_ids].unsqueeze(1).expand(-1, count))

    def _draw(self, sources):
        u = sources.double() + torch.rand(sources.shape, device=self.cumulative.device, dtype=torch.float64)
        index = torch.searchsorted(self.cumulative, u, right=True)
        return self.order[torch.minimum(index, self.last_index[sources])]
