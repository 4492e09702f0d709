"""The positive's rank among its sampled negatives, in the form RecBole's top-k metrics read (`rec.topk`)."""

import torch

from recbole_srt.evaluation.candidates import random_bits

# Seed offset for the tie-breaking draws, so they are independent of the candidate draws.
_TIE_SEED_OFFSET = 0x3C6EF372


def positive_ranks(scores, keep, tie_keys):
    """0-based rank of column 0 (the positive) among the kept columns 1.. of `scores` [B, 1 + C].

    Negatives that tie with the positive are ordered by `tie_keys()` (random per user and item, distinct within a
    row), so ties never favour the positive: a model that scores everything alike gets random-level metrics. The
    keys are computed only for batches that have a tie.
    """
    positive, negatives = scores[:, :1], scores[:, 1:]
    ahead = (negatives > positive) & keep
    tied = (negatives == positive) & keep
    if tied.any():
        keys = tie_keys()
        ahead |= tied & (keys[:, 1:] < keys[:, :1])
    return ahead.sum(dim=1)


def tie_keys(seed, phase, users, item_ids):
    return random_bits(seed + _TIE_SEED_OFFSET, phase, users.unsqueeze(1), item_ids)


def topk_hits(ranks, max_k):
    """[B, max_k + 1]: one-hot hit position within the top max_k, then the number of positives (1)."""
    positions = torch.arange(max_k, device=ranks.device).unsqueeze(0)
    hits = (ranks.unsqueeze(1) == positions).long()
    return torch.cat([hits, torch.ones_like(hits[:, :1])], dim=1)
