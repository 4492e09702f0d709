"""The positive's rank among its sampled negatives, in the form RecBole's top-k metrics read (`rec.topk`)."""

import torch

from recbole_srt.evaluation.candidates import uniform01

# Seed offset for the tie-breaking draws, so they are independent of the candidate draws.
_TIE_SEED_OFFSET = 0x3C6EF372


def positive_ranks(scores, keep, tie_keys):
    """0-based rank of column 0 (the positive) among the kept columns 1.. of `scores` [B, 1 + C].

    Negatives that tie with the positive are ordered by `tie_keys` (random per user and item), so ties never favour
    the positive: a model that scores everything alike gets random-level metrics.
    """
    positive, negatives = scores[:, :1], scores[:, 1:]
    ahead = (negatives > positive) | ((negatives == positive) & (tie_keys[:, 1:] < tie_keys[:, :1]))
    return (ahead & keep).sum(dim=1)


def tie_keys(seed, phase, users, item_ids):
    return uniform01(seed + _TIE_SEED_OFFSET, phase, users.unsqueeze(1), item_ids)


def topk_hits(ranks, max_k):
    """[B, max_k + 1]: one-hot hit position within the top max_k, then the number of positives (1)."""
    positions = torch.arange(max_k, device=ranks.device).unsqueeze(0)
    hits = (ranks.unsqueeze(1) == positions).long()
    return torch.cat([hits, torch.ones_like(hits[:, :1])], dim=1)
