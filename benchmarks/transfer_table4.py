"""Does pre-training help? This repository's Table 4: pre-train SRT on Amazon Games + Office, then on Beauty compare
SASRec-CE and SRT-1K from scratch, SRT-1K zero-shot, fine-tuned `full`, and fine-tuned `progressive` + EWC, under
one protocol (sampled10000 test NDCG@5 / HIT@5, the same candidates).

    python benchmarks/transfer_table4.py run [--budget cpu|paper] [--seeds 1 2]     # resumable: done runs skipped
    python benchmarks/transfer_table4.py run --variant within_source_negatives --rows zero_shot finetune_full
    python benchmarks/transfer_table4.py table

A variant changes the pre-training only (part 1 of issue 22: one candidate cause at a time); its pre-trained,
zero-shot and fine-tuned rows carry its name, the from-scratch rows are shared by all variants.

Datasets are converted from ../shared/datasets/raw into --data_dir first (Games + Office combined into one
pre-training dataset with one tokenizer; Beauty with its own for the from-scratch runs; the fine-tuned runs use
the checkpoint's, as `pretrained_model` requires). Every run appends one JSON line to --results.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import yaml

from common import RESULTS_DIR, machine, markdown_table
from recbole_srt.scaling.records import append_record, read_records
from recbole_srt.scaling.sweep import settings_hash

# The paper's Table 4 (Beauty): its fine-tuned model is progressive + EWC after pre-training on other categories.
PAPER = {"SRT-1K from scratch": (0.0360, 0.0611), "SRT-1K fine-tuned (progressive + EWC 100)": (0.0405, 0.0645)}
# cpu: sized for a 2-core CPU (measured: about 2 hours for one seed, 2026-11-23); paper: §4.2/§4.5 settings for a GPU.
BUDGETS = {
    "cpu": {"common": {"MAX_ITEM_LIST_LENGTH": 20, "train_batch_size": 512, "learning_rate": 0.002,
                       "eval_batch_size": 4096, "stopping_step": 3},
            "pretrain_epochs": 6, "scratch_epochs": 20, "finetune_epochs": 12,
            "progressive": {"finetune_epochs_per_layer": 2, "finetune_final_epochs": 8}},
    "paper": {"common": {"MAX_ITEM_LIST_LENGTH": 50, "train_batch_size": 128, "learning_rate": 0.0001,
                         "eval_batch_size": 4096, "precision": "bf16", "gpu_id": "0"},
              "pretrain_epochs": 50, "scratch_epochs": 50, "finetune_epochs": 50,
              "progressive": {"finetune_epochs_per_layer": 10, "finetune_final_epochs": 50}},
}
SRT_1K = {"train_neg_count": 1000}
# Pre-training settings of each variant, against the baseline (negatives from the whole mixed catalog).
VARIANTS = {
    "baseline": {},
    "within_source_negatives": {"neg_sampling_scope": "source"},
}
ROWS = ("zero_shot", "scratch", "finetune_full", "finetune_progressive", "scratch_pretraining_tokenizer", "sasrec")


def convert(raw_dir, data_dir, name, folders):
    yaml_path = os.path.join(data_dir, name, f"{name}.yaml")
    if not os.path.exists(yaml_path):
        inputs = [os.path.join(raw_dir, f) for f in folders]
        subprocess.run([sys.executable, "-m", "dataset_scripts", "sequences", "--input", *inputs, "--name", name,
                        "--output-dir", data_dir], check=True)
    return yaml_path


def run_one(label, model, yaml_path, settings, results, seed, needs_checkpoint=False):
    """One run_recbole in this process; its record (appended), or the existing one (if `needs_checkpoint`, only
    while its checkpoint file still exists)."""
    from recbole_srt import run_recbole

    key = settings_hash({"label": label, "model": model, "dataset": yaml_path, "settings": settings, "seed": seed})
    done = [record for record in read_records(results) if record["hash"] == key]
    if done and (not needs_checkpoint or os.path.exists(done[-1]["checkpoint"])):
        return done[-1]
    if done:
        print(f"{label}, seed {seed}: recorded, but its checkpoint {done[-1]['checkpoint']} is gone (a fresh "
              f"checkout?); training it again", flush=True)
    start = time.perf_counter()
    result = run_recbole(model, config_file_list=[yaml_path],
                         config_dict={**settings, "seed": seed, "show_progress": False, "state": "INFO"})
    record = {"hash": key, "label": label, "model": model, "dataset": yaml_path, "settings": settings,
              "seed": seed, "test_ndcg@5": result["test_result"]["ndcg@5"],
              "test_hit@5": result["test_result"]["hit@5"],
              "best_valid_ndcg@5": (result["best_valid_result"] or {}).get("ndcg@5"),
              "checkpoint": result["saved_model_file"], "compute": result["compute"],
              "wall_s": time.perf_counter() - start, "machine": machine()}
    append_record(results, record)
    print(json.dumps({k: record[k] for k in ("label", "seed", "test_ndcg@5", "test_hit@5", "wall_s")}), flush=True)
    return record


def run(args):
    budget = BUDGETS[args.budget]
    common = budget["common"]
    pretrain_yaml = convert(args.raw_dir, args.data_dir, "pretrain_games_office",
                            ["amazon-games-2018", "amazon-office-2014"])
    beauty_yaml = convert(args.raw_dir, args.data_dir, "Amazon_Beauty", ["amazon-beauty-2014"])
    tag = "" if args.variant == "baseline" else f" [{args.variant}]"
    for seed in args.seeds:
        pretrained = run_one(f"SRT-1K pre-trained (Games + Office){tag}", "SRT", pretrain_yaml,
                             {**common, **SRT_1K, **VARIANTS[args.variant], "epochs": budget["pretrain_epochs"]},
                             args.results, seed, needs_checkpoint=True)
        # Cheapest first, so that an interrupted session has committed the most rows.
        transfer = {**common, **SRT_1K, "pretrained_model": pretrained["checkpoint"]}
        rows = {
            "zero_shot": (f"SRT-1K zero-shot{tag}", "SRT", {**transfer, "epochs": 0}),
            "scratch": ("SRT-1K from scratch", "SRT", {**common, **SRT_1K, "epochs": budget["scratch_epochs"]}),
            "finetune_full": (f"SRT-1K fine-tuned (full){tag}", "SRT", {**transfer, "epochs": budget["finetune_epochs"]}),
            "finetune_progressive": (f"SRT-1K fine-tuned (progressive + EWC 100){tag}", "SRT",
                                     {**transfer, **budget["progressive"], "finetune_strategy": "progressive",
                                      "ewc_lambda": 100}),
            # Control for the fine-tuned rows: their tokenizer and number of epochs, but random initial weights.
            "scratch_pretraining_tokenizer": (
                "SRT-1K from scratch (pre-training's tokenizer and fine-tuning epochs)", "SRT",
                {**common, **SRT_1K, "epochs": budget["finetune_epochs"], "tokenizer_model": tokenizer_of(pretrain_yaml)}),
            "sasrec": ("SASRec-CE from scratch", "SASRec", {**common, "loss_type": "CE", "epochs": budget["scratch_epochs"]}),
        }
        for row in args.rows:
            label, model, settings = rows[row]
            run_one(label, model, beauty_yaml, settings, args.results, seed)


def tokenizer_of(dataset_yaml):
    with open(dataset_yaml) as f:
        return yaml.safe_load(f)["tokenizer_model"]


def table(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    latest = {(r["label"], r["seed"]): r for r in read_records(args.results) if "pre-trained" not in r["label"]}
    records = list(latest.values())
    labels = list(dict.fromkeys(r["label"] for r in records))
    rows, means = [], []
    for label in labels:
        runs = [r for r in records if r["label"] == label]
        ndcg, hit = np.array([r["test_ndcg@5"] for r in runs]), np.array([r["test_hit@5"] for r in runs])
        paper = PAPER.get(label)
        spread = (lambda v: f"{v.mean():.4f}") if len(runs) == 1 else (lambda v: f"{v.mean():.4f} ± {v.std():.4f}")
        rows.append([label, len(runs), spread(ndcg), spread(hit),
                     f"{paper[0]:.4f} / {paper[1]:.4f}" if paper else "-"])
        means.append(ndcg.mean())
    text = markdown_table(["Beauty, sampled10000 test", "seeds", "NDCG@5", "HIT@5", "paper NDCG@5 / HIT@5"], rows)
    stem = os.path.splitext(args.results)[0]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.barh(labels, means, color="tab:blue")
    ax.set_xlabel("test NDCG@5 (Beauty, sampled10000)")
    fig.tight_layout()
    fig.savefig(f"{stem}.png", dpi=110)
    with open(f"{stem}.md", "w") as f:
        f.write(f"{text}\n\nMachine: {json.dumps(records[0]['machine']) if records else '-'}\n")
    print(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--variant", choices=list(VARIANTS), default="baseline", help="pre-training variant")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS), help="rows to run (default all)")
    parser.add_argument("--raw_dir", default=os.path.join(os.path.dirname(RESULTS_DIR), "..", "..", "shared",
                                                          "datasets", "raw"))
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--results", default=None, help="JSONL (default results/transfer_table4_<budget>.jsonl)")
    args = parser.parse_args()
    args.results = args.results or os.path.join(RESULTS_DIR, f"transfer_table4_{args.budget}.jsonl")
    sys.argv = sys.argv[:1]
    if args.command == "run":
        run(args)
    else:
        table(args)


if __name__ == "__main__":
    main()
