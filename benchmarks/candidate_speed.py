"""Evaluation candidates: milliseconds per user to draw N negatives as the catalog grows (10K to 10M items).

    python benchmarks/candidate_speed.py                    # N = 10,000, 256 users per call, uniform and popularity

The sampler's cost should depend on N, not on the catalog: uniform draws walk a keyed permutation, popularity draws
are successive weighted draws (Zipf-like weights here, exponent 1), neither touches every item.
"""

import argparse
import time

import torch

from common import machine_line, markdown_table, write_results
from recbole_srt.evaluation.candidates import CandidateSampler


def per_user_ms(sampler, users, positives, repeats):
    sampler("valid", users[:8], positives[:8])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sampler("valid", users, positives)
        times.append(time.perf_counter() - start)
    return min(times) / len(users) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[12_101, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--n_neg", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    records = []
    for n_items in args.sizes:
        users = torch.arange(args.users, device=args.device)
        positives = torch.randint(1, n_items, (args.users,), device=args.device)
        zipf = 1.0 / torch.arange(1, n_items + 1, dtype=torch.float64)
        zipf[0] = 0.0
        record = {"n_items": n_items, "n_neg": args.n_neg}
        for distribution in ("uniform", "popularity"):
            sampler = CandidateSampler(n_items, args.n_neg, seed=1, distribution=distribution,
                                       weights=zipf if distribution == "popularity" else None)
            record[f"{distribution}_ms_per_user"] = per_user_ms(sampler, users, positives, args.repeats)
        records.append(record)
        print(record, flush=True)
    write_results(f"candidate_speed_{args.device}", {"settings": vars(args), "results": records}, table)


def table(payload):
    settings = payload["settings"]
    rows = [[f"{r['n_items']:,}", f"{r['uniform_ms_per_user']:.3f}", f"{r['popularity_ms_per_user']:.3f}"]
            for r in payload["results"]]
    title = (f"Drawing {settings['n_neg']:,} evaluation negatives per user, {settings['users']} users per call, "
             f"{settings['device']}")
    text = markdown_table(["catalog items", "uniform ms/user", "popularity (Zipf) ms/user"], rows)
    return f"{title}\n\n{text}\n\n{machine_line(payload['machine'])}\n"


if __name__ == "__main__":
    main()
