"""Item-specific capacity that does not grow with the catalog: each item id is hashed by `hashes` functions into one
table of `buckets` rows and the rows are summed (feature hashing with several hashes, so two items rarely share all
their rows). Frequent items get vectors of their own beside what their text says; the table's size is a setting,
not the catalog's.

Ids are the dataset's internal ids, which mean nothing in another catalog: a model built from `pretrained_model`
never loads the checkpoint's table; its own (the checkpoint's size unless the run sets `item_id_hash_buckets`, 0 for
none) starts at zero, and items given only by their text (new items, `recommend(items=...)`) get none.
"""

import torch
from torch import nn

from recbole_srt.hashing import MASK32, hash32

_SALT = 0x5BD1E995


class HashedItemEmbedding(nn.Module):
    def __init__(self, buckets, hashes, hidden_size):
        super().__init__()
        if not isinstance(buckets, int) or buckets < 1 or not isinstance(hashes, int) or hashes < 1:
            raise ValueError(f"item_id_hash_buckets and item_id_hashes must be positive integers, got {buckets!r} "
                             f"and {hashes!r}")
        self.buckets = buckets
        self.table = nn.Embedding(buckets, hidden_size)
        self.register_buffer("salts", torch.tensor([hash32(torch.tensor((i + 1) * _SALT & MASK32)).item()
                                                    for i in range(hashes)]), persistent=False)

    def forward(self, item_ids):
        """item_ids [...] -> [..., hidden_size]; id 0 (padding) maps to zeros."""
        rows = hash32((item_ids.unsqueeze(-1) & MASK32) ^ self.salts) % self.buckets
        return self.table(rows).sum(dim=-2) * (item_ids != 0).unsqueeze(-1)
