"""How a target catalog's item text looks under a pre-training tokenizer: a model can transfer only through pieces
that occur in the pre-training text (the others' embeddings were never trained).

    python benchmarks/tokenizer_coverage.py --target data/Amazon_Beauty \\
        --pretraining data/pretrain_games_office data/pretrain_games_office_target_text ...

For the target's own tokenizer and each pre-training dataset's: pieces per field value, values cut at
`max_text_tokens`, and the share of the target's piece occurrences (and distinct pieces) that also occur in the
pre-training dataset's item text. Writes results/<name>.json (--name, default tokenizer_coverage).
"""

import argparse
import os
import statistics

import pandas as pd
import sentencepiece as spm

from common import machine_line, markdown_table, write_results
from recbole_srt.data.item_text import normalize_text

MAX_TEXT_TOKENS = 32


def item_text(folder):
    """Every non-empty text field value of a converted dataset's .item file, normalized as SRT does."""
    name = os.path.basename(os.path.normpath(folder))
    frame = pd.read_csv(os.path.join(folder, f"{name}.item"), sep="\t", dtype=str, keep_default_na=False)
    fields = [c for c in frame.columns if not c.startswith("item_id")]
    return [normalize_text(v) for c in fields for v in frame[c] if v.strip()]


def tokenizer_of(folder):
    name = os.path.basename(os.path.normpath(folder))
    return spm.SentencePieceProcessor(model_file=os.path.join(folder, f"{name}.spm.model"))


def coverage(target_text, tokenizer, pretraining_text):
    target = tokenizer.encode(target_text)
    seen = {p for ids in (tokenizer.encode(pretraining_text) if pretraining_text else []) for p in ids}
    occurrences = [p for ids in target for p in ids]
    distinct = set(occurrences)
    return {"vocab_size": tokenizer.get_piece_size(),
            "pieces_per_value": statistics.mean(len(ids) for ids in target),
            "values_cut": sum(len(ids) > MAX_TEXT_TOKENS for ids in target),
            "values": len(target),
            "occurrences_seen_in_pretraining": (sum(p in seen for p in occurrences) / len(occurrences)
                                                if pretraining_text else None),
            "distinct_seen_in_pretraining": (sum(p in seen for p in distinct) / len(distinct)
                                             if pretraining_text else None)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="converted target dataset folder (its .item and .spm.model)")
    parser.add_argument("--pretraining", nargs="+", required=True, help="converted pre-training dataset folders")
    parser.add_argument("--name", default="tokenizer_coverage",
                        help="results/<name>.json; starts with tokenizer_coverage (the report renders it by that)")
    args = parser.parse_args()
    if not args.name.startswith("tokenizer_coverage"):
        raise SystemExit(f"--name {args.name}: expected a name starting with tokenizer_coverage")
    target_text = item_text(args.target)
    runs = [{"tokenizer": os.path.basename(os.path.normpath(args.target)), "pretraining": None,
             **coverage(target_text, tokenizer_of(args.target), None)}]
    for folder in args.pretraining:
        name = os.path.basename(os.path.normpath(folder))
        runs.append({"tokenizer": name, "pretraining": name,
                     **coverage(target_text, tokenizer_of(folder), item_text(folder))})
        print(runs[-1], flush=True)
    write_results(args.name, {"target": os.path.basename(os.path.normpath(args.target)), "runs": runs}, table)


def table(payload):
    rows = [[r["tokenizer"], f"{r['vocab_size']:,}", f"{r['pieces_per_value']:.1f}",
             f"{r['values_cut']:,} of {r['values']:,}",
             "-" if r["occurrences_seen_in_pretraining"] is None else f"{r['occurrences_seen_in_pretraining']:.1%}",
             "-" if r["distinct_seen_in_pretraining"] is None else f"{r['distinct_seen_in_pretraining']:.1%}"]
            for r in payload["runs"]]
    header = ["tokenizer", "pieces", "pieces per value", f"values cut at {MAX_TEXT_TOKENS}",
              "occurrences seen in pre-training", "distinct pieces seen in pre-training"]
    title = f"{payload['target']} item text (title and brand values) under each tokenizer"
    return f"{title}\n\n{markdown_table(header, rows)}\n\n{machine_line(payload['machine'])}\n"


if __name__ == "__main__":
    main()
