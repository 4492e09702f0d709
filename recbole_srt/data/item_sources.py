"""Which source dataset each item came from, read off the ids of a combined dataset.

`python -m dataset_scripts ... --input A B` prefixes every id with its folder's name (`amazon-games-2018:G0`), so a
combined catalog knows each item's source without another file. An id without the separator belongs to the one
unnamed source: a single dataset is one source.
"""

import torch

SEPARATOR = ":"


def source_of(item_id):
    return item_id.split(SEPARATOR, 1)[0] if SEPARATOR in item_id else ""


def item_sources(dataset, item_field):
    """(LongTensor [n_items] of source indices, list of source names); the padding item 0 gets source 0."""
    tokens = dataset.field2id_token[item_field]
    names = sorted({source_of(str(token)) for token in tokens[1:]})
    index = {name: i for i, name in enumerate(names)}
    sources = torch.zeros(len(tokens), dtype=torch.long)
    sources[1:] = torch.tensor([index[source_of(str(token))] for token in tokens[1:]], dtype=torch.long)
    return sources, names
