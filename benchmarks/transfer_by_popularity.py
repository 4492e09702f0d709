"""Where a pre-trained model's fine-tuning differs from training from scratch on the target: test NDCG@5 and HIT@5
by how often the test item occurs in the target's training split. Text lets a model score an item its target saw
rarely or never; this says whether pre-training changes the ranking there, and what share of the test users
that is.

    python benchmarks/transfer_by_popularity.py --name beauty_hidden_128 \\
        --runs "from scratch=saved/SRT-A.pth" "fine-tuned=saved/SRT-B.pth" [--edges 1 5 20 100]

Each checkpoint's test split is evaluated as its run evaluated it (the same sampled candidates and ties), so the
runs must share the dataset and seed: every user's test item and candidates are then the same. The first run is
the reference of the last column. Writes results/transfer_by_popularity_<name>.json.
"""

import argparse

import torch

from common import labelled_checkpoint, machine_line, markdown_table, trainer_for, write_results
from recbole_srt.data.store_dataset import training_item_counts
from recbole_srt.evaluation.ranking import rank_metrics
from recbole_srt.quick_start import load_data_and_model

DEFAULT_EDGES = (1, 5, 20, 100)
K = 5


def bucket_names(edges):
    """Interaction-count ranges [0, e1), [e1, e2), ..., [e_last, inf) by name: "0", "1-4", ..., "100+"."""
    bounds = [0, *edges]
    names = [str(low) if high - low == 1 else f"{low}-{high - 1}" for low, high in zip(bounds, bounds[1:])]
    return names + [f"{bounds[-1]}+"]


def by_bucket(train_counts, ranks, edges, k=K):
    """Per bucket of the test item's training count: users, NDCG@k, HIT@k and the median rank (1-based) of the
    test item among its candidates, which tells a ranking near the top from one at random when both miss the top k."""
    bucket = torch.bucketize(train_counts, torch.tensor(edges, dtype=train_counts.dtype), right=True)
    values = rank_metrics(ranks, [k], ["ndcg", "hit"])
    ndcg, hit = values[f"ndcg@{k}"], values[f"hit@{k}"]
    rows = []
    for index, name in enumerate(bucket_names(edges)):
        members = bucket == index
        users = int(members.sum())
        rows.append({"bucket": name, "users": users,
                     "ndcg": ndcg[members].mean().item() if users else None,
                     "hit": hit[members].mean().item() if users else None,
                     "median_rank": ranks[members].median().item() + 1 if users else None})
    rows.append({"bucket": "all", "users": len(ranks), "ndcg": ndcg.mean().item(), "hit": hit.mean().item(),
                 "median_rank": ranks.median().item() + 1})
    return rows


def evaluate(checkpoint):
    """((dataset name, seed, negatives per test item), the test items, their training counts, their ranks) of a
    checkpoint's run."""
    config, model, _, train, _, test = load_data_and_model(checkpoint)
    trainer = trainer_for(config, model, train)
    positives, ranks = trainer.sampled_positive_ranks(test)
    counts = training_item_counts(train._dataset, config["ITEM_ID_FIELD"]).to(positives.device)
    protocol = (config["dataset"], config["seed"], config["sampled_eval"]["test"])
    return protocol, positives.cpu(), counts[positives].cpu(), ranks.cpu()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="results/transfer_by_popularity_<name>.json")
    parser.add_argument("--runs", nargs="+", required=True, type=labelled_checkpoint,
                        help="LABEL=CHECKPOINT, reference first")
    parser.add_argument("--edges", nargs="+", type=int, default=list(DEFAULT_EDGES),
                        help="bucket edges in training interactions (increasing, above 0)")
    args = parser.parse_args()
    if args.edges != sorted(set(args.edges)) or args.edges[0] < 1:
        raise SystemExit(f"--edges: expected increasing counts above 0, got {args.edges}")
    runs, reference = [], None
    for label, checkpoint in args.runs:
        protocol, positives, counts, ranks = evaluate(checkpoint)
        if reference is None:
            reference = (label, protocol, positives)
        elif protocol != reference[1] or not torch.equal(positives, reference[2]):
            raise SystemExit(f"--runs {label}: {checkpoint} ran on (dataset, seed, test negatives) {protocol}, "
                             f"{reference[0]} on {reference[1]}: their test users and candidates differ")
        runs.append({"label": label, "checkpoint": checkpoint, "buckets": by_bucket(counts, ranks, args.edges)})
        print(label, runs[-1]["buckets"][-1], flush=True)
    write_results(f"transfer_by_popularity_{args.name}",
                  {"dataset": reference[1][0], "seed": reference[1][1], "negatives": reference[1][2],
                   "edges": args.edges, "runs": runs}, table)


def table(payload):
    runs = payload["runs"]
    header = ["test item's training interactions", "test users",
              *(f"{run['label']} NDCG@{K}" for run in runs), f"{runs[-1]['label']} / {runs[0]['label']}",
              *(f"{run['label']} median rank" for run in runs)]
    rows = []
    for index, bucket in enumerate(runs[0]["buckets"]):
        ndcgs = [run["buckets"][index]["ndcg"] for run in runs]
        ratio = "-" if not ndcgs[0] or ndcgs[-1] is None else f"{ndcgs[-1] / ndcgs[0]:.2f}x"
        medians = [run["buckets"][index]["median_rank"] for run in runs]
        rows.append([bucket["bucket"], f"{bucket['users']:,} ({bucket['users'] / runs[0]['buckets'][-1]['users']:.0%})",
                     *("-" if n is None else f"{n:.4f}" for n in ndcgs), ratio,
                     *("-" if m is None else f"{m:,}" for m in medians)])
    checkpoints = ", ".join(f"{r['label']} `{r['checkpoint']}`" for r in runs)
    title = (f"{payload['dataset']}, test NDCG@{K} against {payload['negatives']:,} sampled negatives by the test "
             f"item's interactions in the training split (seed {payload['seed']}; checkpoints: {checkpoints})")
    return f"{title}\n\n{markdown_table(header, rows)}\n\n{machine_line(payload['machine'])}\n"


if __name__ == "__main__":
    main()
