"""A seeded synthetic catalog of any size, written as raw data in the `sequences` format, for scale tests.

    python -m dataset_scripts.synthetic --items 1000000 --users 200000 --interactions 5000000 --output raw/synth-1m
    python -m dataset_scripts sequences --input raw/synth-1m --name synth_1m --output-dir data

Every item has a generated title (words from a seeded pseudo-vocabulary) and brand, and at least one interaction, so
the converted catalog has exactly `--items` items. The remaining interactions follow a Zipf-like popularity over a
random order of the items; each user has at least 3 interactions (leave-one-out needs them), lengths are skewed.
"""

import argparse
import gzip
import os
import sys

import numpy as np

SYLLABLES = ["ka", "lo", "mi", "ra", "to", "ne", "su", "vi", "de", "po", "ba", "xe", "qu", "ti", "zo", "an", "el", "or"]


def pseudo_words(rng, count):
    """`count` distinct lower-case words of 2-4 syllables."""
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


def generate(n_items, n_users, n_interactions, seed=0, zipf_exponent=1.0):
    """(sequences: list of item-index arrays per user, titles, brands) with item indices 0..n_items-1."""
    if n_interactions < n_items:
        raise ValueError(f"--interactions {n_interactions} must be at least --items {n_items} (every item is used)")
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(10, n_items + 10, dtype=np.float64) ** zipf_exponent
    by_rank = rng.permutation(n_items)  # item by_rank[r] has the r-th largest popularity
    cumulative = np.cumsum(popularity / popularity.sum())
    drawn = by_rank[np.minimum(np.searchsorted(cumulative, rng.random(n_interactions - n_items)), n_items - 1)]
    items = np.concatenate([rng.permutation(n_items), drawn])
    rng.shuffle(items)
    bounds = np.cumsum(user_lengths(rng, n_users, n_interactions))[:-1]
    words = rng.permutation(pseudo_words(rng, min(20_000, max(50, n_items // 10))))  # word rank != alphabetical
    brands = np.array([w.capitalize() for w in pseudo_words(np.random.default_rng(seed + 1), max(10, n_items // 50))])
    word_count = rng.integers(3, 9, size=n_items)
    word_ids = np.minimum(rng.zipf(1.3, size=(n_items, 8)) - 1, len(words) - 1)
    titles = [" ".join(words[ids[:n]]) for ids, n in zip(word_ids, word_count)]
    return np.split(items, bounds), titles, brands[rng.integers(0, len(brands), size=n_items)]


def write_raw(folder, sequences, titles, brands):
    """user_sequence.txt.gz (`user item ...`) and synthetic.item.gz (RecBole header), as the shared raw data."""
    os.makedirs(folder, exist_ok=True)
    with gzip.open(os.path.join(folder, "user_sequence.txt.gz"), "wt", encoding="utf-8", compresslevel=1) as f:
        for user, sequence in enumerate(sequences):
            f.write(f"u{user} " + " ".join(f"i{i}" for i in sequence) + "\n")
    with gzip.open(os.path.join(folder, "synthetic.item.gz"), "wt", encoding="utf-8", compresslevel=1) as f:
        f.write("item_id:token\ttitle:token\tbrand:token\n")
        for item, (title, brand) in enumerate(zip(titles, brands)):
            f.write(f"i{item}\t{title}\t{brand}\n")


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
        sequences, titles, brands = generate(args.items, args.users, args.interactions, args.seed, args.zipf)
    except ValueError as error:
        print(f"dataset_scripts.synthetic: error: {error}", file=sys.stderr)
        return 2
    write_raw(args.output, sequences, titles, brands)
    print(f"{args.output}: {args.users:,} users, {args.items:,} items, {args.interactions:,} interactions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
