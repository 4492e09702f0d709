"""The datasets named by --input: one dataset (a folder, or its files), or several folders combined into one.

Several folders are each read as a dataset of the chosen format; user and item ids are prefixed with the folder's
name (`amazon-games-2018:G0`) so sources never share an id; interactions and item text are concatenated and one
tokenizer is then trained on all of it. Every input must be used: a file that matches none of the format's files is
an error, never silently skipped.
"""

import os

import pandas as pd

from dataset_scripts import sources
from dataset_scripts.readers import READERS
from dataset_scripts.records import RawDataset
from dataset_scripts.sources import InputError
from recbole_srt.data.item_sources import SEPARATOR


def read_inputs(fmt, inputs, bad, text_fields):
    """(RawDataset, {source name: folder} or None for a single dataset)."""
    folders = [p for p in inputs if os.path.isdir(p)]
    if len(inputs) > 1 and folders:
        if len(folders) != len(inputs):
            files = [p for p in inputs if not os.path.isdir(p)]
            raise InputError(f"--input mixes dataset folders {folders} with files {files}: give several dataset "
                             "folders (combined into one dataset), or one dataset's folder or files")
        return _combine(fmt, inputs, bad, text_fields)
    with sources.recording_found_files() as found:
        raw = READERS[fmt](list(inputs), bad, text_fields)
    unused = [p for p in inputs if os.path.isfile(p) and os.path.abspath(p) not in found]
    if unused:
        raise InputError(f"--input {unused}: not used, they match none of the {fmt} format's files")
    return raw, None


def source_names(folders):
    """The folders' names, made unique (`name`, `name-2`, ...), without the separator."""
    names = []
    for folder in folders:
        base = os.path.basename(os.path.normpath(folder)).replace(SEPARATOR, "_") or "source"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def _combine(fmt, folders, bad, text_fields):
    names = source_names(folders)
    frames, items, fields, extra = [], {}, [], None
    for name, folder in zip(names, folders):
        raw = READERS[fmt]([folder], bad, text_fields)
        frame = raw.interactions.copy()
        for column in ("user_id", "item_id"):
            frame[column] = name + SEPARATOR + frame[column].astype(str)
        frames.append(frame)
        items.update({f"{name}{SEPARATOR}{item}": text for item, text in raw.items.items()})
        fields += [f for f in raw.text_fields if f not in fields]
        # Extra interaction columns (e.g. rating) are kept only when every source has them.
        extra = dict(raw.extra_inter_columns) if extra is None else {
            k: v for k, v in extra.items() if k in raw.extra_inter_columns}
    columns = ["user_id", "item_id", "timestamp", *extra]
    interactions = pd.concat([f[columns] for f in frames], ignore_index=True)
    return RawDataset(interactions, items, fields, extra), dict(zip(names, (os.path.abspath(f) for f in folders)))


def source_counts(interactions, sources_by_name):
    """Per source: its folder and its users, items and interactions after filtering."""
    source = interactions["user_id"].str.split(SEPARATOR, n=1).str[0]
    counts = {}
    for name, folder in sources_by_name.items():
        rows = interactions[source == name]
        counts[name] = {"path": folder, "users": int(rows["user_id"].nunique()),
                        "items": int(rows["item_id"].nunique()), "interactions": len(rows)}
    return counts
