"""Row-level processing: de-duplication, iterative k-core, nested random user samples."""

import numpy as np


def deduplicate(interactions):
    """Drop repeated (user, item, timestamp) rows; returns (frame, rows removed)."""
    kept = interactions.drop_duplicates(subset=["user_id", "item_id", "timestamp"], keep="first")
    return kept.reset_index(drop=True), len(interactions) - len(kept)


def kcore(interactions, k):
    """Iteratively keep users and items with at least k interactions until both hold (the paper's "5-core")."""
    frame = interactions
    while True:
        user_counts = frame["user_id"].map(frame["user_id"].value_counts())
        item_counts = frame["item_id"].map(frame["item_id"].value_counts())
        keep = (user_counts >= k) & (item_counts >= k)
        if keep.all():
            return frame.reset_index(drop=True)
        frame = frame[keep]


def sample_users(interactions, size, seed):
    """All interactions of a random subset of users (paper §4.1).

    `size` is a count (>= 1) or a fraction (< 1). Users are ranked by one seeded permutation of the sorted user
    ids and the first ones are kept, so with the same seed a smaller sample is a subset of a larger one.
    """
    users = np.sort(interactions["user_id"].unique())
    count = int(round(size * len(users))) if size < 1 else int(size)
    if count < 1 or count > len(users):
        raise ValueError(f"--sample-users {size}: must select between 1 and {len(users)} users")
    order = np.random.default_rng(seed).permutation(len(users))
    chosen = set(users[order[:count]])
    return interactions[interactions["user_id"].isin(chosen)].reset_index(drop=True)
