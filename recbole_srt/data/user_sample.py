"""`eval_user_sample: N`: validate and test on a seeded sample of N users, for logs of millions of users.

A user is in the sample when its key, a hash of (seed, user id), is among the N smallest of the users evaluated in
that phase: the same users for every model and run, nested across N, and the same both ways a dataset is read.
"""

import numpy as np
import torch
from recbole.data.dataloader import FullSortEvalDataLoader

from recbole_srt.hashing import MASK32, hash32

_SEED_MIX = 0x7FEB352D


def sampled_users(users, n, seed):
    """The subset (sorted) of the user ids `users` (int64 array) kept by a sample of `n`."""
    if n is None or n >= len(users):
        return np.sort(users)
    keys = hash32(torch.from_numpy(np.asarray(users, dtype=np.int64)) ^ ((seed * _SEED_MIX) & MASK32)).numpy()
    order = np.lexsort((users, keys))  # ties broken by user id
    return np.sort(np.asarray(users)[order[:n]])


def limit_eval_users(config, loaders):
    """RecBole's (train, valid, test) loaders with the evaluation ones cut to the sampled users."""
    n = config["eval_user_sample"]
    if n is None:
        return loaders
    train, *evaluation = loaders
    limited = []
    for loader in evaluation:
        if not isinstance(loader, FullSortEvalDataLoader):
            raise ValueError("eval_user_sample samples users of full-sort or sampledN evaluation, not of "
                             f"{type(loader).__name__}")
        dataset = loader._dataset
        users = dataset.inter_feat[config["USER_ID_FIELD"]].numpy()
        keep = np.isin(users, sampled_users(np.unique(users), n, config["seed"]))
        subset = dataset.copy(dataset.inter_feat[torch.from_numpy(np.nonzero(keep)[0])])
        limited.append(FullSortEvalDataLoader(config, subset, loader._sampler, shuffle=False))
    return (train, *limited)
