"""A seeded synthetic catalog of any size, written as raw data in the `sequences` format, for scale tests.

    python -m dataset_scripts.synthetic --items 1000000 --users 200000 --interactions 5000000 --output raw/synth-1m
    python -m dataset_scripts sequences --input raw/synth-1m --name synth_1m --output-dir data

Every item has a generated title (words from a seeded pseudo-vocabulary) and brand, and at least one interaction, so
the converted catalog has exactly `--items` items. The remaining interactions follow a Zipf-like popularity over a
random order of the items; each user has at least 3 interactions (leave-one-out needs them), lengths are skewed.
Files are written in chunks, so the Amazon Product Data's shape (82.7M interactions, 9.9M items, 21M users) is
generated in about the memory its item sequence takes as int32 (330 MB) plus the per-user lengths.
"""

import argparse
import gzip
import os
import shutil
import sys

import numpy as np

# Brands: one per 50 items, at most this many (a catalog of 9.9M items has 50,000 brands).
MAX_BRANDS = 50_000
# Values drawn or lines formatted per step: memory stays bounded at any size.
CHUNK = 1 << 22
SYLLABLES = ["ka", "lo", "mi", "ra", "to", "ne", "su", "vi", "de", "po", "ba", "xe", "qu", "ti", "zo", "an", "el", "or"]
MAX_WORDS = len(SYLLABLES) ** 2 + len(SYLLABLES) ** 3 + len(SYLLABLES) ** 4


def pseudo_words(rng, count):
    """`count` distinct lower-case words of 2-4 syllables (at most MAX_WORDS exist)."""
    if count > MAX_WORDS:
        raise ValueError(f"pseudo_words: {count} words asked, but only {MAX_WORDS} of 2-4 syllables exist")
    words = set()
    while len(words) < count:
        n_syllables = rng.integers(2, 5, size=count)
        picks = rng.integers(0, len(SYLLABLES), size=(count, 4))
        words.update("".join(SYLLABLES[s] for s in row[:n]) for row, n in zip(picks, n_syllables))
    return sorted(words)[:count]


def user_lengths(rng, n_users, n_interactions):
    """Skewed lengths, each at least 3, summing exactly to n_interactions."""
    if n_interactions < 3 * n_users:
        raise ValueError(f"--interactions {n_interactions} must be at least 3 x --users ({3 * n_users})")
    extra = rng.pareto(1.5, size=n_users)
    lengths = 3 + np.floor(extra / extra.sum() * (n_interactions - 3 * n_users)).astype(np.int64)
    short = n_interactions - lengths.sum()
    lengths[rng.choice(n_users, size=short, replace=False)] += 1
    return lengths


def item_sequence(rng, n_items, n_interactions, zipf_exponent):
    """Every interaction's item (int32, users' sequences one after another): each item once, the rest drawn from a
    Zipf-like popularity over a random order of the items, shuffled."""
    if n_interactions < n_items:
        raise ValueError(f"--interactions {n_interactions} must be at least --items {n_items} (every item is used)")
    popularity = 1.0 / np.arange(10, n_items + 10, dtype=np.float64) ** zipf_exponent
    by_rank = rng.permutation(n_items).astype(np.int32)  # item by_rank[r] has the r-th largest popularity
    cumulative = np.cumsum(popularity / popularity.sum())
    del popularity
    items = np.empty(n_interactions, dtype=np.int32)
    items[:n_items] = rng.permutation(n_items)
    for start in range(n_items, n_interactions, CHUNK):
        stop = min(start + CHUNK, n_interactions)
        items[start:stop] = by_rank[np.minimum(np.searchsorted(cumulative, rng.random(stop - start)), n_items - 1)]
    rng.shuffle(items)
    return items


def write_raw(folder, n_items, n_users, n_interactions, seed=0, zipf_exponent=1.0):
    """user_sequence.txt.gz (`user item ...`) and synthetic.item.gz (RecBole header), as the shared raw data, written
    in chunks: memory holds the item sequence (int32, the size of a store's own item array) and one chunk."""
    rng = np.random.default_rng(seed)
    items = item_sequence(rng, n_items, n_interactions, zipf_exponent)
    ends = np.cumsum(user_lengths(rng, n_users, n_interactions))
    final, folder = folder, f"{folder.rstrip(os.sep)}.tmp-{os.getpid()}"
    os.makedirs(folder)
    with gzip.open(os.path.join(folder, "user_sequence.txt.gz"), "wt", encoding="utf-8", compresslevel=1) as f:
        for first in range(0, n_users, CHUNK // 8):
            last = min(first + CHUNK // 8, n_users)
            start = int(ends[first - 1]) if first else 0
            words = [f"i{i}" for i in items[start : int(ends[last - 1])].tolist()]
            bounds = (ends[first:last] - start).tolist()
            lines, previous = [], 0
            for user, bound in zip(range(first, last), bounds):
                lines.append(f"u{user} " + " ".join(words[previous:bound]))
                previous = bound
            f.write("\n".join(lines) + "\n")
    del items
    words = rng.permutation(pseudo_words(rng, min(20_000, max(50, n_items // 10))))  # word rank != alphabetical
    brands = np.array([w.capitalize() for w in pseudo_words(np.random.default_rng(seed + 1),
                                                            min(MAX_BRANDS, max(10, n_items // 50)))])
    with gzip.open(os.path.join(folder, "synthetic.item.gz"), "wt", encoding="utf-8", compresslevel=1) as f:
        f.write("item_id:token\ttitle:token\tbrand:token\n")
        for first in range(0, n_items, CHUNK // 8):
            size = min(CHUNK // 8, n_items - first)
            word_count = rng.integers(3, 9, size=size)
            word_ids = np.minimum(rng.zipf(1.3, size=(size, 8)) - 1, len(words) - 1)
            item_brands = brands[rng.integers(0, len(brands), size=size)]
            f.write("".join(f"i{first + k}\t{' '.join(words[ids[:n]])}\t{brand}\n"
                            for k, (ids, n, brand) in enumerate(zip(word_ids, word_count, item_brands))))
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.rename(folder, final)  # complete files only: an interrupted run leaves its temporary folder, never `final`


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dataset_scripts.synthetic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--zipf", type=float, default=1.0, help="popularity exponent (default 1.0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="folder for the raw files")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        write_raw(args.output, args.items, args.users, args.interactions, args.seed, args.zipf)
    except ValueError as error:
        print(f"dataset_scripts.synthetic: error: {error}", file=sys.stderr)
        return 2
    print(f"{args.output}: {args.users:,} users, {args.items:,} items, {args.interactions:,} interactions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
