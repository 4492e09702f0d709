"""Side by side (paper Table 1): SASRec, SASRec-CE, BERT4Rec and SRT-{10,100,300,1K} under one protocol.

    python benchmarks/side_by_side.py --preset cpu                      # ml-100k, about 25 minutes on 2 CPU cores
    python benchmarks/side_by_side.py --preset cpu --models SASRec-CE SRT-100 --seeds 1 2 3   # seed spread
    python benchmarks/side_by_side.py --preset full --dataset Amazon_Beauty --data_path DIR \\
        --config_files DIR/Amazon_Beauty/Amazon_Beauty.yaml             # paper hyper-parameters, for a GPU

Protocol: leave-one-out (last item test, second-to-last valid), the held-out item ranked against 10,000 sampled
negatives that are identical for every model (seed, phase, user), same seed, same trainer (Adam, one-cycle LR,
gradient clipping 1.0, weight decay 1e-5), early stopping on valid NDCG@5. Writes a markdown table, JSON and a PNG.
"""

import argparse
import json
import os
import time

import yaml

from common import RESULTS_DIR, machine_line, markdown_table, prepare, trainer_for, write_results
from recbole_srt import figure_provenance
from run_state import Progress

PROTOCOL = {
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO",
                  "mode": {"valid": "sampled10000", "test": "sampled10000"}},
    "metrics": ["NDCG", "Hit"],
    "topk": [5, 10],
    "valid_metric": "NDCG@5",
    "lr_schedule": "one_cycle",
    "max_grad_norm": 1.0,
    "weight_decay": 1e-5,
    "learner": "adam",
    "seed": 2020,
    # the same candidates for every seed
    "sampled_eval_args": {"distribution": "uniform", "replacement": False, "seed": 2020},
    "show_progress": False,
    "state": "WARNING",
}
PRESETS = {
    "cpu": {"dataset": "ml-100k", "epochs": 10, "stopping_step": 10, "learning_rate": 0.002, "train_batch_size": 512,
            "eval_batch_size": 1024, "MAX_ITEM_LIST_LENGTH": 20, "hidden_size": 64, "inner_size": 128, "n_layers": 2,
            "n_heads": 2, "gpu_id": ""},
    "full": {"dataset": "Amazon_Beauty", "epochs": 50, "stopping_step": 10, "learning_rate": 0.0001,
             "train_batch_size": 256, "eval_batch_size": 512, "MAX_ITEM_LIST_LENGTH": 50, "hidden_size": 64,
             "inner_size": 256, "n_layers": 2, "n_heads": 2, "gpu_id": "0"},
}
MODELS = {
    "SASRec (BPR, 1 neg)": ("SASRec", {"loss_type": "BPR",
                                       "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}),
    "SASRec-CE": ("SASRec", {"loss_type": "CE", "train_neg_sample_args": None}),
    "BERT4Rec": ("BERT4Rec", {}),
    "SRT-10": ("SRT", {"train_neg_count": 10}),
    "SRT-100": ("SRT", {"train_neg_count": 100}),
    "SRT-300": ("SRT", {"train_neg_count": 300}),
    "SRT-1K": ("SRT", {"train_neg_count": 1000}),
}


def parameter_counts(model):
    """(total, non-embedding): non-embedding leaves out every embedding table (item, token, position)."""
    import torch

    total = sum(p.numel() for p in model.parameters())
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    return total, total - embedding


class TimeLimitReached(Exception):
    """Raised between epochs once a run's time or epoch limit has passed; the best checkpoint so far is then tested."""


def run_one(label, model_name, extra, settings, seed, time_limit=None, epoch_limit=None, run_state=None):
    """Train with early stopping (stopping at the first epoch end past `time_limit` seconds, or after
    `epoch_limit` epochs of the whole schedule, if given), then test the best checkpoint. With `run_state` (a
    `run_state.RunState`) the run saves its progress after every epoch and, if it holds some, goes on from it."""
    started = time.perf_counter()
    config, model, train, valid, test = prepare(model_name, settings["dataset"], {**settings, **extra, "seed": seed})
    trainer = trainer_for(config, model, train)
    saved = run_state.load() if run_state is not None else None
    progress = Progress.from_dict(saved) if saved else Progress()
    if saved:
        trainer.resume_checkpoint(saved["last_checkpoint"])
        run_state.check_resumed(saved, trainer.start_epoch - 1)
    train_epoch = trainer._train_epoch

    def timed_train_epoch(*args, **kwargs):
        start = time.perf_counter()
        loss = train_epoch(*args, **kwargs)
        progress.epoch_trained(time.perf_counter() - start)
        return loss

    def after_epoch(epoch, score):
        progress.validated(score)
        if run_state is not None:
            run_state.save(trainer.last_checkpoint_file, epoch, progress)
        if time_limit is not None and time.perf_counter() - started > time_limit:
            raise TimeLimitReached(f"time limit ({time_limit} s)")
        if epoch_limit is not None and progress.epochs_run >= epoch_limit:
            raise TimeLimitReached(f"epoch limit ({epoch_limit} of the schedule's {config['epochs']})")

    trainer._train_epoch = timed_train_epoch
    stopped = "early stopping or max epochs"
    try:
        trainer.fit(train, valid, saved=True, verbose=False, callback_fn=after_epoch)
    except TimeLimitReached as limit:
        stopped = str(limit)
    test_result = trainer.evaluate(test, load_best_model=True)
    total, non_embedding = parameter_counts(model)
    return {
        "label": label,
        "seed": seed,
        "model": model_name,
        "overrides": extra,
        "test": dict(test_result),
        "best_valid_ndcg@5": progress.best_valid,
        "epochs_run": progress.epochs_run,
        "stopped_by": stopped,
        "epochs_to_best": progress.epochs_to_best,
        "seconds_per_epoch": progress.train_seconds / progress.epochs_run,
        "params_total": total,
        "params_non_embedding": non_embedding,
    }


def summarize(records):
    """One row per model: mean and standard deviation over seeds (same candidates for every model and seed)."""
    import statistics

    rows = []
    for label in dict.fromkeys(r["label"] for r in records):
        runs = [r for r in records if r["label"] == label]
        row = {"label": label, "seeds": [r["seed"] for r in runs], "params_total": runs[0]["params_total"],
               "params_non_embedding": runs[0]["params_non_embedding"],
               "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in runs),
               "epochs_to_best": [r["epochs_to_best"] for r in runs], "epochs_run": runs[0]["epochs_run"]}
        for metric in ("ndcg@5", "hit@5"):
            values = [r["test"][metric] for r in runs]
            row[metric] = statistics.mean(values)
            row[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def figure(results_path):
    """The bar chart of a results file, beside it (`<name>.png`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(results_path) as f:
        payload = json.load(f)
    summary = payload["summary"]
    labels = [r["label"] for r in summary]
    fig, ax = plt.subplots(figsize=(9, 4))
    x = range(len(labels))
    for offset, metric, name in ((-0.2, "ndcg@5", "NDCG@5"), (0.2, "hit@5", "HIT@5")):
        ax.bar([i + offset for i in x], [r[metric] for r in summary], width=0.4, label=name,
               yerr=[r[f"{metric}_std"] for r in summary], capsize=3)
    ax.set_xticks(list(x), labels, rotation=20, ha="right")
    ax.set_title(title(payload))
    ax.legend()
    fig.tight_layout()
    figure_provenance.save(fig, f"{os.path.splitext(results_path)[0]}.png", [results_path], dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--dataset", default=None, help="overrides the preset's dataset")
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--config_files", nargs="*", default=[], help="dataset yaml files (load_col, text_fields)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2020], help="one run per model and seed")
    parser.add_argument("--name", default=None,
                        help="results/<name>.{json,png} (default: side_by_side_<preset>_<dataset>...)")
    args = parser.parse_args()

    settings = {**PROTOCOL, **PRESETS[args.preset]}
    for path in args.config_files:
        with open(path) as f:
            settings.update(yaml.safe_load(f))
    for key in ("dataset", "data_path", "epochs"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    records = []
    for label in args.models:
        model_name, extra = MODELS[label]
        for seed in args.seeds:
            record = run_one(label, model_name, extra, settings, seed)
            records.append(record)
            print(f"{label} seed {seed}: {record['test']} {record['seconds_per_epoch']:.1f}s/epoch", flush=True)

    summary = summarize(records)
    spread = len(args.seeds) > 1
    default_name = f"side_by_side_{args.preset}_{settings['dataset']}" + (f"_{len(args.seeds)}seeds" if spread else "")
    name = args.name or default_name
    payload = {"preset": args.preset, "settings": settings, "runs": records, "summary": summary}
    write_results(name, payload, table)
    figure(os.path.join(RESULTS_DIR, f"{name}.json"))


def title(payload):
    seeds = payload["summary"][0]["seeds"]
    spread = f", seeds {' '.join(map(str, seeds))} (mean ± std)" if len(seeds) > 1 else f", seed {seeds[0]}"
    preset = f", preset {payload['preset']}" if payload.get("preset") else ""
    return f"{payload['settings']['dataset']}{preset}, test vs 10,000 sampled negatives{spread}"


def table(payload):
    summary = payload["summary"]
    spread = len(summary[0]["seeds"]) > 1

    def cell(row, metric):
        return f"{row[metric]:.4f} ± {row[metric + '_std']:.4f}" if spread else f"{row[metric]:.4f}"

    rows = [[r["label"], cell(r, "ndcg@5"), cell(r, "hit@5"), f"{r['params_total']:,}",
             f"{r['params_non_embedding']:,}", f"{r['seconds_per_epoch']:.1f}",
             f"{','.join(map(str, r['epochs_to_best']))}/{r['epochs_run']}"]
            for r in summary]
    header = ["model", "NDCG@5", "HIT@5", "params", "non-emb. params", "s/epoch", "best epoch/run"]
    return f"{title(payload)}\n\n{markdown_table(header, rows)}\n\n{machine_line(payload['machine'])}\n"

if __name__ == "__main__":
    main()
