"""A sequence store seen as the RecBole dataset that models, the trainer and the evaluation read: sizes, id maps,
training counts and item text, with nothing held in memory beyond what a batch touches."""

import functools

import numpy as np
import torch

from recbole_srt.data.sequence_store import SequenceStore, StoreError


class StoreDataset:
    """`num`, `item_num`, `user_num`, `field2id_token` as RecBole's dataset has them, from a store's files."""

    def __init__(self, config):
        self.config = config
        self.store = SequenceStore(config["data_store"])
        self.dataset_name = config["dataset"]
        self.uid_field, self.iid_field = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
        self.user_num, self.item_num = self.store.n_users + 1, self.store.n_items + 1
        self.inter_num = len(self.store.items)

    def num(self, field):
        if field == self.uid_field:
            return self.user_num
        if field == self.iid_field:
            return self.item_num
        raise ValueError(f"data_store: a store holds user and item ids only, not field '{field}'")

    @functools.cached_property
    def field2id_token(self):
        """Original ids by internal id, read from the store's id files the first time they are needed."""
        return {self.uid_field: self.store.ids("users"), self.iid_field: self.store.ids("items")}

    def training_item_counts(self):
        return torch.from_numpy(np.array(self.store.train_counts, dtype=np.int64))

    def item_token_table(self, text_fields, max_tokens, normalization):
        """[items + 1, fields, width] token ids + 1 as the store holds them (int16 or int32, memory-mapped), cut
        to `max_tokens`; (table, how many field values the cut shortened)."""
        meta = self.store.meta
        if list(text_fields) != self.store.text_fields:
            raise StoreError(f"text_fields {list(text_fields)}: the store {self.store.path} holds the text of "
                             f"{self.store.text_fields}; convert again with --text-fields to change them")
        if normalization != meta["text_normalization"]:
            raise StoreError(f"text_normalization '{normalization}': the store {self.store.path} was encoded with "
                             f"'{meta['text_normalization']}'")
        table = self.store.item_text
        cut = meta["truncated"]
        if max_tokens > meta["max_text_tokens"] and cut:
            raise StoreError(f"max_text_tokens {max_tokens}: the store {self.store.path} kept "
                             f"{meta['max_text_tokens']} tokens per field and cut {cut} values; convert again with "
                             f"--max-text-tokens {max_tokens}")
        if max_tokens < table.shape[2]:
            cut = int((table[:, :, max_tokens] != 0).sum())
            table = table[:, :, :max_tokens]
        return torch.from_numpy(table), cut

    def __str__(self):
        return (f"{self.dataset_name} (sequence store {self.store.path})\nThe number of users: {self.user_num}\n"
                f"The number of items: {self.item_num}\nThe number of inters: {self.inter_num}")


def training_item_counts(dataset, item_field):
    """How often each item is a training target: from the store, or counted in a RecBole dataset's rows."""
    if isinstance(dataset, StoreDataset):
        return dataset.training_item_counts()
    return torch.bincount(dataset.inter_feat[item_field], minlength=dataset.item_num)
