"""Evaluation negatives that are a pure function of (seed, phase, user).

Every model, epoch, batch size and process count sees the same candidates, so comparisons are paired. Random
numbers come from a counter-based 32-bit hash computed with int64 tensor ops on the scores' device: no generator
state. Drawing N candidates costs O(N) per user whatever the catalog size: uniform draws are the first N positions of
a keyed pseudo-random permutation of the catalog (a Feistel network with cycle-walking), popularity draws are
successive weighted draws with repeats discarded.
"""

import torch

from recbole_srt.hashing import MASK32 as _M32, hash32

DISTRIBUTIONS = ("uniform", "popularity")
_PHASE_SALT = {"valid": 0x2545F491, "test": 0x61C88647}
# int64 values in one [users, draws] block: on a CPU a block that stays in cache is about 4x faster than one that
# does not (measured on 2 cores at 12K items); accelerators want large blocks.
_KEY_BUDGET = {"cpu": 2**18}
_KEY_BUDGET_ACCELERATOR = 2**24
_FEISTEL_ROUNDS = 4
# Popularity draws without replacement use successive draws while the draws they need (repeats included) are under
# this share of the catalog; beyond it, one key per catalog item costs no more.
_SUCCESSIVE_MAX_SHARE = 0.25


def user_keys(seed, phase, users):
    """A 32-bit key per (seed, phase, user), same shape as users."""
    return hash32(hash32(torch.full_like(users, (seed * 0x9E3779B1 + _PHASE_SALT[phase]) & _M32) ^ (users & _M32)))


def random_bits(seed, phase, users, counters):
    """Deterministic 32-bit integers for every (user, counter) pair; users [B, 1], counters [B or 1, K].

    For one user, distinct counters give distinct values (XOR with a per-user key, then a bijection).
    """
    return hash32(user_keys(seed, phase, users) ^ (counters & _M32))


def _feistel(round_keys, values, bits):
    """A keyed bijection of [0, 2 ** bits): Feistel rounds on a (high, low) split whose widths alternate (an odd
    `bits` is split unevenly); each round maps (high, low) to (low, high ^ F(low)), F a multiplicative hash (the top
    bits of the low 32 bits of (low ^ key) * odd constant). About 8 integer operations per value and round."""
    high_bits, low_bits = bits - bits // 2, bits // 2
    for round_key in round_keys:
        high, low = values >> low_bits, values & ((1 << low_bits) - 1)
        mixed = (((low ^ round_key) * 0x2C1B3C6D) & _M32) >> (32 - high_bits)
        values = (low << high_bits) | (high ^ mixed)
        high_bits, low_bits = low_bits, high_bits
    return values


def keyed_permutation(keys, positions, size):
    """[B, K]: where each of `positions` [K] (int64, in [0, size)) lands under the permutation of [0, size) keyed by
    each of `keys` [B]. Distinct positions under one key give distinct values.

    Cycle-walking: a value that the Feistel bijection of the enclosing power-of-2 domain (< 2 x size) maps outside
    [0, size) is mapped again until it lands inside, which restricts the bijection to [0, size). Only the values still
    outside are mapped again: on average under one extra mapping per value, and a handful of host checks per call.
    """
    bits = max(2, (size - 1).bit_length())
    round_keys = [hash32((keys.unsqueeze(1) + r * 0x9E3779B9) & _M32) for r in range(_FEISTEL_ROUNDS)]
    values = _feistel(round_keys, positions.unsqueeze(0), bits).reshape(-1)
    outside = torch.nonzero(values >= size).squeeze(1)
    width = len(positions)
    while len(outside):
        rows = outside // width
        values[outside] = _feistel([k.view(-1)[rows] for k in round_keys], values[outside], bits)
        outside = outside[values[outside] >= size]
    return values.view(len(keys), width)


def expected_draws(probabilities, n_distinct):
    """How many draws with replacement from `probabilities` give `n_distinct` distinct items on average, with a 10%
    margin: the smallest D with sum_i 1 - (1 - p_i) ** D >= n_distinct, found by bisection (once per sampler)."""
    log_miss = torch.log1p(-probabilities.clamp(max=1 - 1e-12))

    def distinct(draws):
        return float((1 - torch.exp(log_miss * draws)).sum())

    low, high = n_distinct, n_distinct
    limit = 64 * len(probabilities)  # far more than any catalog-wide key pass would cost
    while distinct(high) < n_distinct:
        if high >= limit:
            return limit
        low, high = high, high * 2
    while high - low > max(1, low // 100):
        middle = (low + high) // 2
        low, high = (middle, high) if distinct(middle) < n_distinct else (low, middle)
    return int(high * 1.1) + 1


def uniform01(seed, phase, users, counters):
    """Deterministic U(0, 1) floats (float64) for every (user, counter) pair."""
    return (random_bits(seed, phase, users, counters).double() + 0.5) / 2**32


class CandidateSampler:
    """Negatives for each evaluated user: exactly `n_neg` distinct items (capped at all other items) drawn without
    replacement, or RecBole's uniN protocol (with replacement, duplicates removed) when `replacement` is True.

    Item 0 (padding) and the user's positive are never candidates; history items can be, as in RecBole.
    `weights` (popularity) make the draw proportional to them: without replacement, successive sampling (each new
    candidate drawn in proportion to the weights of the items not drawn yet), exactly as Efraimidis-Spirakis keys
    would, which the sampler uses instead when N is a large share of the catalog.
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
                self.n_draws = expected_draws(self.weights / self.weights.sum(), self.n_neg + 1)
                self.successive = self.n_draws <= _SUCCESSIVE_MAX_SHARE * n_items

    @property
    def complement_is_smaller(self):
        """Uniform draws of most of the catalog: the items left out are fewer than the candidates, so drawing those
        (`excluded`) and scoring the whole catalog is cheaper than drawing and gathering the candidates."""
        return self.weights is None and not self.replacement and self.n_items - 2 - self.n_neg < self.n_neg

    def __call__(self, phase, users, positives):
        """(candidates [B, C], keep [B, C]): keep marks the candidates that count (False for duplicates)."""
        if self.replacement:
            return self._with_replacement(phase, users, positives)
        if self.weights is None:
            draw, width = self._uniform, self.n_neg + 1
        elif self.successive:
            draw, width = self._successive, self.n_draws
        else:
            draw, width = self._weighted_keys, self.n_items
        candidates = self._in_blocks(draw, width, phase, users, positives)
        return candidates, torch.ones_like(candidates, dtype=torch.bool)

    def excluded(self, phase, users, positives):
        """[B, n_items - 2 - N]: the items other than padding and the positive that are NOT uniform candidates.

        Exactly the complement of `__call__`'s candidates (a test checks it): the permutation's positions after N,
        with the positive, if it is there, replaced by position N's item (which is then not a candidate).
        """
        if self.weights is not None or self.replacement:
            raise ValueError("only uniform draws without replacement have a complement to draw")
        return self._in_blocks(self._uniform_rest, self.n_items - 1 - self.n_neg, phase, users, positives)

    @staticmethod
    def _in_blocks(draw, width, phase, users, positives):
        budget = _KEY_BUDGET.get(users.device.type, _KEY_BUDGET_ACCELERATOR)
        rows = max(1, budget // max(1, width))
        return torch.cat([draw(phase, u, p) for u, p in zip(users.split(rows), positives.split(rows))])

    def _uniform(self, phase, users, positives):
        """The first N + 1 items of the user's permutation of items 1..n_items-1; a positive among the first N is
        replaced by the (N + 1)-th."""
        positions = torch.arange(self.n_neg + 1, device=users.device)
        items = 1 + keyed_permutation(user_keys(self.seed, phase, users), positions, self.n_items - 1)
        first = items[:, : self.n_neg]
        return torch.where(first == positives.unsqueeze(1), items[:, self.n_neg :], first)

    def _uniform_rest(self, phase, users, positives):
        positions = torch.arange(self.n_neg, self.n_items - 1, device=users.device)
        items = 1 + keyed_permutation(user_keys(self.seed, phase, users), positions, self.n_items - 1)
        rest = items[:, 1:]
        return torch.where(rest == positives.unsqueeze(1), items[:, :1], rest)

    def _successive(self, phase, users, positives):
        """Weighted draws with replacement in counter order, keeping each item's first draw and skipping the
        positive: the first N kept are a weighted sample without replacement. More draws are made while some user
        has fewer than N (the first draws of every counter never change, so neither does the result)."""
        n_draws = self.n_draws
        while True:
            draws = self._draw(phase, users.unsqueeze(1), torch.arange(n_draws, device=users.device).unsqueeze(0))
            ordered, order = draws.sort(dim=1, stable=True)
            first_sorted = torch.ones_like(ordered, dtype=torch.bool)
            first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
            kept = torch.empty_like(first_sorted).scatter_(1, order, first_sorted) & (draws != positives.unsqueeze(1))
            if int(kept.sum(dim=1).min()) >= self.n_neg:
                break
            n_draws *= 2
        slot = kept.cumsum(dim=1) - 1
        slot = torch.where(kept & (slot < self.n_neg), slot, self.n_neg)  # everything else goes to a spare column
        candidates = torch.zeros(len(users), self.n_neg + 1, dtype=draws.dtype, device=draws.device)
        return candidates.scatter_(1, slot, draws)[:, : self.n_neg]

    def _weighted_keys(self, phase, users, positives):
        """Efraimidis-Spirakis: the N smallest Exp(1) / weight keys over the whole catalog (small catalogs)."""
        items = torch.arange(self.n_items, device=users.device).unsqueeze(0)
        if self.weights.device != users.device:  # moved once, not per batch
            self.weights = self.weights.to(users.device)
        keys = -torch.log(uniform01(self.seed, phase, users.unsqueeze(1), items)) / self.weights
        keys = keys.masked_fill((items == 0) | (items == positives.unsqueeze(1)), float("inf"))
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
        if self.cumulative.device != u.device:  # moved once, not per batch
            self.cumulative = self.cumulative.to(u.device)
        return torch.searchsorted(self.cumulative, u.contiguous(), right=True).clamp(max=self.n_items - 1)
