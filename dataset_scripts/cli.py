"""python -m dataset_scripts FORMAT --input PATH [PATH ...] --name NAME --output-dir DIR [options]"""

import argparse
import logging
import sys

from dataset_scripts.readers import READERS
from dataset_scripts.sources import InputError

FORMATS_HELP = """formats:
  amazon2014  McAuley 2014: reviews_<Cat>_5.json(.gz) / reviews_<Cat>.json(.gz) / ratings_<Cat>.csv
              + meta_<Cat>.json(.gz) (Python dict literals); text: title, brand
  amazon2018  2018 release: <Cat>_5.json(.gz) / <Cat>.json(.gz) / <Cat>.csv + meta_<Cat>.json(.gz) (JSON lines)
  sequences   user_sequence.txt(.gz) (`user item1 item2 ...`, time order) + a RecBole .item file for the text
  movielens   ML-1M: ratings.dat or user_sequence.txt(.gz) + movies.dat (latin-1, `::`); text: title, genres
  recbole     an existing RecBole atomic dataset (.inter + .item); normalises the text fields

outputs in DIR/NAME: NAME.inter, NAME.item, NAME.spm.model (when trained), NAME.stats.json,
NAME.growth.csv/.png (catalog growth, paper Fig. 1) and NAME.yaml (properties for run_recbole)."""


def _sample_size(text):
    value = float(text)
    if value <= 0 or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(f"expected a user count (>= 1) or a fraction in (0, 1), got {text}")
    return value if value < 1 else int(value)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m dataset_scripts", description="Convert public interaction data and item text into a "
        "RecBole dataset for SRT.", epilog=FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=sorted(READERS), metavar="FORMAT",
                        help=f"one of {', '.join(sorted(READERS))}")
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="the dataset's folder (files found by their usual names) or the files themselves; "
                        "several folders are combined into one dataset (ids prefixed with each folder's name)")
    parser.add_argument("--name", required=True, help="dataset name: files are DIR/NAME/NAME.*")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="where the NAME folder is written")
    parser.add_argument("--tokenizer", metavar="PATH", help="reuse this SentencePiece model instead of training one "
                        "(several datasets then share one vocabulary, for pre-training and fine-tuning)")
    parser.add_argument("--tokenizer-text", nargs="+", default=[], metavar="PATH",
                        help="datasets of the same format whose item text also trains the tokenizer (their "
                        "interactions are not used): e.g. the catalog a pre-trained model will be fine-tuned on")
    parser.add_argument("--vocab-size", type=int, default=30000,
                        help="vocabulary of the trained tokenizer (default 30000 as in the paper; reduced for small "
                        "text)")
    parser.add_argument("--kcore", type=int, metavar="K",
                        help="iteratively keep users and items with >= K interactions")
    parser.add_argument("--sample-users", type=_sample_size, metavar="N|FRACTION",
                        help="keep all interactions of N random users (or a fraction); nested across sizes")
    parser.add_argument("--seed", type=int, default=2020, help="seed of --sample-users and the growth report")
    parser.add_argument("--text-fields", nargs="+", metavar="FIELD",
                        help="item-file text fields for sequences/recbole formats (default: title brand)")
    parser.add_argument("--store", action="store_true",
                        help="also write a memory-mapped sequence store (DIR/NAME/store) and point NAME.yaml at it "
                        "(data_store); a sequences input is then streamed, out of core, without atomic files")
    parser.add_argument("--max-text-tokens", type=int, default=32, metavar="N",
                        help="pieces kept per text field in the store (default 32, SRT's max_text_tokens)")
    parser.add_argument("--max-bad-fraction", type=float, default=0.01,
                        help="fail when more than this share of a file's lines is malformed (default 0.01)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from dataset_scripts.convert import convert

    try:
        stats = convert(args.format, args.input, args.name, args.output_dir, tokenizer=args.tokenizer,
                        vocab_size=args.vocab_size, kcore_k=args.kcore, sample=args.sample_users, seed=args.seed,
                        max_bad_fraction=args.max_bad_fraction, text_fields=args.text_fields,
                        tokenizer_text=args.tokenizer_text, store=args.store,
                        max_text_tokens=args.max_text_tokens)
    except (InputError, ValueError, OSError) as error:
        print(f"dataset_scripts: error: {error}", file=sys.stderr)
        return 2
    bad = sum(e["bad"] for e in stats["malformed_lines"].values())
    print(f"{args.name}: {stats['n_users']:,} users, {stats['n_items']:,} items, {stats['n_interactions']:,} "
          f"interactions ({stats['avg_interactions_per_user']:.2f}/user, "
          f"{stats['avg_interactions_per_item']:.2f}/item); {stats['items_without_text']} items without text; "
          f"{stats['duplicates_removed']} duplicate interactions removed; {bad} malformed lines skipped")
    for name, entry in (stats["sources"] or {}).items():
        print(f"  source {name} ({entry['path']}): {entry['users']:,} users, {entry['items']:,} items, "
              f"{entry['interactions']:,} interactions")
    for path, entry in stats["duplicate_item_rows"].items():
        print(f"  {path}: {entry['rows']} rows repeat an earlier item id (first at lines {entry['first']}); the "
              "first row of each id kept")
    for path, entry in stats["malformed_lines"].items():
        print(f"  {path}: {entry['bad']} malformed of {entry['total']} (first at lines {entry['first']}): "
              f"{entry['reasons']}")
    if stats["tokenizer"]["source"] == "trained":
        print(f"  tokenizer: {stats['tokenizer']['path']} ({stats['tokenizer']['vocab_size']} pieces)")
        for path, count in stats["tokenizer"]["extra_text"].items():
            print(f"  tokenizer text also from {path}: {count:,} field values")
    print(f"  written to {args.output_dir}/{args.name}/ ; run: run_recbole --model=SRT "
          f"--config_files={args.output_dir}/{args.name}/{args.name}.yaml")
    return 0
