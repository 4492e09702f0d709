"""Evaluation candidates: milliseconds per user to draw N negatives as the catalog grows (10K to 10M items).

    python benchmarks/candidate_speed.py                    # N = 10,000, 256 users per call, uniform and popularity

The sampler's cost should depend on N, not on the catalog: uniform draws walk a keyed permutation, popularity draws
are successive weighted draws (Zipf-like weights here, exponent 1), neither touches every item.
"""

import argparse
import time

import torch

from common import markdown_table, write_results
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
    rows, records = [], []
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
        rows.append([f"{n_items:,}", f"{record['uniform_ms_per_user']:.3f}", f"{record['popularity_ms_per_user']:.3f}"])
        print(rows[-1], flush=True)
    table = markdown_table(["catalog items", "uniform ms/user", "popularity (Zipf) ms/user"], rows)
    title = f"Drawing {args.n_neg:,} evaluation negatives per user, {args.users} users per call, {args.device}"
    write_results(f"candidate_speed_{args.device}", {"settings": vars(args), "results": records}, f"{title}\n\n{table}")


if __name__ == "__main__":
    main()
