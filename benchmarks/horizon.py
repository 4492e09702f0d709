"""Multi-step evaluation (`eval_horizon`): SASRec-CE, BERT4Rec and SRT-1K, trained as in the side by side, then
ranked over each user's last k items, teacher-forced and autoregressive, against the side by side's 10,000 sampled
negatives per step.

    python benchmarks/horizon.py --dataset ml-100k                          # about 15 minutes on 2 CPU cores
    python benchmarks/horizon.py --dataset Amazon_Beauty --config_files data/Amazon_Beauty/Amazon_Beauty.yaml \\
        --time_limit 600

Per model: NDCG@5 and HIT@5 at every step of both protocols, the horizon metrics (the share of the k true items among
the k generated ones; among step 1's top-5 list), and the cost of the horizon evaluation against one one-step pass
over the same users (the validation pass). Writes results/horizon_<dataset>_<device>.json and a PNG of the curves.
"""

import argparse
import json
import os
import time

from common import RESULTS_DIR, machine_line, markdown_table, prepare, trainer_for, write_results
from recbole_srt import figure_provenance
from side_by_side import MODELS, PRESETS, PROTOCOL, TimeLimitReached

DEFAULT_MODELS = ["SASRec-CE", "BERT4Rec", "SRT-1K"]


def run_model(label, settings, k, time_limit):
    model_name, extra = MODELS[label]
    config, model, train, valid, test = prepare(model_name, settings["dataset"], {**settings, **extra,
                                                                                  "eval_horizon": k})
    trainer = trainer_for(config, model, train)
    started, stopped = time.perf_counter(), "early stopping or max epochs"

    def after_epoch(epoch, score):
        if time_limit is not None and time.perf_counter() - started > time_limit:
            raise TimeLimitReached

    try:
        trainer.fit(train, valid, saved=True, verbose=False, callback_fn=after_epoch)
    except TimeLimitReached:
        stopped = f"time limit ({time_limit} s)"
    train_s = time.perf_counter() - started
    start = time.perf_counter()
    one_step = trainer.evaluate(valid, load_best_model=True)
    one_step_s = time.perf_counter() - start
    start = time.perf_counter()
    horizon = trainer.evaluate(test, load_best_model=False)
    horizon_s = time.perf_counter() - start
    return {"label": label, "model": model_name, "k": k, "users": len(valid._dataset), "stopped_by": stopped,
            "train_s": round(train_s, 1), "valid_ndcg@5": one_step["ndcg@5"], "one_step_eval_s": round(one_step_s, 2),
            "horizon_eval_s": round(horizon_s, 2), "test": dict(horizon)}


def table(payload):
    k = payload["k"]
    rows = []
    for run in payload["runs"]:
        test = run["test"]
        for protocol, suffix in (("teacher-forced", "step"), ("autoregressive", "gen_step")):
            rows.append([run["label"], protocol, *[f"{test[f'ndcg@5@{suffix}{j}']:.4f}" for j in range(1, k + 1)],
                         f"{test['horizon_found@generated']:.3f}" if protocol == "autoregressive" else
                         f"{test['horizon_found@5@step1_list']:.3f}",
                         f"{run['horizon_eval_s'] / run['one_step_eval_s']:.1f}x"])
    text = markdown_table(["model", "protocol", *[f"NDCG@5 step {j}" for j in range(1, k + 1)],
                           "true items found (generated / step-1 top-5)", "cost vs one step"], rows)
    notes = [f"{payload['dataset']}, {payload['users']} users, k = {k}, sampled10000 per step (the same candidates "
             "for every model). Teacher-forced step j: the true history before the j-th held-out item; autoregressive "
             "step j: the history before the first, then the model's own top-1 items. Found: the share of the k "
             "held-out items among the k generated ones (autoregressive row) or among step 1's top-5 list "
             "(teacher-forced row). Cost: the horizon evaluation's wall time over one one-step pass over the same "
             "users."]
    notes += [f"{run['label']}: trained {run['train_s']:.0f} s ({run['stopped_by']}), valid NDCG@5 "
              f"{run['valid_ndcg@5']:.4f}; evaluation {run['one_step_eval_s']:.1f} s one step, "
              f"{run['horizon_eval_s']:.1f} s over the horizon" for run in payload["runs"]]
    return text + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n\n" + machine_line(payload["machine"]) + "\n"


def figure(results_path):
    """The NDCG@5 by step of a results file, beside it (`<name>.png`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(results_path) as f:
        payload = json.load(f)
    k = payload["k"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for index, run in enumerate(payload["runs"]):
        color = f"C{index}"
        for suffix, style, name in (("step", "-o", "teacher-forced"), ("gen_step", "--s", "autoregressive")):
            ax.plot(range(1, k + 1), [run["test"][f"ndcg@5@{suffix}{j}"] for j in range(1, k + 1)], style,
                    color=color, label=f"{run['label']}, {name}")
    ax.set_xticks(range(1, k + 1))
    ax.set_xlabel("step (held-out item)")
    ax.set_ylabel("test NDCG@5 (sampled10000)")
    ax.set_title(f"{payload['dataset']}: NDCG@5 over a horizon of {k}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figure_provenance.save(fig, f"{os.path.splitext(results_path)[0]}.png", [results_path], dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--config_files", nargs="*", default=[])
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--time_limit", type=float, default=None, help="seconds of training per model")
    args = parser.parse_args()
    settings = {**PROTOCOL, **PRESETS["cpu"], "dataset": args.dataset}
    for path in args.config_files:
        import yaml

        with open(path) as f:
            settings.update(yaml.safe_load(f))
    if args.data_path:
        settings["data_path"] = args.data_path
    runs = []
    for label in args.models:
        runs.append(run_model(label, settings, args.k, args.time_limit))
        print(f"{label}: {runs[-1]['test']}", flush=True)
    name = f"horizon_{args.dataset}_cpu"
    payload = {"dataset": args.dataset, "k": args.k, "users": runs[0]["users"], "settings": settings, "runs": runs}
    write_results(name, payload, table)
    figure(os.path.join(RESULTS_DIR, f"{name}.json"))


if __name__ == "__main__":
    main()
