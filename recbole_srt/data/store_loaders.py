"""Training and evaluation batches cut from a sequence store on the fly.

Every prefix of a user's training items is a target, as RecBole's sequential augmentation makes them, but no
[interactions x MAX_ITEM_LIST_LENGTH] table exists: a batch's histories are gathered from the flat item array when
the batch is made. Under torchrun each process reads only its share of the samples.
"""

import math
from types import SimpleNamespace

import numpy as np
import torch
from recbole.data.interaction import Interaction

from recbole_srt import distributed
from recbole_srt.data.sequence_store import held_out, training_targets
from recbole_srt.data.user_sample import sampled_users


def histories(config, store, users, targets):
    """The batch as RecBole's sequential loaders give it: user ids, the up-to-MAX_ITEM_LIST_LENGTH items before
    each target position (right-padded with 0), their count, and the target item."""
    max_length = config["MAX_ITEM_LIST_LENGTH"]
    starts = np.maximum(np.asarray(store.offsets[users], dtype=np.int64), targets - max_length)
    lengths = targets - starts
    columns = np.arange(max_length)
    valid = columns < lengths[:, None]
    positions = np.where(valid, starts[:, None] + columns, 0)
    sequences = np.where(valid, store.items[positions], 0)
    item_field = config["ITEM_ID_FIELD"]
    return Interaction({
        config["USER_ID_FIELD"]: torch.from_numpy(users.astype(np.int64)),
        item_field + config["LIST_SUFFIX"]: torch.from_numpy(sequences.astype(np.int64)),
        config["ITEM_LIST_LENGTH_FIELD"]: torch.from_numpy(lengths),
        item_field: torch.from_numpy(np.asarray(store.items[targets], dtype=np.int64)),
    })


class _EpochShare:
    """This process's sample indices of an epoch: a permutation of all samples (the same in every process),
    padded to equal shares and dealt out by rank, as RecBole's distributed sampler does."""

    def __init__(self, n_samples, rank, world, seed):
        self.n_samples, self.rank, self.world, self.seed = n_samples, rank, world, seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return math.ceil(self.n_samples / self.world)

    def order(self, generator):
        """One process reshuffles with the loader's generator (saved and restored with checkpoints); several
        shuffle alike from (seed, epoch)."""
        if self.world == 1:
            return torch.randperm(self.n_samples, generator=generator).numpy()
        shared = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n_samples, generator=shared).numpy()
        order = np.resize(order, len(self) * self.world)
        return order[self.rank :: self.world]


class StoreTrainLoader:
    """Shuffled training batches of `train_batch_size` (divided among processes)."""

    shuffle = True

    def __init__(self, config, dataset):
        self.config, self._dataset, self.dataset = config, dataset, dataset
        self.store = dataset.store
        per_user = training_targets(self.store.lengths())
        self._first_sample = np.cumsum(per_user) - per_user  # sample index of each user's first target
        self.sample_size = int(per_user.sum())
        world = config["world_size"] if distributed.is_distributed(config) else 1
        rank = config["rank"] if world > 1 else 0
        self.step = config["train_batch_size"] // world
        self.generator = torch.Generator().manual_seed(config["seed"])
        self.sampler = _EpochShare(self.sample_size, rank, world, config["seed"])

    def __len__(self):
        return math.ceil(len(self.sampler) / self.step)

    def __iter__(self):
        order = self.sampler.order(self.generator)
        for start in range(0, len(order), self.step):
            yield self.collate_fn(order[start : start + self.step])

    def collate_fn(self, samples):
        samples = np.asarray(samples, dtype=np.int64)
        users = np.searchsorted(self._first_sample, samples, side="right") - 1
        targets = np.asarray(self.store.offsets[users], dtype=np.int64) + 1 + samples - self._first_sample[users]
        return histories(self.config, self.store, users, targets)


class StoreEvalLoader:
    """One row per user with a `phase` target (or a sampled share of them, `eval_user_sample`), in user order,
    batched as RecBole's full-sort loader is: (interaction, None, row positions, target items)."""

    def __init__(self, config, dataset, phase):
        self.config, self._dataset, self.dataset = config, dataset, dataset
        self.store = dataset.store
        self._sampler = SimpleNamespace(phase=phase)
        lengths = self.store.lengths()
        has_target, position = held_out(lengths, phase)
        self._users = sampled_users(np.nonzero(has_target)[0], config["eval_user_sample"], config["seed"])
        self._targets = np.asarray(self.store.offsets[self._users], dtype=np.int64) + position[self._users]
        self.sample_size = len(self._users)
        self.step = config["eval_batch_size"]

    def __len__(self):
        return math.ceil(self.sample_size / self.step)

    def __iter__(self):
        for start in range(0, self.sample_size, self.step):
            yield self.collate_fn(np.arange(start, min(start + self.step, self.sample_size)))

    def collate_fn(self, rows):
        interaction = histories(self.config, self.store, self._users[rows], self._targets[rows])
        return interaction, None, torch.arange(len(rows)), interaction[self.config["ITEM_ID_FIELD"]]


def store_loaders(config, dataset):
    """(train, valid, test) loaders over the store."""
    return (StoreTrainLoader(config, dataset), StoreEvalLoader(config, dataset, "valid"),
            StoreEvalLoader(config, dataset, "test"))
