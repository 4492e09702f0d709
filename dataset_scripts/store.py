"""Writing a sequence store (`--store`; format in `recbole_srt.data.sequence_store`).

Two ways in. A converted table (any format) becomes a store with pandas' factorize, which numbers users and items
exactly as RecBole numbers the same rows read from the atomic files. The `sequences` format (one line per user, the
form the synthetic Amazon-scale data takes) streams instead: one pass over the file with a dict from item id to a
first-seen code and the codes appended to a file on disk, then numpy passes over blocks of users to put them in
RecBole's order (users sorted by id, items numbered by first appearance), and a pass over the item file that
encodes the text straight into the memory-mapped token array. Nothing holds the whole table in memory: the largest
things held are the id maps themselves. The stages before the text pass (read, order, tokenizer) are recorded as they
end, so a rerun after an interruption continues after the last one (`dataset_scripts.resume`).
"""

import logging
import os
import shutil
import time

import numpy as np
import pandas as pd
import sentencepiece as spm

from dataset_scripts.readers import recbole_item_rows
from dataset_scripts.resume import file_fingerprint
from dataset_scripts.sources import BadLines, InputError, find_file, is_text, open_text, reading
from recbole_srt.data import sequence_store
from recbole_srt.data.item_text import normalize_text
from recbole_srt.data.tokenizer import train_tokenizer

logger = logging.getLogger("dataset_scripts")
STORE_FOLDER = "store"
# Intermediate files of a streamed conversion's stages, inside its work folder; removed once it completes.
STAGE_FOLDER = "stages"
ENCODE_BATCH = 65536
# Items whose text trains the tokenizer of a streamed conversion (SentencePiece needs a sample, not all of APD).
TOKENIZER_SAMPLE = 1_000_000


class Progress:
    """Log lines 'what: done / total (share), ETA' at most every `every` seconds."""

    def __init__(self, what, total, every=10.0):
        self.what, self.total, self.every = what, total, every
        self.start = self.last = time.monotonic()

    def update(self, done, force=False):
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        share = done / self.total if self.total else 1.0
        eta = (now - self.start) * (1 - share) / share if share > 0 else float("nan")
        logger.info(f"{self.what}: {done:,} of {self.total:,} ({share:.0%}), {now - self.start:.0f} s so far, "
                    f"ETA {eta:.0f} s")


def model_text(value):
    """A field value as SRT reads it back from the .item file the conversion writes: normalized once more."""
    return normalize_text(value) if value else ""


class TextEncoder:
    """Fills `item_text.npy` batch by batch: SentencePiece ids + 1, cut at `max_tokens`, per field."""

    def __init__(self, folder, proto, n_items, n_fields, max_tokens):
        self.processor = spm.SentencePieceProcessor(model_proto=proto)
        self.table = sequence_store.create_array(folder, "item_text", (n_items + 1, n_fields, max_tokens),
                                                 sequence_store.token_dtype(self.processor.get_piece_size()))
        self.max_tokens, self.truncated = max_tokens, 0
        self.ids, self.texts = [], []

    def add(self, item_id, texts):
        self.ids.append(item_id)
        self.texts.extend(model_text(t) for t in texts)
        if len(self.ids) >= ENCODE_BATCH:
            self.flush()

    def flush(self):
        if not self.ids:
            return
        n_fields = self.table.shape[1]
        block = np.zeros((len(self.ids), n_fields, self.max_tokens), dtype=self.table.dtype)
        for index, pieces in enumerate(self.processor.encode(self.texts)):
            if len(pieces) > self.max_tokens:
                self.truncated += 1
                pieces = pieces[: self.max_tokens]
            block[index // n_fields, index % n_fields, : len(pieces)] = np.asarray(pieces) + 1
        self.table[np.asarray(self.ids)] = block
        self.ids, self.texts = [], []

    def close(self):
        """(values cut, items without any text) once every item was added."""
        self.flush()
        without = 0
        for first in range(1, len(self.table), sequence_store.BLOCK_USERS):
            block = self.table[first : first + sequence_store.BLOCK_USERS]
            without += int((block == 0).all(axis=(1, 2)).sum())
        self.table.flush()
        return self.truncated, without


def _finish(folder, offsets, items, n_items, encoder, tokenizer_proto, text_fields, source):
    truncated, without_text = encoder.close()
    counts = sequence_store.create_array(folder, "train_counts", (n_items + 1,), np.int64)
    counts[:] = sequence_store.count_training_targets(offsets, items, n_items)
    counts.flush()
    return sequence_store.finish(folder, {
        "n_users": len(offsets) - 2, "n_items": n_items, "n_interactions": int(offsets[-1]),
        "text_fields": list(text_fields), "max_text_tokens": encoder.max_tokens, "truncated": truncated,
        "items_without_text": without_text, "text_normalization": "plain",
        "vocab_size": encoder.processor.get_piece_size(), "source": source,
    }, tokenizer_proto)


def store_from_table(folder, interactions, items, text_fields, tokenizer_proto, max_tokens):
    """A store from a conversion's table (sorted by user, then time) and its items' normalized text."""
    folder = os.path.join(folder, STORE_FOLDER)
    os.makedirs(folder)
    user_codes, users = pd.factorize(interactions["user_id"])
    item_codes, item_ids = pd.factorize(interactions["item_id"])
    if np.any(np.diff(user_codes) < 0):
        raise ValueError("store_from_table: the interactions must be grouped by user")
    n_users, n_items = len(users), len(item_ids)
    offsets = sequence_store.create_array(folder, "offsets", (n_users + 2,), np.int64)
    offsets[0] = offsets[1] = 0
    offsets[2:] = np.cumsum(np.bincount(user_codes, minlength=n_users))
    flat = sequence_store.create_array(folder, "items", (len(item_codes),), np.int32)
    flat[:] = item_codes + 1
    encoder = TextEncoder(folder, tokenizer_proto, n_items, len(text_fields), max_tokens)
    for internal, item in enumerate(item_ids, start=1):
        encoder.add(internal, [items[item][field] for field in text_fields])
    sequence_store.write_ids(folder, "users", users)
    sequence_store.write_ids(folder, "items", item_ids)
    _finish(folder, offsets, flat, n_items, encoder, tokenizer_proto, text_fields, "table")


def _read_sequences(path, folder, bad):
    """Pass over the sequence file: (user ids in file order, lengths, item id -> first-seen code); the codes of
    every line go to `folder/codes.raw` (int32) as they are read."""
    codes, users, lengths, buffer, total, number = {}, [], [], [], 0, 0
    progress = Progress(f"reading {os.path.basename(path)} (MB on disk)", os.path.getsize(path) >> 20)
    with open_text(path) as f, open(os.path.join(folder, "codes.raw"), "wb") as out, reading(path, lambda: number):
        raw = f.buffer.fileobj if path.endswith(".gz") else f.buffer
        for number, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            total += 1
            if not is_text(line):
                bad.skip(path, number, "not utf-8 text")
            elif len(tokens) < 2:
                bad.skip(path, number, "a user with no items")
            else:
                users.append(tokens[0])
                lengths.append(len(tokens) - 1)
                buffer.extend([codes.setdefault(token, len(codes)) for token in tokens[1:]])
                if len(buffer) >= 1 << 22:
                    out.write(np.asarray(buffer, dtype=np.int32).tobytes())
                    buffer = []
                    progress.update(raw.tell() >> 20)
        out.write(np.asarray(buffer, dtype=np.int32).tobytes())
    bad.seen(path, total)
    return users, np.asarray(lengths, dtype=np.int64), codes


def _in_user_order(folder, raw_codes, file_offsets, lengths, order, n_codes):
    """offsets.npy and items.npy with users in `order`, items renumbered by first appearance in that order."""
    n_users, total = len(order), int(lengths.sum())
    offsets = sequence_store.create_array(folder, "offsets", (n_users + 2,), np.int64)
    offsets[0] = offsets[1] = 0
    offsets[2:] = np.cumsum(lengths[order])
    items = sequence_store.create_array(folder, "items", (total,), np.int32)
    first_seen = np.full(n_codes, -1, dtype=np.int64)
    progress = Progress("ordering users", n_users)
    for first in range(0, n_users, sequence_store.BLOCK_USERS):
        block = order[first : first + sequence_store.BLOCK_USERS]
        positions = sequence_store.segment_positions(file_offsets[block], lengths[block])
        start = int(offsets[first + 1])
        values = np.asarray(raw_codes[positions])
        items[start : start + len(values)] = values
        unique, index = np.unique(values, return_index=True)
        new = first_seen[unique] < 0
        first_seen[unique[new]] = start + index[new]
        progress.update(first + len(block))
    new_id = np.empty(n_codes, dtype=np.int32)
    new_id[np.argsort(first_seen, kind="stable")] = np.arange(1, n_codes + 1, dtype=np.int32)
    for start in range(0, total, 1 << 24):
        items[start : start + (1 << 24)] = new_id[items[start : start + (1 << 24)]]
    return offsets, items, new_id


def _tokenizer_text(item_path, text_fields, codes, sample):
    """Normalized field values of up to `sample` items that occur in the interactions, for training the tokenizer."""
    text, seen = [], 0
    # Bad lines are counted by the encoding pass, which reads every line: this one must not count them again.
    for _, item, values in recbole_item_rows(item_path, BadLines(1.0), text_fields):
        if item in codes:
            text += [normalize_text(v) for v in values if v]
            seen += 1
            if seen >= sample:
                break
    return sorted(t for t in text if t)


def _write_lines(folder, name, tokens):
    with open(os.path.join(folder, f"{name}.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{token}\n" for token in tokens)


def _read_lines(folder, name):
    """A stage's id list back: for 'codes' the dict from item id to its first-seen code."""
    with open(os.path.join(folder, f"{name}.txt"), encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    return {token: code for code, token in enumerate(tokens)} if name == "codes" else tokens


def _ordered(sequence_path, folder, stages, users, lengths, codes):
    """The users in RecBole's order (sorted by id) and items renumbered: offsets, items, the id files and new_id
    (first-seen code -> internal id, kept in `stages` for the text pass)."""
    users = np.asarray(users if users is not None else _read_lines(stages, "users"))
    order = np.argsort(users, kind="stable")
    repeated = np.nonzero(users[order][1:] == users[order][:-1])[0]
    if len(repeated):
        raise InputError(f"{sequence_path}: {len(repeated)} users appear on more than one line (first: "
                         f"{users[order][repeated[0]]!r}); the sequences format holds one line per user")
    raw_codes = np.memmap(os.path.join(stages, "codes.raw"), dtype=np.int32, mode="r")
    file_offsets = np.cumsum(lengths) - lengths
    offsets, items, new_id = _in_user_order(folder, raw_codes, file_offsets, lengths, order, len(codes))
    del raw_codes
    sequence_store.write_ids(folder, "users", users[order])
    del users
    by_new_id = np.empty(len(codes), dtype=object)
    by_new_id[new_id - 1] = list(codes)
    sequence_store.write_ids(folder, "items", by_new_id)
    np.save(os.path.join(stages, "new_id.npy"), new_id)
    return offsets, items, new_id


def _tokenizer(tokenizer, item_path, text_fields, codes, vocab_size, final_dir):
    """(SentencePiece model proto, what the statistics say of it): the given one, or one trained on item text."""
    if tokenizer:
        with open(tokenizer, "rb") as f:
            return f.read(), {"source": "given", "path": os.path.abspath(tokenizer)}
    proto = train_tokenizer(_tokenizer_text(item_path, text_fields, codes, TOKENIZER_SAMPLE), vocab_size)
    return proto, {"source": "trained", "path": os.path.join(final_dir, STORE_FOLDER, "tokenizer.model"),
                   "requested_vocab_size": vocab_size, "sample_items": TOKENIZER_SAMPLE, "extra_text": {}}


def store_from_sequences(inputs, final_dir, work, bad, text_fields, tokenizer, vocab_size, max_tokens):
    """Stream a `sequences` dataset into `work.folder/store`, stage by stage: a stage an interrupted run with the same
    inputs and options finished is not done again (`dataset_scripts.resume`). Returns the conversion's statistics."""
    sequence_path = find_file(inputs, ["user_sequence.txt.gz", "user_sequence.txt", "*.txt.gz", "*.txt"],
                              "user sequences")
    item_path = find_file(inputs, ["*.item.gz", "*.item"], "RecBole item (.item)")
    work.start({"sequences": file_fingerprint(sequence_path), "items": file_fingerprint(item_path),
                "tokenizer": file_fingerprint(tokenizer) if tokenizer else None, "text_fields": list(text_fields),
                "vocab_size": vocab_size, "max_text_tokens": max_tokens, "max_bad_fraction": bad.max_fraction})
    folder, stages = os.path.join(work.folder, STORE_FOLDER), os.path.join(work.folder, STAGE_FOLDER)
    os.makedirs(folder, exist_ok=True)
    os.makedirs(stages, exist_ok=True)
    if "read" in work.stages:
        bad.files.update(work.stages["read"]["malformed"])
        lengths, codes = np.load(os.path.join(stages, "lengths.npy")), _read_lines(stages, "codes")
        users = None
    else:
        users, lengths, codes = _read_sequences(sequence_path, stages, bad)
        if not users:
            raise InputError(f"{sequence_path}: no user with items")
        np.save(os.path.join(stages, "lengths.npy"), lengths)
        _write_lines(stages, "codes", codes)
        _write_lines(stages, "users", users)
        work.finished("read", {"malformed": {path: bad.files[path] for path in bad.files}})
    if "order" in work.stages:
        offsets = np.load(os.path.join(folder, "offsets.npy"), mmap_mode="r")
        items = np.load(os.path.join(folder, "items.npy"), mmap_mode="r")
        new_id = np.load(os.path.join(stages, "new_id.npy"))
    else:
        offsets, items, new_id = _ordered(sequence_path, folder, stages, users, lengths, codes)
        del users
        work.finished("order")
        os.remove(os.path.join(stages, "codes.raw"))
    if "tokenizer" in work.stages:
        with open(os.path.join(stages, "tokenizer.model"), "rb") as f:
            proto = f.read()
        tokenizer_info = work.stages["tokenizer"]
    else:
        proto, tokenizer_info = _tokenizer(tokenizer, item_path, text_fields, codes, vocab_size, final_dir)
        with open(os.path.join(stages, "tokenizer.model"), "wb") as f:
            f.write(proto)
        work.finished("tokenizer", tokenizer_info)
    encoder = TextEncoder(folder, proto, len(codes), len(text_fields), max_tokens)
    tokenizer_info["vocab_size"] = encoder.processor.get_piece_size()
    described = np.zeros(len(codes) + 1, dtype=bool)
    n_described = 0
    progress = Progress("encoding item text (items)", len(codes))
    for number, item, values in recbole_item_rows(item_path, bad, text_fields):
        code = codes.get(item)
        if code is None:
            continue
        internal = int(new_id[code])
        if described[internal]:
            bad.duplicate_item(item_path, number)
            continue
        described[internal] = True
        n_described += 1
        encoder.add(internal, [normalize_text(v) if v else None for v in values])
        progress.update(n_described)
    meta = _finish(folder, offsets, items, len(codes), encoder, proto, text_fields, "sequences (streamed)")
    shutil.rmtree(stages)
    n_users, n_items, n_inter = len(offsets) - 2, len(codes), int(offsets[-1])
    return {
        "format": "sequences", "n_users": n_users, "n_items": n_items, "n_interactions": n_inter,
        "avg_interactions_per_user": round(n_inter / n_users, 4),
        "avg_interactions_per_item": round(n_inter / n_items, 4),
        "items_without_metadata": int(len(codes) - described[1:].sum()),
        "items_without_text": meta["items_without_text"], "text_values_cut": meta["truncated"],
        "sequence_length": {"min": int(lengths.min()), "median": float(np.median(lengths)), "max": int(lengths.max())},
        "duplicates_removed": 0, "malformed_lines": bad.report(), "duplicate_item_rows": bad.duplicate_items,
        "tokenizer": tokenizer_info, "sources": None, "store": os.path.join(final_dir, STORE_FOLDER),
    }
