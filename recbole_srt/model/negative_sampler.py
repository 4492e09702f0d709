"""Negatives for the sampled softmax, drawn on the model's device, with the log-probabilities logQ needs."""

import torch
from torch import nn

DISTRIBUTIONS = ("popularity", "uniform")
_MULTINOMIAL_MAX_CATEGORIES = 2**24


def sampling_probabilities(item_counts, distribution="popularity", smoothing=1.0, alpha=1.0):
    """q(item) for ids 0..n-1; id 0 is RecBole's padding item and is never drawn.

    Popularity is (count + smoothing) ** alpha, so items never seen in training keep a finite logQ.
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
    return weights / weights.sum()


class NegativeSampler(nn.Module):
    def __init__(self, probabilities):
        super().__init__()
        probabilities = probabilities.float()
        # Not persistent: they come from the training split of the dataset the model is built on.
        self.register_buffer("probabilities", probabilities, persistent=False)
        self.register_buffer("cumulative", probabilities.double().cumsum(0), persistent=False)
        log_q = torch.full_like(probabilities, float("-inf"))
        positive = probabilities > 0
        log_q[positive] = probabilities[positive].log()
        self.register_buffer("log_q", log_q, persistent=False)

    def forward(self, shape):
        """Item ids of `shape`, drawn i.i.d. (with replacement) from q."""
        count = int(torch.Size(shape).numel())
        if len(self.probabilities) <= _MULTINOMIAL_MAX_CATEGORIES:
            draws = torch.multinomial(self.probabilities, count, replacement=True)
        else:
            u = torch.rand(count, device=self.cumulative.device, dtype=torch.float64) * self.cumulative[-1]
            draws = torch.searchsorted(self.cumulative, u, right=True).clamp(max=len(self.cumulative) - 1)
        return draws.view(shape)
