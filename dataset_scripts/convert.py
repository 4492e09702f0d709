"""From a public dump to a RecBole dataset SRT trains on: atomic files, tokenizer, statistics, growth report, yaml.

Everything is written to a temporary folder next to the target and moved into place at the end, so an interrupted
run never leaves a half-written dataset; the same arguments give byte-identical files.
"""

import json
import logging
import os
import shutil

import numpy as np
import pandas as pd
import sentencepiece as spm
import yaml

from dataset_scripts.combine import read_inputs, source_counts
from dataset_scripts.filtering import deduplicate, kcore, sample_users
from dataset_scripts.growth import catalog_growth, plot_growth
from dataset_scripts.readers import READERS
from dataset_scripts.resume import WorkFolder
from dataset_scripts.sources import BadLines, InputError
from dataset_scripts.store import STORE_FOLDER, store_from_sequences, store_from_table
from recbole_srt.data.item_text import normalize_text
from recbole_srt.data.tokenizer import train_tokenizer

logger = logging.getLogger("dataset_scripts")


def _normalized_items(raw_items, item_ids, text_fields):
    """Text of the kept items, normalized; missing (or blank) values stay None."""
    items, missing_metadata = {}, 0
    for item in item_ids:
        raw = raw_items.get(item)
        if raw is None:
            missing_metadata += 1
            raw = {}
        texts = {}
        for field in text_fields:
            value = raw.get(field)
            value = normalize_text(value) if value is not None else ""
            texts[field] = value or None
        items[item] = texts
    return items, missing_metadata


def _extra_text(fmt, paths, bad, text_fields):
    """Normalized field values of other datasets' items, and how many each dataset gave."""
    text, counts = [], {}
    for path in paths:
        raw = READERS[fmt]([path], bad, text_fields)
        values = [v for v in sorted(normalize_text(v) for item in raw.items.values() for v in item.values() if v) if v]
        counts[os.path.abspath(path)] = len(values)
        text += values
    return text, counts


def _write_inter(path, interactions, extra_columns):
    frame = interactions.copy()
    if (frame["timestamp"] % 1 == 0).all():
        frame["timestamp"] = frame["timestamp"].astype("int64")
    columns = ["user_id", "item_id", "timestamp", *extra_columns]
    header = ["user_id:token", "item_id:token", "timestamp:float", *extra_columns.values()]
    frame[columns].to_csv(path, sep="\t", index=False, header=header, lineterminator="\n")


def _write_item(path, items, text_fields):
    rows = {"item_id": list(items)}
    for field in text_fields:
        rows[field] = [items[i][field] or "" for i in items]
    header = ["item_id:token", *(f"{f}:token" for f in text_fields)]
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False, header=header, lineterminator="\n")


def _properties(name, final_dir, text_fields, tokenizer_path, store=False):
    store_keys = {"data_store": os.path.join(final_dir, STORE_FOLDER)} if store else {}
    return {**store_keys,
        "data_path": os.path.dirname(final_dir),
        "dataset": name,
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", *text_fields]},
        "text_fields": list(text_fields),
        "tokenizer_model": tokenizer_path,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO",
                      "mode": {"valid": "sampled10000", "test": "sampled10000"}},
        "metrics": ["NDCG", "Hit", "MRR"],
        "topk": [5, 10],
        "valid_metric": "NDCG@5",
    }


def convert(fmt, inputs, name, output_dir, tokenizer=None, vocab_size=30000, kcore_k=None, sample=None, seed=2020,
            max_bad_fraction=0.01, text_fields=None, tokenizer_text=(), store=False, max_text_tokens=32):
    """Convert and write DIR/NAME; returns the statistics dict (also written as NAME.stats.json).

    `tokenizer_text`: datasets (same format) whose item text joins the trained tokenizer's text but whose
    interactions are not used: a catalog to fine-tune on later gets pieces of its own words. `store`: also write a
    sequence store (DIR/NAME/store) that NAME.yaml points run_recbole at; a `sequences` input without filtering is
    streamed into the store alone, without atomic files.
    """
    if fmt not in READERS:
        raise InputError(f"unknown format '{fmt}'; expected one of {sorted(READERS)}")
    if tokenizer is not None and not os.path.isfile(tokenizer):
        raise InputError(f"--tokenizer: SentencePiece model '{tokenizer}' does not exist")
    if tokenizer is not None and tokenizer_text:
        raise InputError("--tokenizer-text adds text to a tokenizer trained here; it cannot change a given --tokenizer")
    bad = BadLines(max_bad_fraction)
    if store and fmt == "sequences" and not (kcore_k or sample is not None or tokenizer_text):
        return _streamed_store(inputs, name, output_dir, bad, text_fields or ["title", "brand"], tokenizer,
                               vocab_size, max_text_tokens)
    raw, sources = read_inputs(fmt, list(inputs), bad, text_fields)
    interactions, duplicates = deduplicate(raw.interactions)
    n_read = len(raw.interactions)
    if kcore_k:
        interactions = kcore(interactions, kcore_k)
    after_kcore = len(interactions)
    if sample is not None:
        interactions = sample_users(interactions, sample, seed)
    if interactions.empty:
        raise InputError("no interaction is left after filtering (check --kcore / --sample-users)")
    interactions = interactions.sort_values(["user_id", "timestamp"], kind="mergesort").reset_index(drop=True)
    item_ids = sorted(interactions["item_id"].unique())
    items, missing_metadata = _normalized_items(raw.items, item_ids, raw.text_fields)

    final_dir, tmp_dir = _folders(output_dir, name)
    try:
        tokenizer_info = {"source": "given", "path": os.path.abspath(tokenizer)} if tokenizer else None
        if tokenizer is None:
            corpus = sorted(t for item in items.values() for t in item.values() if t)
            extra, extra_counts = _extra_text(fmt, tokenizer_text, bad, text_fields)
            proto = train_tokenizer(corpus + extra, vocab_size)
            with open(os.path.join(tmp_dir, f"{name}.spm.model"), "wb") as f:
                f.write(proto)
            pieces = spm.SentencePieceProcessor(model_proto=proto).get_piece_size()
            tokenizer_info = {"source": "trained", "path": os.path.join(final_dir, f"{name}.spm.model"),
                              "requested_vocab_size": vocab_size, "vocab_size": pieces,
                              "extra_text": extra_counts}
            if pieces < vocab_size:
                logger.warning(f"tokenizer: vocabulary reduced from {vocab_size} to {pieces}: the item text is too "
                               "small")
        _write_inter(os.path.join(tmp_dir, f"{name}.inter"), interactions, raw.extra_inter_columns)
        _write_item(os.path.join(tmp_dir, f"{name}.item"), items, raw.text_fields)
        if store:
            with open(tokenizer_info["path"] if tokenizer else os.path.join(tmp_dir, f"{name}.spm.model"), "rb") as f:
                store_from_table(tmp_dir, interactions, items, raw.text_fields, f.read(), max_text_tokens)
        growth = catalog_growth(interactions, seed)
        growth.to_csv(os.path.join(tmp_dir, f"{name}.growth.csv"), index=False, lineterminator="\n")
        plot_growth(growth, os.path.join(tmp_dir, f"{name}.growth.png"), f"{name}: catalog growth")
        lengths = interactions.groupby("user_id").size().to_numpy()
        n_users, n_items, n_inter = len(lengths), len(item_ids), len(interactions)
        stats = {
            "format": fmt,
            "n_users": n_users,
            "n_items": n_items,
            "n_interactions": n_inter,
            "avg_interactions_per_user": round(n_inter / n_users, 4),
            "avg_interactions_per_item": round(n_inter / n_items, 4),
            "items_without_text": sum(all(v is None for v in t.values()) for t in items.values()),
            "missing_text_per_field": {f: sum(t[f] is None for t in items.values()) for f in raw.text_fields},
            "items_without_metadata": missing_metadata,
            "sequence_length": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                                "max": int(lengths.max())},
            "rows_read": n_read,
            "duplicates_removed": duplicates,
            "kcore": {"k": kcore_k, "rows_removed": n_read - duplicates - after_kcore} if kcore_k else None,
            "sample_users": {"size": sample, "seed": seed} if sample is not None else None,
            "malformed_lines": bad.report(),
            "duplicate_item_rows": bad.duplicate_items,
            "tokenizer": tokenizer_info,
            "sources": source_counts(interactions, sources) if sources else None,
        }
        _write_and_move(tmp_dir, final_dir, name, stats,
                        _properties(name, final_dir, raw.text_fields, tokenizer_info["path"], store))
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return stats


def _write_and_move(tmp_dir, final_dir, name, stats, properties):
    """NAME.stats.json and NAME.yaml written last, then the folder moved into place."""
    with open(os.path.join(tmp_dir, f"{name}.stats.json"), "w") as f:
        json.dump(stats, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(tmp_dir, f"{name}.yaml"), "w") as f:
        f.write(f"# RecBole properties for {name}, written by dataset_scripts.\n")
        f.write(f"# run_recbole --model=SRT --config_files={os.path.join(final_dir, name + '.yaml')}\n")
        yaml.safe_dump(properties, f, sort_keys=False, default_flow_style=None)
    _move_into_place(tmp_dir, final_dir)


def _streamed_store(inputs, name, output_dir, bad, text_fields, tokenizer, vocab_size, max_text_tokens):
    """DIR/NAME with a store, the statistics and the yaml only: a `sequences` input streamed (out of core), in a work
    folder that an interrupted run leaves for the next one to continue from (dataset_scripts.resume)."""
    final_dir = os.path.abspath(os.path.join(output_dir, name))
    work = WorkFolder(output_dir, name)
    try:
        stats = store_from_sequences(inputs, final_dir, work, bad, text_fields, tokenizer, vocab_size,
                                     max_text_tokens)
    except ValueError:
        work.discard()
        raise
    except BaseException:
        work.keep()
        raise
    work.complete()
    _write_and_move(work.folder, final_dir, name, stats,
                    _properties(name, final_dir, text_fields, stats["tokenizer"]["path"], True))
    return stats


def _folders(output_dir, name):
    """(the dataset's folder, an empty temporary folder beside it that becomes it once complete)."""
    final_dir = os.path.abspath(os.path.join(output_dir, name))
    tmp_dir = os.path.join(os.path.dirname(final_dir), f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)
    return final_dir, tmp_dir


def _move_into_place(tmp_dir, final_dir):
    backup = None
    if os.path.exists(final_dir):
        backup = f"{tmp_dir}.old"
        os.rename(final_dir, backup)
    os.rename(tmp_dir, final_dir)
    if backup:
        shutil.rmtree(backup)
