"""Catalog growth (paper Fig. 1 top and middle): distinct items as users, and their interactions, are added."""

import numpy as np
import pandas as pd


def catalog_growth(interactions, seed, points=60):
    """Users taken in one seeded random order; at ~`points` log-spaced user counts, the number of interactions
    and of distinct items those users touched."""
    users = np.sort(interactions["user_id"].unique())
    rank = pd.Series(np.random.default_rng(seed).permutation(len(users)), index=users)
    user_rank = interactions["user_id"].map(rank).to_numpy()
    first_rank = pd.Series(user_rank).groupby(interactions["item_id"].to_numpy()).min().to_numpy()
    per_user = np.bincount(user_rank, minlength=len(users))
    counts = np.unique(np.geomspace(1, len(users), num=points).round().astype(int))
    return pd.DataFrame({
        "users": counts,
        "interactions": np.cumsum(per_user)[counts - 1],
        "distinct_items": np.searchsorted(np.sort(first_rank), counts, side="left"),
    })


def plot_growth(growth, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6))
    top.plot(growth["users"], growth["distinct_items"], marker=".")
    top.set_xlabel("active users")
    bottom.plot(growth["interactions"], growth["distinct_items"], marker=".", color="tab:orange")
    bottom.set_xlabel("interactions")
    for axis in (top, bottom):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_ylabel("distinct items")
        axis.grid(True, which="both", alpha=0.3)
    top.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
