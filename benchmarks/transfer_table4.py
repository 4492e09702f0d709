"""Does pre-training help? This repository's Table 4: pre-train SRT on other Amazon categories, then on a target
(Beauty, or Toys) compare SASRec-CE and SRT-1K from scratch, SRT-1K zero-shot (with and without the target's
popularity prior), fine-tuned `full`, and fine-tuned `progressive` + EWC, under one protocol (sampled10000 test
NDCG@5 / HIT@5, the same candidates).

    python benchmarks/transfer_table4.py run [--budget cpu|paper] [--seeds 1 2]     # resumable: done runs skipped
    python benchmarks/transfer_table4.py run --variant within_source_negatives --rows zero_shot finetune_full
    python benchmarks/transfer_table4.py run --seeds 2 --pretrain-seed 1 ...   # seed 2 fine-tuned from seed 1's
    python benchmarks/transfer_table4.py run --rows finetune_full_ewc_scratch_epochs --ewc-lambda 10000 ...
    python benchmarks/transfer_table4.py table     # prints the table, draws the figure beside the JSONL
    python benchmarks/transfer_table4.py run --variant history_match --pretrained pretrained/NAME/NAME.pth \
        --target-users 0.1 --rows scratch_variant finetune_full_scratch_epochs   # where does pre-training pay?

A variant changes the pre-training only, one thing against the variant it names in `from` (VARIANTS): negatives
within each source, the target's item text in the tokenizer, no logQ correction, the corpus. Its pre-trained,
zero-shot and fine-tuned rows carry its name; the from-scratch and popularity rows are shared by all variants.

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
transfer_table4[_<target>]_budget_<budget>.jsonl: does pre-training pay when training time is short? Its table puts
each row's budgets side by side, the full target's runs at their own number of epochs; where the fine-tuned rows of
the corpus-size variants (CORPUS_SWEEP: 1, 3 and 7 categories) ran, it also puts them by pre-training corpus, and
those of the size variants (SIZE_SWEEPS: hidden 64 and 128 pre-trained on Games, and on the seven categories) by model size.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from typing import Callable, NamedTuple

import yaml

from common import RESULTS_DIR, machine, markdown_table
from recbole_srt.scaling.records import append_record, read_records
from recbole_srt.scaling.sweep import settings_hash, user_sample_dataset

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
# Target: (name in labels, raw folder, converted dataset name). No corpus below holds Beauty; the games corpus no Toys.
TARGETS = {"beauty": ("Beauty", "amazon-beauty-2014", "Amazon_Beauty"),
           "toys": ("Toys", "amazon-toys-2014", "Amazon_Toys")}
CORPORA = {
    "games": ("Games", ["amazon-games-2018"]),
    "games_office": ("Games + Office", ["amazon-games-2018", "amazon-office-2014"]),
    # The three largest categories: nested between Games and all seven, for the corpus-size sweep.
    "three_categories": ("3 categories", ["amazon-games-2018", "amazon-kitchen-2014", "amazon-movies-2014"]),
    "seven_categories": ("7 categories", ["amazon-games-2018", "amazon-office-2014", "amazon-kitchen-2014",
                                          "amazon-movies-2014", "amazon-toys-2014", "amazon-arts-2018",
                                          "amazon-grocery-2014"]),
}
# Pre-training of each variant: its corpus, whether the target's item text also trains the tokenizer, its settings.
# Each differs from the one named in `from` by one thing.
VARIANTS = {
    "baseline": {"corpus": "games_office", "settings": {}},
    "within_source_negatives": {"from": "baseline", "corpus": "games_office",
                                "settings": {"neg_sampling_scope": "source"}},
    "target_text_tokenizer": {"from": "within_source_negatives", "corpus": "games_office", "target_text": True,
                              "settings": {"neg_sampling_scope": "source"}},
    # The corpus closest to a Toys target (video games), for the second target: does transfer pay where the
    # vocabulary is shared?
    "games_only": {"from": "within_source_negatives", "corpus": "games", "settings": {"neg_sampling_scope": "source"}},
    "no_logq": {"from": "within_source_negatives", "corpus": "games_office",
                "settings": {"neg_sampling_scope": "source", "logq_correction": False}},
    "seven_categories": {"from": "target_text_tokenizer", "corpus": "seven_categories", "target_text": True,
                         "settings": {"neg_sampling_scope": "source"}},
    # Scores from the candidate's text overlap with, and identity to, the recent history (catalog-independent
    # weights); on the target too (`target_settings`, its own from-scratch row). 2 pre-training epochs, not 6, to fit
    # a CPU session: two changes against seven_categories.
    "history_match": {"from": "seven_categories", "corpus": "seven_categories", "target_text": True,
                      "settings": {"neg_sampling_scope": "source", "lexical_match_dim": 256, "repeat_match": True},
                      "target_settings": {"lexical_match_dim": 256, "repeat_match": True}, "pretrain_epochs": 2},
    # The same heads for the Toys target, pre-trained on Games alone: one change against games_only.
    "history_match_games": {"from": "games_only", "corpus": "games",
                            "settings": {"neg_sampling_scope": "source", "lexical_match_dim": 256, "repeat_match": True},
                            "target_settings": {"lexical_match_dim": 256, "repeat_match": True}},
    # Toys' item text in the Games tokenizer too: under Games' alone, Toys' fine-tuning (its tokenizer the
    # checkpoint's) ends below from scratch (its own). One change against history_match_games.
    "history_match_games_target_text": {"from": "history_match_games", "corpus": "games", "target_text": True,
                                        "settings": {"neg_sampling_scope": "source", "lexical_match_dim": 256,
                                                     "repeat_match": True},
                                        "target_settings": {"lexical_match_dim": 256, "repeat_match": True}},
}
# The corpus-size sweep (1, 3, 7 categories): history_match with a smaller corpus, one change each.
VARIANTS.update({name: {**VARIANTS["history_match"], "from": "history_match", "corpus": corpus}
                 for name, corpus in (("history_match_one_category", "games"),
                                      ("history_match_three_categories", "three_categories"))})
# Model size at about equal pre-training compute (Games): an epoch of hidden 128 (its token embeddings widen with it)
# costs 2.5x hidden 64's training FLOPs, so one epoch of it lies between two and three of hidden 64.
HIDDEN_128 = {"hidden_size": 128, "inner_size": 256}
VARIANTS["history_match_one_category_3_epochs"] = {**VARIANTS["history_match_one_category"],
                                                   "from": "history_match_one_category", "pretrain_epochs": 3}
VARIANTS["history_match_one_category_hidden_128"] = {
    **VARIANTS["history_match_one_category"], "from": "history_match_one_category_3_epochs", "pretrain_epochs": 1,
    "settings": {**VARIANTS["history_match_one_category"]["settings"], **HIDDEN_128},
    "target_settings": {**VARIANTS["history_match_one_category"]["target_settings"], **HIDDEN_128}}
# The same size step on all seven categories (the shipped model's corpus): one epoch of hidden 128 against
# history_match's two of hidden 64 (measured: 1.7x its training FLOPs, less of this CPU's training wall clock).
VARIANTS["history_match_hidden_128"] = {
    **VARIANTS["history_match"], "from": "history_match", "pretrain_epochs": 1,
    "settings": {**VARIANTS["history_match"]["settings"], **HIDDEN_128},
    "target_settings": {**VARIANTS["history_match"]["target_settings"], **HIDDEN_128}}

# Pre-training with a hashed item-id table (issue 24's dense-catalog option): what does it do to transfer? The table
# is another catalog's ids, so the target starts its own at zero (or leaves it out); the question is whether the text
# part, which learned beside the table, still carries over. One change against history_match_one_category.
VARIANTS["history_match_one_category_hashed_ids"] = {
    **VARIANTS["history_match_one_category"], "from": "history_match_one_category",
    "settings": {**VARIANTS["history_match_one_category"]["settings"], "item_id_hash_buckets": 65536},
    "target_settings": {**VARIANTS["history_match_one_category"]["target_settings"], "item_id_hash_buckets": 65536}}

ROWS = ("zero_shot", "zero_shot_prior", "zero_shot_history_only", "popularity", "scratch", "scratch_variant", "finetune_full", "finetune_full_scratch_epochs",
        "finetune_full_without_id_table", "finetune_history_match_weights_only",
        "finetune_without_history_match_weights", "finetune_gated", "scratch_gated", "finetune_full_low_lr",
        "finetune_full_ewc_scratch_epochs", "finetune_progressive", "finetune_progressive_scratch_epochs",
        "scratch_pretraining_tokenizer", "scratch_variant_pretraining_tokenizer", "sasrec")
# Rows trained from random weights with the pre-training corpus's tokenizer (which is converted for them).
PRETRAINING_TOKENIZER_ROWS = {"scratch_pretraining_tokenizer", "scratch_variant_pretraining_tokenizer"}
# The label of every pre-training run starts so (the other rows are runs on the target).
PRETRAINING = "SRT-1K pre-trained"
# Rows that take part of a history-match pre-training (`pretrained_parameters`), the rest from random weights: its
# history-match weights (3 x MAX_ITEM_LIST_LENGTH numbers) alone, or everything but them. Where fine-tuning's gain is.
HISTORY_MATCH_PARTS = {
    "finetune_history_match_weights_only": ("only the history-match weights pre-trained",
                                            ["lexical_match", "repeat_match"]),
    "finetune_without_history_match_weights": ("all but the history-match weights pre-trained",
                                               ["item_encoder", "position_embedding", "trm_encoder", "LayerNorm"]),
}
# Rows that need a pre-training setting: (the setting, what the variant lacks without it).
NEEDS = {"finetune_full_without_id_table": ("item_id_hash_buckets", "a hashed id table (item_id_hash_buckets), so the "
                                            "row would be finetune_full_scratch_epochs"),
         **{row: ("lexical_match_dim", "history match (lexical_match_dim), so its weights have no history-match part "
                                       "to take or leave") for row in HISTORY_MATCH_PARTS}}


def applies(row, variant):
    """Whether the variant's pre-training has what the row needs (NEEDS)."""
    return row not in NEEDS or bool(variant["settings"].get(NEEDS[row][0]))


# The seed of --target-users samples: one nested sample per fraction for every row and run.
USER_SAMPLE_SEED = 2020
# Rows that start from the variant's pre-trained checkpoint (the others run without pre-training).
PRETRAINED_ROWS = {"zero_shot", "zero_shot_prior", "zero_shot_history_only", "finetune_full", "finetune_full_scratch_epochs",
                   "finetune_full_without_id_table", "finetune_history_match_weights_only",
                   "finetune_without_history_match_weights",
                   "finetune_gated", "finetune_full_low_lr", "finetune_full_ewc_scratch_epochs", "finetune_progressive",
                   "finetune_progressive_scratch_epochs"}


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
            "scratch_variant": (f"SRT-1K from scratch{tag}", "SRT", {**common, **SRT_1K, **variant.get("target_settings", {}),
                                                                     "epochs": budget["scratch_epochs"]}),
            "finetune_full": (f"SRT-1K fine-tuned (full){tag}", "SRT", {**transfer, "epochs": budget["finetune_epochs"]}),
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
            "finetune_gated": (f"SRT-1K fine-tuned (full, {budget['scratch_epochs']} epochs, transformer gate from 0){tag}",
                               "SRT", {**transfer, "epochs": budget["scratch_epochs"], "transformer_gate_init": 0.0}),
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
            # The same, given the from-scratch row's number of epochs: the per-layer stages as above, the rest in the last.
            "finetune_progressive_scratch_epochs": (
                f"SRT-1K fine-tuned (progressive + EWC {ewc:g}, {budget['scratch_epochs']} epochs){tag}", "SRT",
                {**transfer, "finetune_strategy": "progressive", "ewc_lambda": ewc,
                 "finetune_epochs_per_layer": budget["progressive"]["finetune_epochs_per_layer"],
                 "finetune_final_epochs": budget["scratch_epochs"]
                 - layers * budget["progressive"]["finetune_epochs_per_layer"]}),
            # Control for the fine-tuned rows: their tokenizer and number of epochs, but random initial weights.
            "scratch_pretraining_tokenizer": (
                "SRT-1K from scratch (pre-training's tokenizer and fine-tuning epochs)", "SRT",
                {**common, **SRT_1K, "epochs": budget["finetune_epochs"], "tokenizer_model": pretrain_yaml and tokenizer_of(pretrain_yaml)}),
            # Control for the variant's fine-tuned rows of the from-scratch budget: their tokenizer and settings,
            # random initial weights. Against scratch_variant: what the pre-training's tokenizer alone does.
            "scratch_variant_pretraining_tokenizer": (
                f"SRT-1K from scratch (pre-training's tokenizer){tag}", "SRT",
                {**common, **SRT_1K, **variant.get("target_settings", {}), "epochs": budget["scratch_epochs"],
                 "tokenizer_model": pretrain_yaml and tokenizer_of(pretrain_yaml)}),
            "sasrec": ("SASRec-CE from scratch", "SASRec", {**common, "loss_type": "CE", "epochs": budget["scratch_epochs"]}),
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
        for row in args.rows:
            label, model, settings = rows[row]
            if args.target_epochs is not None:
                settings = {**settings, "epochs": args.target_epochs}
            if args.learning_rate is not None:
                settings, label = {**settings, "learning_rate": args.learning_rate}, f"{label}, peak lr {args.learning_rate:g}"
            run_one(label + suffix, model, target_yaml, settings, args.results, seed, fields=fields)


def tokenizer_of(dataset_yaml):
    with open(dataset_yaml) as f:
        return yaml.safe_load(f)["tokenizer_model"]


def target_of(results_name):
    """The target a results file is about: transfer_table4_<target>_<budget>.jsonl, or Beauty without one."""
    return next((name for key, (name, _, _) in TARGETS.items() if f"_{key}_" in results_name), "Beauty")


def latest(records):
    """The latest run of every label and seed, pre-training runs left out."""
    return list({(r["label"], r["seed"]): r for r in records if not r["label"].startswith(PRETRAINING)}.values())


def summary(records):
    """(label, seeds, NDCG@5 values, HIT@5 values) per label, in the order they first ran."""
    import numpy as np

    rows = []
    for label in dict.fromkeys(r["label"] for r in records):
        runs = [r for r in records if r["label"] == label]
        rows.append((label, len(runs), np.array([r["test_ndcg@5"] for r in runs]),
                     np.array([r["test_hit@5"] for r in runs])))
    return rows


def table(records, target="Beauty"):
    rows = []
    for label, seeds, ndcg, hit in summary(latest(records)):
        paper = PAPER.get(label) if target == "Beauty" else None
        spread = (lambda v: f"{v.mean():.4f}") if seeds == 1 else (lambda v: f"{v.mean():.4f} ± {v.std():.4f}")
        rows.append([label, seeds, spread(ndcg), spread(hit), f"{paper[0]:.4f} / {paper[1]:.4f}" if paper else "-"])
    text = markdown_table([f"{target}, sampled10000 test", "seeds", "NDCG@5", "HIT@5", "paper NDCG@5 / HIT@5"], rows)
    runs = latest(records)
    machines = sorted({json.dumps({k: v for k, v in r["machine"].items() if k != "date"}) for r in runs})
    dates = sorted(r["machine"]["date"] for r in runs)
    return f"{text}\n\nMachines: {'; '.join(machines)}; runs from {dates[0]} to {dates[-1]}\n"


def figure(records, path, target="Beauty"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary(latest(records))
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.5))
    ax.barh([label for label, *_ in rows], [ndcg.mean() for _, _, ndcg, _ in rows], color="tab:blue")
    ax.set_xlabel(f"test NDCG@5 ({target}, sampled10000)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


class Sweep(NamedTuple):
    """A sweep over the target: its runs are the full target's rows with one thing changed."""
    suffix: str  # of its results file, beside the full target's
    column: Callable  # a value's column header
    full_value: Callable  # the value of a full-target run (record -> value)
    axis: str  # the figure's x label


SWEEPS = {
    "target_users": Sweep("_data_size", lambda f: f"{f:.0%} of users", lambda r: 1.0,
                          "fraction of {target}'s users trained and tested on"),
    "target_epochs": Sweep("_budget", lambda n: f"{n} epochs", lambda r: r["settings"]["epochs"],
                           "epochs of training on {target} (the schedule's length)"),
}


def sweep_of(records):
    """The sweep field of a results file's runs, or None for Table 4 itself."""
    return next((field for field in SWEEPS if any(field in r for r in records)), None)


def base_label(record):
    """A sweep run's label without its suffix (the fraction of users, the epoch budget)."""
    label = record["label"]
    return label[:label.rindex(", ")] if any(field in record for field in SWEEPS) else label


def full_target_results(results_path):
    """The results file of the full target beside a sweep's."""
    for sweep in SWEEPS.values():
        results_path = results_path.replace(sweep.suffix, "")
    return results_path


def sweep_runs(records, full_records):
    """The runs of a sweep's table: the sweep's and the full target's runs of the same rows."""
    swept = latest(records)
    labels = {base_label(r) for r in swept}
    return swept + [r for r in latest(full_records) if r["label"] in labels]


def ndcg_by(runs, row, value):
    """{row(run): {value(run): test NDCG@5 values}}."""
    points = {}
    for r in runs:
        points.setdefault(row(r), {}).setdefault(value(r), []).append(r["test_ndcg@5"])
    return points


def sweep_points(records, full_records, field):
    """{row label: {sweep value: test NDCG@5 values}}, the full target's runs at their own value."""
    full_value = SWEEPS[field].full_value
    return ndcg_by(sweep_runs(records, full_records), base_label, lambda r: r[field] if field in r else full_value(r))


def row_name(label, field):
    """An epoch-budget table's rows name no number of epochs: its columns do."""
    return re.sub(r", \d+ epochs", "", label) if field == "target_epochs" else label


def variant_of(label):
    """The pre-training variant a row's label names ("... [variant]"), or None."""
    match = re.search(r"\[(\w+)\]$", label)
    return match and match.group(1)


# A row run with --learning-rate carries its peak rate in its label.
PEAK_LR = re.compile(r", peak lr [0-9.e+-]+$")


def peak_lr_of(label):
    """The peak-rate suffix of a row run with --learning-rate, or "" for the budget's rate."""
    match = PEAK_LR.search(label)
    return match.group(0) if match else ""


def scratch_of(label, labels):
    """The from-scratch row among `labels` that a fine-tuned row is against, at the same peak learning rate: the one
    of its own variant, or else of a variant with the same model settings on the target; None if there is none."""
    def variant(row):
        return variant_of(PEAK_LR.sub("", row))

    own = variant(label)
    settings = VARIANTS.get(own, {}).get("target_settings", {})
    candidates = [other for other in labels if other.startswith("SRT-1K from scratch [")
                  and peak_lr_of(other) == peak_lr_of(label)
                  and VARIANTS.get(variant(other), {}).get("target_settings", {}) == settings]
    return next((other for other in candidates if variant(other) == own), candidates[0] if candidates else None)


def seeds_cell(values):
    """Mean ± std over seeds (how many), or "-" for none."""
    import numpy as np

    v = np.array(values)
    return (f"{v.mean():.4f}" + (f" ± {v.std():.4f}" if len(v) > 1 else "") + f" ({len(v)})") if len(v) else "-"


def sweep_table(records, full_records, field, target="Beauty"):
    """Each row's test NDCG@5 per value of the sweep; each fine-tuned row against from scratch."""
    import numpy as np

    points = sweep_points(records, full_records, field)
    values = sorted({v for by_value in points.values() for v in by_value})

    rows = [[row_name(label, field)] + [seeds_cell(points[label].get(v, [])) for v in values]
            for label in points]
    for label in points:
        scratch = scratch_of(label, points)
        if "fine-tuned" in label and scratch:
            rows.append([f"{row_name(label, field)} ÷ from scratch"] + [
                f"{np.mean(points[label][v]) / np.mean(points[scratch][v]):.2f}x"
                if v in points[label] and v in points[scratch] else "-" for v in values])
    header = [f"{target}, sampled10000 test NDCG@5 (seeds)"] + [SWEEPS[field].column(v) for v in values]
    runs = sweep_runs(records, full_records)
    machines = sorted({json.dumps({k: v for k, v in r["machine"].items() if k != "date"}) for r in runs})
    dates = sorted(r["machine"]["date"] for r in runs)
    full = "100%" if field == "target_users" else "The column of the full target's own number of epochs"
    return (f"{markdown_table(header, rows)}\n\n{full} holds the full target's runs of the same rows (the results file "
            f"without `{SWEEPS[field].suffix}`). Machines: {'; '.join(machines)}; runs from {dates[0]} to {dates[-1]}\n")


def sweep_figure(records, full_records, field, path, target="Beauty"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(11, 4.5))
    for label, by_value in sweep_points(records, full_records, field).items():
        values = sorted(by_value)
        ax.errorbar(values, [np.mean(by_value[v]) for v in values], yerr=[np.std(by_value[v]) for v in values],
                    marker="o", capsize=3, label=row_name(label, field))
    if field == "target_users":
        ax.set_xscale("log")
    ax.set_xlabel(SWEEPS[field].axis.format(target=target))
    ax.set_ylabel("test NDCG@5 (sampled10000)")
    # Beside the axes: a sweep has up to a dozen rows, whose lines a legend inside would cover.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# The corpus-size sweep: one pre-training on 1, 3 and 7 categories, each fine-tuned under the same budgets.
CORPUS_SWEEP = ("history_match_one_category", "history_match_three_categories", "history_match")
CORPUS_SCRATCH = "SRT-1K from scratch [history_match]"


def pretraining_run(variant, records):
    """The latest recorded pre-training of the variant, or None."""
    runs = [r for r in records if r["label"].startswith(PRETRAINING) and variant_of(r["label"]) == variant]
    return runs[-1] if runs else None


def pretraining_positions(variant, records):
    """Training positions per epoch of the variant's pre-training, from its recorded runs (None if not recorded)."""
    run = pretraining_run(variant, records)
    return run["compute"]["seen_interactions"] // run["settings"]["epochs"] if run else None


def corpus_points(records, full_records):
    """{budget in epochs: [(corpus, training positions per pre-training epoch, test NDCG@5 values)]}, from scratch
    at 0 positions; the budgets at which more than from scratch ran."""
    points = {}
    for r in sweep_runs(records, full_records):
        budget = r.get("target_epochs", r["settings"]["epochs"])
        if base_label(r) == CORPUS_SCRATCH:
            points.setdefault(budget, {}).setdefault(("from scratch", 0), []).append(r["test_ndcg@5"])
        for variant in CORPUS_SWEEP:
            if base_label(r).startswith("SRT-1K fine-tuned (full, ") and base_label(r).endswith(f"[{variant}]"):
                positions = pretraining_positions(variant, records + full_records)
                if positions is None:
                    raise SystemExit(f"{r['label']}: no pre-training run of [{variant}] in the results files, so "
                                     f"its corpus size is unknown")
                corpus = CORPORA[VARIANTS[variant]["corpus"]][0]
                points.setdefault(budget, {}).setdefault((corpus, positions), []).append(r["test_ndcg@5"])
    return {budget: sorted(((c, p, v) for (c, p), v in by_corpus.items()), key=lambda point: point[1])
            for budget, by_corpus in sorted(points.items()) if len(by_corpus) > 2}


def corpus_table(points, target="Beauty"):
    """Fine-tuned test NDCG@5 by the pre-training corpus, per budget, against from scratch."""
    import numpy as np

    rows = []
    for budget, corpora in points.items():
        scratch = np.mean(corpora[0][2])
        for corpus, positions, values in corpora:
            rows.append([f"{budget} epochs", corpus, f"{positions:,}", seeds_cell(values),
                         f"{np.mean(values) / scratch:.2f}x"])
    return markdown_table([f"{target} budget", "pre-training corpus", "pre-training positions per epoch",
                           "test NDCG@5 (seeds)", "÷ from scratch"], rows)


def corpus_figure(points, path, target="Beauty"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for budget, corpora in points.items():
        ax.errorbar([p for _, p, _ in corpora], [np.mean(v) for *_, v in corpora],
                    yerr=[np.std(v) for *_, v in corpora], marker="o", capsize=3, label=f"{budget} epochs on {target}")
        for corpus, positions, values in corpora:
            ax.annotate(corpus, (positions, np.mean(values)), fontsize=7, textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("pre-training positions per epoch (0: from scratch; 2 pre-training epochs each)")
    ax.set_ylabel(f"fine-tuned test NDCG@5 on {target} (sampled10000)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# Model size and pre-training compute, per corpus: on Games 2 and 3 epochs of hidden 64 and 1 of hidden 128, on all
# seven categories 2 epochs of hidden 64 (the shipped model) and 1 of hidden 128; each fine-tuned and against from
# scratch at its own size.
SIZE_SWEEPS = {"Games": ("history_match_one_category", "history_match_one_category_3_epochs",
                         "history_match_one_category_hidden_128"),
               "7 categories": ("history_match", "history_match_hidden_128")}


def size_rows(records, full_records):
    """[(budget, corpus, variant, its pre-training record, fine-tuned NDCG@5 values, from-scratch values at its
    size)] for the SIZE_SWEEPS variants that were fine-tuned, two or more sizes of one corpus at a budget."""
    runs = sweep_runs(records, full_records)
    values = {}
    for r in runs:
        values.setdefault((r.get("target_epochs", r["settings"]["epochs"]), base_label(r)), []).append(r["test_ndcg@5"])
    labels = {label for _, label in values}
    rows = []
    for budget in sorted({b for b, _ in values}):
        for corpus, variants in SIZE_SWEEPS.items():
            at_budget = []
            for variant in variants:
                finetuned = values.get((budget, f"SRT-1K fine-tuned (full, 20 epochs) [{variant}]"))
                if finetuned is None:
                    continue
                # The sweep's own record first: its minutes were measured beside the other sizes'.
                pretraining = pretraining_run(variant, full_records + records)
                if pretraining is None:
                    raise SystemExit(f"[{variant}], {budget}-epoch budget: fine-tuned, but no pre-training run of it "
                                     f"in the results files")
                scratch = scratch_of(f"SRT-1K fine-tuned [{variant}]", labels)
                at_budget.append((budget, corpus, variant, pretraining, finetuned, values.get((budget, scratch), [])))
            sizes = {pretraining["settings"].get("hidden_size", 64) for _, _, _, pretraining, _, _ in at_budget}
            rows += at_budget if len(sizes) > 1 else []
    return rows


def size_table(rows, target="Beauty"):
    """Fine-tuned test NDCG@5 by the pre-trained model's corpus, size and pre-training compute, against from scratch
    at the same size."""
    import numpy as np

    table_rows = []
    for budget, corpus, variant, pretraining, finetuned, scratch in rows:
        settings = pretraining["settings"]
        table_rows.append([f"{budget} epochs", corpus, f"`{variant}`", str(settings.get("hidden_size", 64)),
                           f"{pretraining['compute']['non_embedding_parameters']:,}", str(settings["epochs"]),
                           f"{pretraining['compute']['train_flops'] / 1e12:.1f}", f"{pretraining['wall_s'] / 60:.1f}",
                           seeds_cell(finetuned), seeds_cell(scratch),
                           f"{np.mean(finetuned) / np.mean(scratch):.2f}x" if scratch else "-"])
    return markdown_table([f"{target} budget", "pre-training corpus", "variant", "hidden size",
                           "non-embedding parameters", "pre-training epochs", "pre-training TFLOPs",
                           "pre-training minutes", "fine-tuned test NDCG@5 (seeds)", "from scratch, same size (seeds)",
                           "÷ from scratch"], table_rows)


def learning_rate_points(records):
    """{row label: {peak learning rate: test NDCG@5 values}} for the rows run at other peak rates (--learning-rate),
    with their runs at the budget's own rate."""
    def row(run):
        return PEAK_LR.sub("", run["label"])

    runs = latest(records)
    swept = {row(r) for r in runs if PEAK_LR.search(r["label"])}
    return ndcg_by([r for r in runs if row(r) in swept], row, lambda r: r["settings"]["learning_rate"])


def learning_rate_table(points, target="Beauty"):
    """Each row's test NDCG@5 per peak learning rate; each fine-tuned row against from scratch at the same rate."""
    import numpy as np

    labels = list(points)
    pairs = [(label, scratch_of(label, labels)) for label in labels if "fine-tuned" in label]
    pairs = [(finetuned, scratch) for finetuned, scratch in pairs if scratch]
    rates = sorted({rate for by_rate in points.values() for rate in by_rate})
    rows = [[f"{rate:g}"] + [seeds_cell(points[label].get(rate, [])) for label in labels] +
            [f"{np.mean(points[f][rate]) / np.mean(points[s][rate]):.2f}x"
             if rate in points[f] and rate in points[s] else "-" for f, s in pairs]
            for rate in rates]
    return markdown_table([f"{target}, peak learning rate"] + [f"{label} (seeds)" for label in labels] +
                          [f"{f} ÷ from scratch" for f, _ in pairs], rows)


def page_body(results_path):
    """The table of a results file: Table 4, or for a sweep's file each row per value of the sweep."""
    records = read_records(results_path)
    target = target_of(os.path.basename(results_path))
    field = sweep_of(records)
    if not field:
        points = learning_rate_points(records)
        lr_part = (f"\n### By peak learning rate\n\nThe rows run at other peak learning rates of the one-cycle "
                   f"schedule (`--learning-rate`), with their runs at the budget's own, each fine-tuned row against "
                   f"from scratch at the same rate.\n\n{learning_rate_table(points, target)}\n") if points else ""
        return table(records, target) + lr_part
    full_records = read_records(full_target_results(results_path))
    body = sweep_table(records, full_records, field, target)
    points = corpus_points(records, full_records) if field == "target_epochs" else {}
    if points:
        body += (f"\n### By pre-training corpus\n\nThe fine-tuned rows above by the corpus they were pre-trained on "
                 f"({', '.join(f'`{v}`' for v in CORPUS_SWEEP)}: the same settings and 2 pre-training epochs on 1, 3 "
                 f"and 7 categories).\n\n{corpus_table(points, target)}\n")
    sizes = size_rows(records, full_records) if field == "target_epochs" else []
    if sizes:
        body += (f"\n### By model size and pre-training compute\n\nThe fine-tuned rows pre-trained at two sizes on "
                 f"one corpus (on Games hidden 64 for 2 and 3 epochs, hidden 128 for 1, whose training FLOPs lie "
                 f"between theirs; on the seven categories hidden 64 for 2 epochs and hidden 128 for 1, 1.7x their FLOPs), each against "
                 f"from scratch at its own size. Minutes: the pre-training's wall clock, evaluation included, on its "
                 f"run's machine.\n\n"
                 f"{size_table(sizes, target)}\n")
    return body


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
                        help="EWC strength of the rows with EWC (default 100: the paper's number, though with our batch "
                             "Fisher its strength is about 37,000; see recbole_srt/transfer/ewc.py)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak learning rate of every row trained on the target (default: the budget's, 0.002 on "
                             "cpu); a pre-training run here keeps the budget's. Is the fine-tuning's best rate another? "
                             "Table 4's page puts such rows by peak learning rate")
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
        records = read_records(args.results)
        target = target_of(os.path.basename(args.results))
        png = f"{os.path.splitext(args.results)[0]}.png"
        field = sweep_of(records)
        if field:
            full_records = read_records(full_target_results(args.results))
            sweep_figure(records, full_records, field, png, target)
            points = corpus_points(records, full_records) if field == "target_epochs" else {}
            if points:
                corpus_figure(points, f"{os.path.splitext(args.results)[0]}_corpus.png", target)
        else:
            figure(records, png, target)
        print(page_body(args.results))


if __name__ == "__main__":
    main()
