"""Evaluation negatives that are a pure function of (seed, phase, user).

Every model, epoch, batch size and process count sees the same candidates, so comparisons are paired. Random
numbers come from a counter-based 32-bit hash computed with int64 tensor ops on the scores' device: no generator
state, no host round trip.
"""

import torch

DISTRIBUTIONS = ("uniform", "popularity")
_M32 = 0xFFFFFFFF
_PHASE_SALT = {"valid": 0x2545F491, "test": 0x61C88647}
# Rows of the [users, items] key matrix handled at once: bounds memory to about 2**24 int64 keys.
_KEY_BUDGET = 2**24


def hash32(x):
    """A bijective 32-bit integer mixer (Wellons' lowbias32 r2), on int64 tensors holding values in [0, 2**32).

    Both multipliers are below 2**31, so every product fits in int64 and no step can overflow.
    """
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _M32
    return x ^ (x >> 15)


def random_bits(seed, phase, users, counters):
    """Deterministic 32-bit integers for every (user, counter) pair; users [B, 1], counters [B or 1, K].

    For one user, distinct counters give distinct values (XOR with a per-user key, then a bijection).
    """
    user_key = hash32(hash32(torch.full_like(users, (seed * 0x9E3779B1 + _PHASE_SALT[phase]) & _M32) ^ (users & _M32)))
    return hash32(user_key ^ (counters & _M32))


def uniform01(seed, phase, users, counters):
    """Deterministic U(0, 1) floats (float64) for every (user, counter) pair."""
    return (random_bits(seed, phase, users, counters).double() + 0.5) / 2**32


class CandidateSampler:
    """Negatives for each evaluated user: exactly `n_neg` distinct items (capped at all other items) drawn without
    replacement, or RecBole's uniN protocol (with replacement, duplicates removed) when `replacement` is True.

    Item 0 (padding) and the user's positive are never candidates; history items can be, as in RecBole.
    `weights` (popularity) make the draw proportional to them (Efraimidis-Spirakis keys without replacement).
    """

    def __init__(self, n_items, n_neg, seed, distribution="uniform", weights=None, replacement=False):
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"sampled_eval distribution must be one of {DISTRIBUTIONS}, got '{distribution}'")
        if distribution == "popularity" and weights is None:
            raise ValueError("popularity-sampled evaluation needs the training item counts")
        self.n_items = n_items
        self.n_neg = n_neg if replacement else min(n_neg, n_items - 2)
        self.seed = seed
        self.replacement = replacement
        self.weights = None
        if distribution == "popularity":
            self.weights = weights.double().clone()
            self.weights[0] = 0.0
            self.cumulative = self.weights.cumsum(0) / self.weights.sum()
            if not replacement:  # items of weight 0 can never be drawn
                self.n_neg = min(self.n_neg, int((self.weights > 0).sum()) - 1)

    def __call__(self, phase, users, positives):
        """(candidates [B, C], keep [B, C]): keep marks the candidates that count (False for duplicates)."""
        if self.replacement:
            return self._with_replacement(phase, users, positives)
        rows = max(1, _KEY_BUDGET // self.n_items)
        parts = [self._without_replacement(phase, u, p) for u, p in zip(users.split(rows), positives.split(rows))]
        candidates = torch.cat(parts)
        return candidates, torch.ones_like(candidates, dtype=torch.bool)

    def _without_replacement(self, phase, users, positives):
        items = torch.arange(self.n_items, device=users.device).unsqueeze(0)
        if self.weights is None:
            # Uniform: the n_neg items with the smallest (distinct) random keys.
            keys = random_bits(self.seed, phase, users.unsqueeze(1), items)
            excluded_key = 1 << 33
        else:
            # Efraimidis-Spirakis: smallest Exp(1) / weight keys give a weighted sample without replacement.
            keys = -torch.log(uniform01(self.seed, phase, users.unsqueeze(1), items)) / self.weights.to(users.device)
            excluded_key = float("inf")
        excluded = (items == 0) | (items == positives.unsqueeze(1))
        keys = keys.masked_fill(excluded, excluded_key)
        return torch.topk(keys, self.n_neg, dim=1, largest=False, sorted=False).indices

    def _with_replacement(self, phase, users, positives):
        counters = torch.arange(self.n_neg, device=users.device).unsqueeze(0)
        candidates = self._draw(phase, users.unsqueeze(1), counters)
        for attempt in range(1, 64):  # RecBole redraws a sample equal to the positive; so do we, cell by cell
            rows, cols = torch.nonzero(candidates == positives.unsqueeze(1), as_tuple=True)
            if len(rows) == 0:
                break
            redrawn = self._draw(phase, users[rows].unsqueeze(1), (cols + attempt * self.n_neg).unsqueeze(1))
            candidates[rows, cols] = redrawn.squeeze(1)
        sorted_candidates, _ = candidates.sort(dim=1)
        keep = torch.ones_like(sorted_candidates, dtype=torch.bool)
        keep[:, 1:] = sorted_candidates[:, 1:] != sorted_candidates[:, :-1]
        keep &= sorted_candidates != positives.unsqueeze(1)
        return sorted_candidates, keep

    def _draw(self, phase, users, counters):
        """Item ids for users [K, 1] x counters [K or 1, M]."""
        u = uniform01(self.seed, phase, users, counters)
        if self.weights is None:
            return 1 + (u * (self.n_items - 1)).long().clamp(max=self.n_items - 2)
        cumulative = self.cumulative.to(u.device)
        return torch.searchsorted(cumulative, u.contiguous(), right=True).clamp(max=self.n_items - 1)
