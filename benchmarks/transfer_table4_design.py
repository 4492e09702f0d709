"""What this repository's Table 4 compares: the training budgets, the targets, the pre-training corpora and variants,
the rows, and the sweeps (each a results file beside the full target's). `transfer_table4.py` runs them,
`transfer_table4_pages.py` puts their records in tables and figures."""

from typing import Callable, NamedTuple

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
                      "settings": {"neg_sampling_scope": "source", "lexical_match_dim": 256,
                                   "repeat_match": True},
                      "target_settings": {"lexical_match_dim": 256, "repeat_match": True}, "pretrain_epochs": 2},
    # The same heads for the Toys target, pre-trained on Games alone: one change against games_only.
    "history_match_games": {"from": "games_only", "corpus": "games",
                            "settings": {"neg_sampling_scope": "source", "lexical_match_dim": 256,
                                         "repeat_match": True},
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
# Longer pre-training at the larger size: a second epoch of hidden 128 on the seven categories (one change).
VARIANTS["history_match_hidden_128_2_epochs"] = {**VARIANTS["history_match_hidden_128"],
                                                 "from": "history_match_hidden_128", "pretrain_epochs": 2}
# Twice that again: does the downstream ratio keep growing with pre-training compute at this size (one change)?
VARIANTS["history_match_hidden_128_4_epochs"] = {**VARIANTS["history_match_hidden_128"],
                                                 "from": "history_match_hidden_128_2_epochs", "pretrain_epochs": 4}
# A larger model still: hidden 256 (inner 512) for one epoch on the seven categories (one change against hidden 128).
HIDDEN_256 = {"hidden_size": 256, "inner_size": 512}
VARIANTS["history_match_hidden_256"] = {
    **VARIANTS["history_match_hidden_128"], "from": "history_match_hidden_128",
    "settings": {**VARIANTS["history_match"]["settings"], **HIDDEN_256},
    "target_settings": {**VARIANTS["history_match"]["target_settings"], **HIDDEN_256}}
# Longer pre-training at that size: one epoch left hidden 256 below hidden 128 in-domain (one change against it).
VARIANTS["history_match_hidden_256_2_epochs"] = {**VARIANTS["history_match_hidden_256"],
                                                 "from": "history_match_hidden_256", "pretrain_epochs": 2}

# Pre-training with a hashed item-id table (issue 24's dense-catalog option): what does it do to transfer? The table
# is another catalog's ids, so the target starts its own at zero (or leaves it out); the question is whether the text
# part, which learned beside the table, still carries over. One change against history_match_one_category.
VARIANTS["history_match_one_category_hashed_ids"] = {
    **VARIANTS["history_match_one_category"], "from": "history_match_one_category",
    "settings": {**VARIANTS["history_match_one_category"]["settings"], "item_id_hash_buckets": 65536},
    "target_settings": {**VARIANTS["history_match_one_category"]["target_settings"], "item_id_hash_buckets": 65536}}

ROWS = ("zero_shot", "zero_shot_prior", "zero_shot_history_only", "popularity", "scratch", "scratch_variant",
        "finetune_full", "finetune_full_scratch_epochs",
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


# Rows that start from the variant's pre-trained checkpoint (the others run without pre-training).
PRETRAINED_ROWS = {"zero_shot", "zero_shot_prior", "zero_shot_history_only", "finetune_full",
                   "finetune_full_scratch_epochs", "finetune_full_without_id_table",
                   "finetune_history_match_weights_only", "finetune_without_history_match_weights",
                   "finetune_gated", "finetune_full_low_lr", "finetune_full_ewc_scratch_epochs", "finetune_progressive",
                   "finetune_progressive_scratch_epochs"}


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


def full_target_results(results_path):
    """The results file of the full target beside a sweep's."""
    for sweep in SWEEPS.values():
        results_path = results_path.replace(sweep.suffix, "")
    return results_path


def target_of(results_name):
    """The target a results file is about: transfer_table4_<target>_<budget>.jsonl, or Beauty without one."""
    return next((name for key, (name, _, _) in TARGETS.items() if f"_{key}_" in results_name), "Beauty")
