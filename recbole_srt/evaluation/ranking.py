"""The positive's rank among its sampled negatives, in the form RecBole's top-k metrics read (`rec.topk`), and
those metrics per user from the ranks."""

import torch

from recbole_srt.evaluation.candidates import random_bits

# Seed offset for the tie-breaking draws, so they are independent of the candidate draws.
_TIE_SEED_OFFSET = 0x3C6EF372


def positive_ranks(positive_scores, negative_scores, keep, tie_break):
    """0-based rank of each positive (scores [B, 1]) among the kept negatives (scores and keep [B, C]).

    Negatives that tie with the positive are ordered by `tie_break(rows, cols)` (True where the negative at
    [row, col] goes first; random per user and item), so ties never favour the positive: a model that scores
    everything alike gets random-level metrics. It is called only on the tied cells.
    """
    ahead = (negative_scores > positive_scores) & keep
    tied = (negative_scores == positive_scores) & keep
    if tied.any():
        rows, cols = torch.nonzero(tied, as_tuple=True)
        ahead[rows, cols] = tie_break(rows, cols)
    return ahead.sum(dim=1)


def random_tie_break(seed, phase, users, positives, negative_items):
    """`tie_break` for `positive_ranks`: each (user, item) gets a random key and the smaller key goes first.
    `negative_items(rows, cols)` names the item at a cell of the negatives."""

    def goes_first(rows, cols):
        def key(items):
            return random_bits(seed + _TIE_SEED_OFFSET, phase, users[rows], items)

        return key(negative_items(rows, cols)) < key(positives[rows])

    return goes_first


def topk_hits(ranks, max_k):
    """[B, max_k + 1]: one-hot hit position within the top max_k, then the number of positives (1)."""
    positions = torch.arange(max_k, device=ranks.device).unsqueeze(0)
    hits = (ranks.unsqueeze(1) == positions).long()
    return torch.cat([hits, torch.ones_like(hits[:, :1])], dim=1)


def rank_metrics(ranks, topk, metrics, suffix=""):
    """{name@K<suffix>: per-user values} from 0-based ranks of one positive per user, as RecBole defines them."""
    ranks = ranks.double()
    formulas = {"ndcg": lambda hit, k: hit / torch.log2(ranks + 2), "hit": lambda hit, k: hit,
                "mrr": lambda hit, k: hit / (ranks + 1), "recall": lambda hit, k: hit,
                "precision": lambda hit, k: hit / k}
    hits = {k: (ranks < k).double() for k in topk}
    return {f"{metric}@{k}{suffix}": formulas[metric](hits[k], k) for metric in metrics for k in topk}
