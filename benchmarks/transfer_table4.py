"""Does pre-training help? This repository's Table 4: pre-train SRT on other Amazon categories, then on a target
(Beauty, or Toys) compare SASRec-CE and SRT-1K from scratch, SRT-1K zero-shot (with and without the target's
popularity prior), fine-tuned `full`, and fine-tuned `progressive` + EWC, under one protocol (sampled10000 test
NDCG@5 / HIT@5, the same candidates).

    python benchmarks/transfer_table4.py run [--budget cpu|paper] [--seeds 1 2]     # resumable: done runs skipped
    python benchmarks/transfer_table4.py run --variant within_source_negatives --rows zero_shot finetune_full
    python benchmarks/transfer_table4.py run --seeds 2 --pretrain-seed 1 ...   # seed 2 fine-tuned from seed 1's
    python benchmarks/transfer_table4.py run --rows finetune_full_ewc_scratch_epochs --ewc-lambda 10000 ...
    python benchmarks/transfer_table4.py table     # prints the table, draws the figure beside the JSONL
    python benchmarks/transfer_table4.py run --variant history_match --pretrained pretrained/NAME/NAME.pth \\
        --target-users 0.1 --rows scratch_variant finetune_full_scratch_epochs   # where does pre-training pay?

A variant changes the pre-training only, one thing against the variant it names in `from` (VARIANTS in
transfer_table4_design.py, with the budgets, targets, corpora and rows): negatives within each source, the target's item
text in the tokenizer, no logQ correction, the corpus. Its pre-trained, zero-shot and fine-tuned rows carry its name;
the from-scratch and popularity rows are shared by all variants.

Datasets are converted from ../shared/datasets/raw into --data_dir first (the corpus's categories combined into one
pre-training dataset with one tokenizer; the target with its own for the from-scratch runs; the fine-tuned runs use
the checkpoint's, as `pretrained_model` requires). Every run appends one JSON line to --results; a sweep below starts
from the full target's recorded pre-training of the same settings and seed while its checkpoint exists.

`--target-users F` trains and tests on a seeded sample of a fraction F of the target's users (nested across
fractions, the target's tokenizer), into transfer_table4[_<target>]_data_size_<budget>.jsonl: the smaller the
target's log, the more a pre-trained model should be worth. Its table and figure put each row's fractions side by
side, the full target's runs (from the file without `_data_size`) as 100%. `--pretrained` starts the pre-trained
rows from a checkpoint or release of the variant's pre-training (the shipped one) instead of pre-training again.
`--target-epochs N` gives every row N epochs on the target (one-cycle over N, the same early stopping), into
transfer_table4[_<target>]_budget_<budget>.jsonl: does pre-training pay when training time is short? Its table puts each
row's budgets side by side, the full target's runs at their own number of epochs; where the fine-tuned rows of the
corpus-size variants (CORPUS_SWEEP in transfer_table4_pages.py: 1, 3 and 7 categories) ran, it also puts them by
pre-training corpus, and those of the size variants (SIZE_SWEEPS: hidden 64 and 128 pre-trained on Games, and on the
seven categories) by model size. `--learning-rate` and `--stopping-step` (the patience) set every trained row's peak
rate and early stopping and name them in its label; each fine-tuned row is against from scratch with the same two.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import yaml

from common import RESULTS_DIR, machine
from recbole_srt.scaling.records import append_record, read_records
from recbole_srt.scaling.sweep import settings_hash, user_sample_dataset
from transfer_table4_design import (BUDGETS, CORPORA, HISTORY_MATCH_PARTS, NEEDS, PRETRAINED_ROWS, PRETRAINING,
                                    PRETRAINING_TOKENIZER_ROWS, ROWS, SRT_1K, SWEEPS, TARGETS, VARIANTS, applies,
                                    full_target_results)
from transfer_table4_pages import draw_figures, page_body

# The seed of --target-users samples: one nested sample per fraction for every row and run.
USER_SAMPLE_SEED = 2020


def convert(raw_dir, data_dir, name, folders, tokenizer_text=()):
    yaml_path = os.path.join(data_dir, name, f"{name}.yaml")
    if not os.path.exists(yaml_path):
        inputs = [os.path.join(raw_dir, f) for f in folders]
        extra = ["--tokenizer-text", *(os.path.join(raw_dir, f) for f in tokenizer_text)] if tokenizer_text else []
        subprocess.run([sys.executable, "-m", "dataset_scripts", "sequences", "--input", *inputs, "--name", name,
                        "--output-dir", data_dir, *extra], check=True)
    return yaml_path


def target_sample(yaml_path, fraction, data_dir):
    """The dataset yaml of a seeded sample of `fraction` of the converted dataset's users (built once)."""
    with open(yaml_path) as f:
        settings = yaml.safe_load(f)
    data_path, name = user_sample_dataset(settings, fraction, USER_SAMPLE_SEED, data_dir, yaml_path)
    return os.path.join(data_path, name, f"{name}.yaml")


def run_one(label, model, yaml_path, settings, results, seed, needs_checkpoint=False, fields=None, recorded_in=()):
    """One run_recbole in this process; its record (appended, with `fields`), or the existing one in `results` or
    in the files `recorded_in` (if `needs_checkpoint`, only while its checkpoint file still exists)."""
    from recbole_srt import run_recbole

    key = settings_hash({"label": label, "model": model, "dataset": yaml_path, "settings": settings, "seed": seed})
    done = [record for path in dict.fromkeys((*recorded_in, results)) for record in read_records(path)
            if record["hash"] == key]
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
              "wall_s": time.perf_counter() - start, "machine": machine(), **(fields or {})}
    append_record(results, record)
    print(json.dumps({k: record[k] for k in ("label", "seed", "test_ndcg@5", "test_hit@5", "wall_s")}), flush=True)
    return record


def run(args):
    budget = BUDGETS[args.budget]
    common = budget["common"]
    target, target_folder, target_dataset = TARGETS[args.target]
    variant = VARIANTS[args.variant]
    for row in args.rows:
        if not applies(row, variant):
            raise SystemExit(f"{row}: the variant {args.variant} pre-trains without {NEEDS[row][1]}")
    corpus_name, folders = CORPORA[variant["corpus"]]
    # With the target's item text in its tokenizer, a corpus is converted once per target.
    dataset = f"pretrain_{variant['corpus']}" + (f"_{args.target}_text" if variant.get("target_text") else "")
    # The corpus is converted only for a row that uses it: pre-training here, or its tokenizer.
    uses_corpus = (args.pretrained is None and set(args.rows) & PRETRAINED_ROWS
                   or set(args.rows) & PRETRAINING_TOKENIZER_ROWS)
    pretrain_yaml = convert(args.raw_dir, args.data_dir, dataset, folders,
                            [target_folder] if variant.get("target_text") else ()) if uses_corpus else None
    target_yaml = convert(args.raw_dir, args.data_dir, target_dataset, [target_folder])
    fields, suffix = {}, ""
    if args.target_users is not None:
        target_yaml = target_sample(target_yaml, args.target_users, args.data_dir)
        fields, suffix = {"target_users": args.target_users}, f", {args.target_users:.0%} of users"
    if args.target_epochs is not None:
        fields, suffix = {"target_epochs": args.target_epochs}, f", {args.target_epochs}-epoch budget"
    tag = "" if args.variant == "baseline" else f" [{args.variant}]"
    # SRT's default depth (no variant changes it): the number of progressive stages before the last one.
    with open(os.path.join(os.path.dirname(RESULTS_DIR), "..", "properties", "model", "SRT.yaml")) as f:
        layers = yaml.safe_load(f)["n_layers"]
    for seed in args.seeds:
        checkpoint = args.pretrained
        if set(args.rows) & PRETRAINED_ROWS and checkpoint is None:
            checkpoint = run_one(f"{PRETRAINING} ({corpus_name}){tag}", "SRT", pretrain_yaml,
                                 {**common, **SRT_1K, **variant["settings"],
                                  "epochs": variant.get("pretrain_epochs", budget["pretrain_epochs"])},
                                 args.results, args.pretrain_seed or seed, needs_checkpoint=True,
                                 # A sweep's pre-training is the full target's: run once for both.
                                 recorded_in=[full_target_results(args.results)])["checkpoint"]
        # Cheapest first, so that an interrupted session has committed the most rows.
        transfer = {**common, **SRT_1K, "pretrained_model": checkpoint}
        ewc = args.ewc_lambda
        rows = {
            "zero_shot": (f"SRT-1K zero-shot{tag}", "SRT", {**transfer, "epochs": 0}),
            # The target's popularity (its training-split counts) added to the scores: what a model trained on other
            # catalogs cannot know. And that prior alone, as a baseline.
            "zero_shot_prior": (f"SRT-1K zero-shot + {target} popularity prior{tag}", "SRT",
                                {**transfer, "epochs": 0, "popularity_prior": 1.0}),
            # The pre-trained history-match weights alone: the transformer's scores are another catalog's knowledge.
            "zero_shot_history_only": (f"SRT-1K zero-shot, history-match scores only{tag}", "SRT",
                                       {**transfer, "epochs": 0, "history_match_only": True}),
            "popularity": (f"popularity ({target} training counts only)", "SRT",
                           {**common, **SRT_1K, "epochs": 0, "popularity_prior": 1000.0}),
            "scratch": ("SRT-1K from scratch", "SRT", {**common, **SRT_1K, "epochs": budget["scratch_epochs"]}),
            # The variant's own model settings on the target, from random weights: what its fine-tuning is against.
            "scratch_variant": (f"SRT-1K from scratch{tag}", "SRT",
                                {**common, **SRT_1K, **variant.get("target_settings", {}),
                                 "epochs": budget["scratch_epochs"]}),
            "finetune_full": (f"SRT-1K fine-tuned (full){tag}", "SRT",
                              {**transfer, "epochs": budget["finetune_epochs"]}),
            # The from-scratch row's number of epochs: the same budget for both.
            "finetune_full_scratch_epochs": (f"SRT-1K fine-tuned (full, {budget['scratch_epochs']} epochs){tag}", "SRT",
                                             {**transfer, "epochs": budget["scratch_epochs"]}),
            # A variant pre-trained with a hashed id table, fine-tuned without one: the text part alone carries over
            # (the row above gives the target a table of the checkpoint's size, starting at zero).
            "finetune_full_without_id_table": (
                f"SRT-1K fine-tuned (full, {budget['scratch_epochs']} epochs, no id table on {target}){tag}", "SRT",
                {**transfer, "epochs": budget["scratch_epochs"], "item_id_hash_buckets": 0}),
            **{row: (f"SRT-1K fine-tuned (full, {budget['scratch_epochs']} epochs, {part}){tag}", "SRT",
                     {**transfer, "epochs": budget["scratch_epochs"], "pretrained_parameters": parameters})
               for row, (part, parameters) in HISTORY_MATCH_PARTS.items()},
            # The transformer's scores gated from 0: fine-tuning starts from the pre-trained history-match scores
            # alone (its zero-shot ranking) and lets the transformer in as the target's data supports it.
            "finetune_gated": (
                f"SRT-1K fine-tuned (full, {budget['scratch_epochs']} epochs, transformer gate from 0){tag}", "SRT",
                {**transfer, "epochs": budget["scratch_epochs"], "transformer_gate_init": 0.0}),
            # Its control: the same gate from random weights.
            "scratch_gated": (f"SRT-1K from scratch (transformer gate from 0){tag}", "SRT",
                              {**common, **SRT_1K, **variant.get("target_settings", {}),
                               "epochs": budget["scratch_epochs"], "transformer_gate_init": 0.0}),
            # The fine-tuning schedule: a quarter of the learning rate, so the pre-trained weights move less.
            "finetune_full_low_lr": (f"SRT-1K fine-tuned (full, lr / 4){tag}", "SRT",
                                     {**transfer, "epochs": budget["finetune_epochs"],
                                      "learning_rate": common["learning_rate"] / 4}),
            # Full fine-tuning for the from-scratch row's epochs, held near the pre-trained weights by EWC alone.
            "finetune_full_ewc_scratch_epochs": (
                f"SRT-1K fine-tuned (full + EWC {ewc:g}, {budget['scratch_epochs']} epochs){tag}", "SRT",
                {**transfer, "epochs": budget["scratch_epochs"], "ewc_lambda": ewc}),
            "finetune_progressive": (f"SRT-1K fine-tuned (progressive + EWC {ewc:g}){tag}", "SRT",
                                     {**transfer, **budget["progressive"], "finetune_strategy": "progressive",
                                      "ewc_lambda": ewc}),
            # The same, given the from-scratch row's number of epochs: the per-layer stages as above, the rest in the
            # last.
            "finetune_progressive_scratch_epochs": (
                f"SRT-1K fine-tuned (progressive + EWC {ewc:g}, {budget['scratch_epochs']} epochs){tag}", "SRT",
                {**transfer, "finetune_strategy": "progressive", "ewc_lambda": ewc,
                 "finetune_epochs_per_layer": budget["progressive"]["finetune_epochs_per_layer"],
                 "finetune_final_epochs": budget["scratch_epochs"]
                 - layers * budget["progressive"]["finetune_epochs_per_layer"]}),
            # Control for the fine-tuned rows: their tokenizer and number of epochs, but random initial weights.
            "scratch_pretraining_tokenizer": (
                "SRT-1K from scratch (pre-training's tokenizer and fine-tuning epochs)", "SRT",
                {**common, **SRT_1K, "epochs": budget["finetune_epochs"],
                 "tokenizer_model": pretrain_yaml and tokenizer_of(pretrain_yaml)}),
            # Control for the variant's fine-tuned rows of the from-scratch budget: their tokenizer and settings,
            # random initial weights. Against scratch_variant: what the pre-training's tokenizer alone does.
            "scratch_variant_pretraining_tokenizer": (
                f"SRT-1K from scratch (pre-training's tokenizer){tag}", "SRT",
                {**common, **SRT_1K, **variant.get("target_settings", {}), "epochs": budget["scratch_epochs"],
                 "tokenizer_model": pretrain_yaml and tokenizer_of(pretrain_yaml)}),
            "sasrec": ("SASRec-CE from scratch", "SASRec",
                       {**common, "loss_type": "CE", "epochs": budget["scratch_epochs"]}),
        }
        if args.target_epochs is not None:
            untrained = [row for row in args.rows if rows[row][2].get("epochs", 0) == 0]
            if untrained:
                raise SystemExit(f"--target-epochs sets the epochs of rows that train on the target; these do not "
                                 f"(zero-shot, or progressive with epochs per layer): {', '.join(untrained)}")
        if args.learning_rate is not None:
            fixed = [row for row in args.rows if rows[row][2].get("epochs", 0) == 0 or row == "finetune_full_low_lr"]
            if fixed:
                raise SystemExit(f"--learning-rate sets the peak learning rate of rows that train on the target; "
                                 f"these do not, or set their own: {', '.join(fixed)}")
        if args.stopping_step is not None:
            untrained = [row for row in args.rows if rows[row][2].get("epochs", 0) == 0]
            if untrained:
                raise SystemExit(f"--stopping-step sets the early stopping of rows that train on the target; these "
                                 f"do not: {', '.join(untrained)}")
        for row in args.rows:
            label, model, settings = rows[row]
            if args.target_epochs is not None:
                settings = {**settings, "epochs": args.target_epochs}
            if args.learning_rate is not None:
                settings = {**settings, "learning_rate": args.learning_rate}
                label = f"{label}, peak lr {args.learning_rate:g}"
            if args.stopping_step is not None:
                settings = {**settings, "stopping_step": args.stopping_step}
                label = f"{label}, patience {args.stopping_step}"
            run_one(label + suffix, model, target_yaml, settings, args.results, seed, fields=fields)


def tokenizer_of(dataset_yaml):
    with open(dataset_yaml) as f:
        return yaml.safe_load(f)["tokenizer_model"]


def strength(text):
    """A number, kept an int where it is one, so that a run's settings hash as before the flag existed."""
    value = float(text)
    return int(value) if value.is_integer() else value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--pretrain-seed", type=int, default=None,
                        help="start every seed's transfer rows from this seed's pre-training (default: their own)")
    parser.add_argument("--target", choices=list(TARGETS), default="beauty")
    parser.add_argument("--variant", choices=list(VARIANTS), default="baseline", help="pre-training variant")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=None,
                        help="rows to run (default all that apply to the variant)")
    parser.add_argument("--target-users", type=float, default=None,
                        help="train and test on this fraction (0, 1) of the target's users (a nested, seeded sample)")
    parser.add_argument("--target-epochs", type=int, default=None,
                        help="train every row on the target for this many epochs (the schedule's length) instead of "
                             "the budget's: does pre-training pay when training time is short?")
    parser.add_argument("--ewc-lambda", type=strength, default=100,
                        help="EWC strength of the rows with EWC (default 100: the paper's number, though with our "
                             "batch Fisher its strength is about 37,000; see recbole_srt/transfer/ewc.py)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak learning rate of every row trained on the target (default: the budget's, 0.002 on "
                             "cpu); a pre-training run here keeps the budget's. Is the fine-tuning's best rate "
                             "another? Table 4's page puts such rows by peak learning rate")
    parser.add_argument("--stopping-step", type=int, default=None,
                        help="RecBole's stopping_step (validations without improvement before a run stops) of every "
                             "row trained on the target (default: the budget's, 3 on cpu); a longer --target-epochs "
                             "schedule anneals only after its peak, which a patience of 3 may never reach")
    parser.add_argument("--pretrained", default=None,
                        help="checkpoint or release of the variant's pre-training, for the pre-trained rows (default: "
                             "pre-train here)")
    parser.add_argument("--raw_dir", default=os.path.join(os.path.dirname(RESULTS_DIR), "..", "..", "shared",
                                                          "datasets", "raw"))
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--results", default=None, help="JSONL (default results/transfer_table4_<budget>.jsonl)")
    args = parser.parse_args()
    if args.target_users is not None and not 0 < args.target_users < 1:
        parser.error(f"--target-users: a fraction between 0 and 1 (exclusive), got {args.target_users}")
    if args.target_epochs is not None and (args.target_epochs < 1 or args.target_users is not None):
        parser.error(f"--target-epochs: a number of epochs of at least 1, without --target-users (one sweep per "
                     f"results file), got {args.target_epochs}")
    if args.stopping_step is not None and args.stopping_step < 1:
        parser.error(f"--stopping-step: a number of validations of at least 1, got {args.stopping_step}")
    if args.pretrained is not None and not os.path.isfile(args.pretrained):
        parser.error(f"--pretrained: no file {args.pretrained}")
    suffix = ("" if args.target == "beauty" else f"_{args.target}") + "".join(
        sweep.suffix for field, sweep in SWEEPS.items() if getattr(args, field) is not None)
    args.results = args.results or os.path.join(RESULTS_DIR, f"transfer_table4{suffix}_{args.budget}.jsonl")
    if args.rows is None:
        args.rows = [row for row in ROWS if applies(row, VARIANTS[args.variant])]
    sys.argv = sys.argv[:1]
    if args.command == "run":
        run(args)
    else:
        draw_figures(args.results)
        print(page_body(args.results))


if __name__ == "__main__":
    main()
