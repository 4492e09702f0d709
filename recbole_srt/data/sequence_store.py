"""A dataset as memory-mapped arrays on disk, so a log of tens of millions of interactions trains within a few GB.

A store is a folder:

- `offsets.npy` int64 [users + 2]: user u's items are `items[offsets[u]:offsets[u + 1]]` (user 0 is padding);
- `items.npy` int32 [interactions]: every user's item ids in time order, one flat array (CSR);
- `item_text.npy` [items + 1, fields, width]: SentencePiece ids + 1 per text field (0 is padding), int16 when
  the vocabulary fits, else int32;
- `train_counts.npy` int64 [items + 1]: how often each item is a training target under leave-one-out;
- `users.txt`, `items.txt`: the original ids, line i holding internal id i + 1;
- `tokenizer.model`: the SentencePiece model the text was encoded with;
- `store.json`: sizes, text fields and settings, written last (a store without it is incomplete).

Internal ids are the ones RecBole assigns to the same data converted to atomic files, so the sampled evaluation
candidates, which depend on user and item ids, are the same both ways.

The split is RecBole's leave-one-out over the augmented rows (`eval_args.split: {LS: valid_and_test}`): of a
user's n items, position 0 is never a target; n >= 4: targets 1 .. n-3 train, n-2 validates, n-1 tests; n = 3:
1 trains, 2 tests; n = 2: 1 trains.
"""

import json
import os

import numpy as np

FORMAT = "recbole-srt sequence store"
VERSION = 1
META = "store.json"
ARRAYS = ("offsets", "items", "item_text", "train_counts")
# Users per block when a whole-store pass runs in chunks (bounded memory at any size).
BLOCK_USERS = 1 << 20


class StoreError(ValueError):
    """A store that is missing, incomplete or inconsistent; the message names the file."""


def token_dtype(n_pieces):
    """The smallest integer type holding SentencePiece ids + 1."""
    return np.int16 if n_pieces + 1 <= np.iinfo(np.int16).max else np.int32


def training_targets(lengths):
    """How many training targets each user of `lengths` items has."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.where(lengths >= 4, lengths - 3, (lengths >= 2).astype(np.int64))


def held_out(lengths, phase):
    """(mask of users with a `phase` target, the target's position within each user's items)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if phase == "valid":
        return lengths >= 4, lengths - 2
    if phase == "test":
        return lengths >= 3, lengths - 1
    raise ValueError(f"phase must be 'valid' or 'test', got '{phase}'")


def create_array(folder, name, shape, dtype):
    """A new `.npy` file in `folder` opened for writing in place (filled by the caller, chunk by chunk)."""
    return np.lib.format.open_memmap(os.path.join(folder, f"{name}.npy"), mode="w+", dtype=dtype, shape=shape)


def write_ids(folder, name, tokens):
    """`users.txt` / `items.txt`: one original id per line, in internal id order."""
    with open(os.path.join(folder, f"{name}.txt"), "w", encoding="utf-8") as f:
        for token in tokens:
            token = str(token)
            if "\n" in token or "\r" in token:
                raise ValueError(f"{name}: id {token!r} holds a line break")
            f.write(token + "\n")


def count_training_targets(offsets, items, n_items):
    """train_counts from the CSR arrays, one block of users at a time."""
    counts = np.zeros(n_items + 1, dtype=np.int64)
    n_users = len(offsets) - 1
    for first in range(0, n_users, BLOCK_USERS):
        starts = np.asarray(offsets[first : first + BLOCK_USERS + 1], dtype=np.int64)
        lengths = np.diff(starts)
        per_user = training_targets(lengths)
        positions = segment_positions(starts[:-1] + 1, per_user)
        counts += np.bincount(np.asarray(items[positions]), minlength=n_items + 1)
    return counts


def segment_positions(starts, counts):
    """Concatenated ranges starts[i] .. starts[i] + counts[i] - 1."""
    total = int(counts.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + within


def finish(folder, meta, tokenizer_proto):
    """Write the tokenizer and `store.json` last: from here on the folder is a complete store."""
    with open(os.path.join(folder, "tokenizer.model"), "wb") as f:
        f.write(tokenizer_proto)
    meta = {"format": FORMAT, "version": VERSION, **meta}
    with open(os.path.join(folder, META), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    return meta


class SequenceStore:
    """A store opened read-only; arrays are memory maps, so processes that open one store share its pages."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        meta_path = os.path.join(self.path, META)
        if not os.path.isdir(self.path):
            raise StoreError(f"data_store: '{path}' is not a folder (expected a store written by "
                             "`python -m dataset_scripts ... --store`)")
        if not os.path.isfile(meta_path):
            raise StoreError(f"data_store: {meta_path} is missing: the store in '{path}' is incomplete (its "
                             "conversion did not finish); convert again")
        with open(meta_path) as f:
            try:
                self.meta = json.load(f)
            except json.JSONDecodeError as error:
                raise StoreError(f"data_store: {meta_path} is not valid JSON ({error})") from error
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            raise StoreError(f"data_store: {meta_path} is not a version-{VERSION} '{FORMAT}' (format "
                             f"{self.meta.get('format')!r}, version {self.meta.get('version')!r})")
        self.n_users, self.n_items = self.meta["n_users"], self.meta["n_items"]
        self.text_fields = list(self.meta["text_fields"])
        expected = {
            "offsets": ((self.n_users + 2,), None),
            "items": ((self.meta["n_interactions"],), None),
            "item_text": ((self.n_items + 1, len(self.text_fields)), None),
            "train_counts": ((self.n_items + 1,), None),
        }
        for name in ARRAYS:
            file = os.path.join(self.path, f"{name}.npy")
            if not os.path.isfile(file):
                raise StoreError(f"data_store: {file} is missing")
            try:
                # The token table becomes a torch tensor, which wants a writable array: copy-on-write, still shared.
                array = np.load(file, mmap_mode="c" if name == "item_text" else "r")
            except ValueError as error:
                raise StoreError(f"data_store: {file} is not a readable .npy array ({error})") from error
            shape = expected[name][0]
            if array.shape[: len(shape)] != shape:
                raise StoreError(f"data_store: {file} has shape {array.shape}, expected {shape} for "
                                 f"{self.n_users} users, {self.n_items} items (from {META})")
            setattr(self, name, array)
        if int(self.offsets[-1]) != len(self.items):
            raise StoreError(f"data_store: {self.path}/offsets.npy ends at {int(self.offsets[-1])}, but items.npy "
                             f"holds {len(self.items)} interactions")
        with open(os.path.join(self.path, "tokenizer.model"), "rb") as f:
            self.tokenizer_proto = f.read()

    def lengths(self, first=0, last=None):
        """Items per user for internal ids first .. last - 1 (0 is the padding user, with none)."""
        last = self.n_users + 1 if last is None else last
        return np.diff(np.asarray(self.offsets[first : last + 1], dtype=np.int64))

    def ids(self, name):
        """The original ids ('users' or 'items') as an array indexed by internal id ('[PAD]' at 0)."""
        with open(os.path.join(self.path, f"{name}.txt"), encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
        expected = self.n_users if name == "users" else self.n_items
        if len(tokens) != expected:
            raise StoreError(f"data_store: {self.path}/{name}.txt has {len(tokens)} ids, expected {expected}")
        return np.array(["[PAD]", *tokens], dtype=object)
