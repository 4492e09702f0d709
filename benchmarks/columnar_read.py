"""The streamed conversion's read pass against a columnar engine (issue 23: "choose by measurement and say why").

    pip install polars            # not a dependency of this project: only this benchmark uses it
    python benchmarks/columnar_read.py --input data/store_benchmark/raw/apd_10000000/user_sequence.txt.gz

The read pass turns a `sequences` file (one line per user: the user id, then item ids) into users, lengths and item
codes by first appearance. `python`: our pass (`dataset_scripts.store._read_sequences`, streaming, a dict over item
ids). `polars`: the whole file read as one column of lines, split, exploded, items factorized. Each engine runs in a
process of its own (peak RSS is its own); the counts they find must agree.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from common import machine_line, markdown_table, write_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = ("python", "polars")


def read_with(engine, path):
    start = time.perf_counter()
    if engine == "polars":
        try:
            import polars as pl
        except ImportError:
            raise SystemExit("engine polars: `pip install polars` first (not a dependency of recbole-srt)") from None
        lines = pl.read_csv(path, has_header=False, new_columns=["line"], separator="\x01", quote_char=None)
        tokens = lines.select(pl.col("line").str.split(" ").alias("tokens"))
        n_users = tokens.height
        n_interactions = int(tokens.select(pl.col("tokens").list.len() - 1).sum().item())
        items = tokens.select(pl.col("tokens").list.slice(1)).explode("tokens").to_series()
        n_items = items.cast(pl.Categorical).to_physical().n_unique()
        version = pl.__version__
    else:
        sys.path.insert(0, REPO)
        from dataset_scripts.sources import BadLines
        from dataset_scripts.store import _read_sequences

        with tempfile.TemporaryDirectory() as folder:
            users, lengths, codes = _read_sequences(path, folder, BadLines(1.0))
        n_users, n_interactions, n_items, version = len(users), int(lengths.sum()), len(codes), "ours"
    return {"engine": engine, "version": version, "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "users": n_users,
            "interactions": n_interactions, "items": n_items}


def table(payload):
    rows = [[r["engine"], r["version"], r["seconds"], f"{r['peak_rss_mb']:,}", f"{r['users']:,}",
             f"{r['interactions']:,}", f"{r['items']:,}"] for r in payload["records"]]
    header = ["engine", "version", "seconds", "peak RSS (MB)", "users", "interactions", "items"]
    return (f"Input: `{payload['input']}`\n\n{markdown_table(header, rows)}\n\n{machine_line(payload['machine'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="a sequences file (user_sequence.txt[.gz])")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--name", default="columnar_read_cpu")
    parser.add_argument("--one", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(read_with(args.one, args.input)))
        return
    records = []
    for engine in args.engines:
        out = subprocess.run([sys.executable, __file__, "--input", args.input, "--one", engine],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"engine {engine} failed:\n{out.stderr[-3000:]}")
        records.append(json.loads(out.stdout.strip().splitlines()[-1]))
    counts = {(r["users"], r["interactions"], r["items"]) for r in records}
    if len(counts) > 1:
        raise SystemExit(f"the engines disagree on (users, interactions, items): {sorted(counts)}")
    where = os.path.join(os.path.basename(os.path.dirname(os.path.abspath(args.input))), os.path.basename(args.input))
    write_results(args.name, {"input": where, "records": records}, table)


if __name__ == "__main__":
    main()
