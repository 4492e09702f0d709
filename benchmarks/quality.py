"""Ranking quality trained to convergence, and SRT ablations, over several datasets (issue: SRT vs SASRec-CE).

    python benchmarks/quality.py run --datasets ml-100k Amazon_Office --data_path data \\
        --models SASRec-CE SRT-100 SRT-1K --seeds 1 2 --results benchmarks/results/quality_cpu.jsonl
    python benchmarks/quality.py run --datasets Amazon_Office --data_path data --models SRT-1K \\
        --variants mean_pooling sum_pooling --results benchmarks/results/ablations_cpu.jsonl
    python benchmarks/quality.py table --results benchmarks/results/quality_*.jsonl

`run` trains every (dataset, model, variant, seed) of the grid with early stopping on validation NDCG@5 (up to
`--max_epochs`, patience `--stopping_step`), tests the best checkpoint against 10,000 sampled negatives that are the
same for every run, and appends one JSON line per run as soon as it finishes: an interrupted sweep resumes where it
stopped (runs already in the file are skipped, a run killed mid-way goes on from its last validated epoch), and
`--extend` continues the runs a `--time_limit` or `--epoch_limit` stopped, under the new call's limits:

    python benchmarks/quality.py run --datasets ml-1m --models SRT-1K --variants history_match --seeds 1 \\
        --epoch_limit 12 --extend --results benchmarks/results/quality_cpu.jsonl

`table` prints the markdown summary (mean ± std over seeds);
`python -m benchmarks.report` writes it into the documentation. Datasets other than RecBole's shipped ml-100k are
read from `--data_path/NAME/NAME.yaml`, as written by `python -m dataset_scripts`.
"""

import argparse
import json
import math
import os
import statistics

import yaml

from common import machine, markdown_table
from run_state import RunState
from side_by_side import MODELS, PROTOCOL, run_one

# The budget every model gets (SASRec-CE and SRT alike; dropout and other model settings are each model's defaults).
# 'fast' converges within minutes per run on a 2-core CPU for the small datasets; 'paper' is paper §4.2's.
BUDGETS = {
    "fast": {"learning_rate": 0.002, "train_batch_size": 512, "eval_batch_size": 1024, "MAX_ITEM_LIST_LENGTH": 20,
             "hidden_size": 64, "inner_size": 128, "n_layers": 2, "n_heads": 2},
    "paper": {"learning_rate": 0.0001, "train_batch_size": 256, "eval_batch_size": 1024, "MAX_ITEM_LIST_LENGTH": 50,
              "hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2},
}
ML100K_TEXT = {
    "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "movie_title", "class"]},
    "text_fields": ["movie_title", "class"],
}
# Ablations: one change each against the current defaults (properties/model/SRT.yaml). Those that change only the
# training protocol (TRAINING_KEYS) apply to every model, so SASRec-CE can be measured under them too; the rest are
# SRT's own.
TRAINING_KEYS = {"learning_rate", "lr_schedule", "epochs"}
VARIANTS = {
    "default": {},
    "mean_pooling": {"text_pooling": "mean"},
    "sum_pooling": {"text_pooling": "sum"},
    "max_pooling": {"text_pooling": "max"},
    "shared_token_table": {"per_field_token_tables": False},
    "per_field_token_tables": {"per_field_token_tables": True},
    "word_normalization": {"text_normalization": "words"},
    "plain_normalization": {"text_normalization": "plain"},
    "dropout_0.5": {"hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5},
    "dropout_0.2": {"hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2},
    "per_sequence_negatives": {"shared_negatives": False},
    "shared_negatives": {"shared_negatives": True},
    "token_embedding_128": {"token_embedding_size": 128},
    "lr_0.0005": {"learning_rate": 0.0005},
    "lr_0.005": {"learning_rate": 0.005},
    "constant_lr": {"lr_schedule": "constant"},
    "schedule_25_epochs": {"epochs": 25},
    "temperature_0.5": {"temperature": 0.5},
    "popularity_alpha_0.5": {"popularity_alpha": 0.5},
    "popularity_smoothing_10": {"popularity_smoothing": 10.0},
    "uniform_negatives": {"neg_sampling_distribution": "uniform"},
    "no_logq": {"logq_correction": False},
    # More negatives at (almost) the same cost (issue 24): four times as many drawn, or the batch's positives added.
    "negatives_4k": {"train_neg_count": 4000},
    "in_batch_negatives": {"in_batch_negatives": True},
    # Item-specific capacity of a fixed size (issue 24): a hashed item-id table summed with the text representation.
    "hashed_ids_2k": {"item_id_hash_buckets": 2048},
    "hashed_ids_64k": {"item_id_hash_buckets": 65536},
    # Scores from the candidate's text overlap with, and identity to, the recent history items (issue 22).
    "history_match": {"lexical_match_dim": 256, "repeat_match": True},
    # Each of its two parts alone.
    "lexical_match": {"lexical_match_dim": 256},
    "repeat_match": {"repeat_match": True},
}


def variant_overrides(variant):
    """'a+b' combines variants a and b (later ones win)."""
    overrides = {}
    for name in variant.split("+"):
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant '{name}' in '{variant}'; known: {', '.join(VARIANTS)}")
        overrides.update(VARIANTS[name])
    return overrides


def applies_to_every_model(variant):
    return set(variant_overrides(variant)) <= TRAINING_KEYS


def dataset_settings(name, data_path):
    if name == "ml-100k":
        return {"dataset": name, **ML100K_TEXT}
    path = os.path.join(data_path, name, f"{name}.yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"dataset '{name}': no {path} (convert it with `python -m dataset_scripts`)")
    with open(path) as f:
        settings = yaml.safe_load(f)
    settings["data_path"] = data_path
    return settings


def run_key(record):
    return record["dataset"], record["label"], record["variant"], record["seed"]


def read_results(path):
    """The runs recorded in `path`, one per (dataset, model, variant, seed): a run continued with `--extend` is
    appended again, and its later record replaces the earlier one."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        records = {}
        for line in f:
            if line.strip():
                record = json.loads(line)
                records.pop(run_key(record), None)
                records[run_key(record)] = record
        return list(records.values())


def run(args):
    recorded = {run_key(r): r for r in read_results(args.results)}
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    cannot_extend = []
    for dataset in args.datasets:
        base = {**PROTOCOL, **BUDGETS[args.budget], **dataset_settings(dataset, args.data_path),
                "epochs": args.max_epochs, "stopping_step": args.stopping_step, "gpu_id": args.gpu_id}
        for label in args.models:
            model_name, extra = MODELS[label]
            variants = args.variants if model_name == "SRT" else (
                [v for v in args.variants if applies_to_every_model(v)] or ["default"])
            for variant in variants:
                for seed in args.seeds:
                    key = (dataset, label, variant, seed)
                    state = RunState(args.results, key)
                    if key in recorded:
                        if not (args.extend and stopped_short(recorded[key])):
                            continue
                        if state.load() is None:
                            cannot_extend.append(key)
                            continue
                    overrides = {**extra, **variant_overrides(variant)}
                    record = run_one(label, model_name, overrides, base, seed, time_limit=args.time_limit,
                                     epoch_limit=args.epoch_limit, run_state=state)
                    record.update(dataset=dataset, variant=variant, budget=args.budget, settings=base,
                                  machine=machine())
                    with open(args.results, "a") as f:
                        f.write(json.dumps(record) + "\n")
                    if not stopped_short(record):
                        state.clear()
                    print(f"{dataset} {label} {variant} seed {seed}: ndcg@5 {record['test']['ndcg@5']:.4f} "
                          f"best epoch {record['epochs_to_best']}/{record['epochs_run']} "
                          f"{record['seconds_per_epoch']:.1f}s/epoch", flush=True)
    if cannot_extend:
        print(f"--extend: {len(cannot_extend)} run(s) stopped by a limit have no saved progress on this machine "
              f"and keep their record: {cannot_extend}", flush=True)


def stopped_short(record):
    """Stopped by a time or epoch limit, not by early stopping: not converged."""
    return record["stopped_by"].startswith(("time", "epoch limit"))


def cell(values):
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(records):
    """Mean ± std over seeds per (dataset, model, variant), as markdown."""
    rows = []
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["label"], r["variant"]), []).append(r)
    order = list(MODELS)
    for (dataset, label, variant), runs in sorted(
            groups.items(), key=lambda kv: (kv[0][0], kv[0][2] != "default", kv[0][2], order.index(kv[0][1]))):
        rows.append([dataset, label, variant, len(runs), cell([r["test"]["ndcg@5"] for r in runs]),
                     cell([r["test"]["hit@5"] for r in runs]), cell([r["best_valid_ndcg@5"] for r in runs]),
                     ",".join(f"{r['epochs_to_best']}/{r['epochs_run']}" + ("*" if stopped_short(r)
                                                                             else "") for r in runs),
                     f"{statistics.mean(r['seconds_per_epoch'] for r in runs):.1f}",
                     "/".join(sorted({"GPU" if r["machine"]["device"] != "cpu" else "CPU" for r in runs}))])
    header = ["dataset", "model", "variant", "seeds", "test NDCG@5", "test HIT@5", "valid NDCG@5",
              "best epoch/run", "s/epoch", "device"]
    machines = sorted({json.dumps({k: r["machine"][k] for k in ("cpu", "device", "torch")}) for r in records})
    return (markdown_table(header, rows) + "\n\n`*` stopped by a time or epoch limit, not by early stopping."
            + "\n\nMachines: " + "; ".join(machines) + "\n")


def trained_epochs(record):
    """The epochs a run had: a converged run had all it needed."""
    return record["epochs_run"] if stopped_short(record) else math.inf


def at_one_budget(baseline, runs):
    """Both sides' runs at one budget, and what it is (None: all runs, as they are). Where both sides have converged
    runs, those; else where each side has runs stopped short after the same number of epochs, those at the largest
    such number; else the runs of each side that trained at least as long as the other side's longest."""
    epochs = min(max(trained_epochs(r) for r in side) for side in (baseline, runs))
    short = [{r["epochs_run"] for r in side if stopped_short(r)} for side in (baseline, runs)]
    common = short[0] & short[1]
    if epochs < math.inf and common and len(short[0] | short[1]) > 1:
        epochs = max(common)
        return ([r for r in baseline if r["epochs_run"] == epochs], [r for r in runs if r["epochs_run"] == epochs],
                f"both after {epochs} epochs")
    base, other = ([r for r in side if trained_epochs(r) >= epochs] for side in (baseline, runs))
    if len(base) + len(other) == len(baseline) + len(runs) or epochs < math.inf and common:
        return baseline, runs, None
    return base, other, ("converged runs only" if epochs == math.inf
                         else f"each after {epochs} epochs or more, or converged")


def headline(records):
    """SRT-1K (defaults, and with history match) against SASRec-CE per dataset, same budget: the front page's table."""
    rows = []
    for dataset in sorted({r["dataset"] for r in records}):
        runs = {(label, variant): [r for r in records if r["dataset"] == dataset and r["label"] == label
                                   and r["variant"] == variant]
                for label, variant in (("SASRec-CE", "default"), ("SRT-1K", "default"), ("SRT-1K", "history_match"))}
        baseline, srt, matched = runs.values()
        if not (baseline and srt):
            continue

        def ratio(key):
            base, other, budget = at_one_budget(baseline, runs[key])
            unfinished = any(stopped_short(r) for r in base + other)
            value = (statistics.mean(r["test"]["ndcg@5"] for r in other)
                     / statistics.mean(r["test"]["ndcg@5"] for r in base))
            budget = f" ({budget}: {len(base)} / {len(other)} seeds)" if budget else ""
            return f"{value:.2f}x" + (" *" if unfinished else "") + budget

        with_match = ("SRT-1K", "history_match")
        rows.append([dataset, cell([r["test"]["ndcg@5"] for r in baseline]), cell([r["test"]["ndcg@5"] for r in srt]),
                     ratio(("SRT-1K", "default")),
                     cell([r["test"]["ndcg@5"] for r in matched]) if matched else "not run",
                     ratio(with_match) if matched else "",
                     f"{len(baseline)} / {len(srt)} / {len(matched)}"])
    header = ["dataset", "SASRec-CE test NDCG@5", "SRT-1K test NDCG@5", "SRT-1K / SASRec-CE",
              "SRT-1K + history match", "+ history match / SASRec-CE", "seeds"]
    return markdown_table(header, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="train the grid, appending to --results")
    run_parser.add_argument("--datasets", nargs="+", required=True)
    run_parser.add_argument("--data_path", default="data")
    run_parser.add_argument("--models", nargs="+", default=["SASRec-CE", "SRT-100", "SRT-1K"], choices=list(MODELS))
    run_parser.add_argument("--variants", nargs="+", default=["default"],
                            help=f"variants, 'a+b' combines two; other models than SRT run those that change only "
                                 f"{sorted(TRAINING_KEYS)}, or else once as 'default': "
                                 f"{', '.join(VARIANTS)}")
    run_parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    run_parser.add_argument("--budget", choices=sorted(BUDGETS), default="fast")
    run_parser.add_argument("--gpu_id", default="", help="'' trains on the CPU; '0' on the first GPU")
    run_parser.add_argument("--max_epochs", type=int, default=50)
    run_parser.add_argument("--stopping_step", type=int, default=5)
    run_parser.add_argument("--epoch_limit", type=int, default=None,
                            help="stop after this many epochs of the max_epochs schedule (to compare at equal epochs "
                                 "with runs that a time limit stopped)")
    run_parser.add_argument("--extend", action="store_true",
                            help="go on with the runs a time or epoch limit stopped, from their last epoch (their "
                                 "progress is kept under saved/benchmark_runs/ on the machine that ran them), under "
                                 "this call's limits; the new record replaces the old")
    run_parser.add_argument("--time_limit", type=float, default=None,
                            help="seconds per run: stop at the first epoch end past it and test the best checkpoint")
    run_parser.add_argument("--results", required=True, help="JSONL file, appended to and resumed from")
    table_parser = sub.add_parser("table", help="print --results as markdown (python -m benchmarks.report puts it in "
                                  "the documentation)")
    table_parser.add_argument("--results", nargs="+", required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args)
        return
    records = [r for path in args.results for r in read_results(path)]
    if not records:
        raise SystemExit(f"no results in {' '.join(args.results)}")
    print(table(records))


if __name__ == "__main__":
    main()
