"""Numeric settings of the wrong type or range fail before anything runs, naming the key, the value and what was
expected. RecBole passes them on unchecked: `--learning_rate=abc` reached Adam as a string, `--epochs=-1` trained
nothing and still wrote a checkpoint, `--MAX_ITEM_LIST_LENGTH=0` failed in a reshape."""

# key: (integer or any number, lowest allowed value, whether the lowest value itself is allowed). Checked only where
# the key is set (not None); a value of None stays RecBole's or the model's "not set".
RULES = {
    "epochs": (int, 0, True),
    "train_batch_size": (int, 1, True),
    "eval_batch_size": (int, 1, True),
    "MAX_ITEM_LIST_LENGTH": (int, 1, True),
    "stopping_step": (int, 1, True),
    "eval_step": (int, None, True),
    "seed": (int, None, True),
    "learning_rate": (float, 0, False),
    "weight_decay": (float, 0, True),
    "max_grad_norm": (float, 0, False),
    "n_layers": (int, 1, True),
    "n_heads": (int, 1, True),
    "hidden_size": (int, 1, True),
    "inner_size": (int, 1, True),
    "hidden_dropout_prob": (float, 0, True),
    "attn_dropout_prob": (float, 0, True),
    "train_neg_count": (int, 1, True),
    "max_text_tokens": (int, 1, True),
    "tokenizer_vocab_size": (int, 1, True),
    "temperature": (float, 0, False),
    "popularity_prior": (float, 0, True),
    "ewc_lambda": (float, 0, True),
    "finetune_epochs_per_layer": (int, 0, True),
    "finetune_final_epochs": (int, 0, True),
    "eval_horizon": (int, 1, True),
    "eval_user_sample": (int, 1, True),
    "item_id_hash_buckets": (int, 0, True),
    "item_id_hashes": (int, 1, True),
    "lexical_match_dim": (int, 0, True),
    "transformer_gate_init": (float, None, True),
}
# Probabilities: below 1 as well.
BELOW_ONE = ("hidden_dropout_prob", "attn_dropout_prob")


def check(config):
    """Raise ValueError for the first setting outside RULES, saying where it was set."""
    for key, (kind, lowest, inclusive) in RULES.items():
        value = config[key]
        if value is None:
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or (kind is int and not isinstance(value, int)):
            expected = "an integer" if kind is int else "a number"
        elif lowest is not None and (value < lowest or (value == lowest and not inclusive)):
            expected = f"{'an integer' if kind is int else 'a number'} {'>=' if inclusive else '>'} {lowest}"
        elif key in BELOW_ONE and value >= 1:
            expected = "a probability in [0, 1)"
        else:
            continue
        raise ValueError(f"setting {key}: expected {expected}, got {value!r}{_origin(config, key)}")


def _origin(config, key):
    for name, given in (("the command line", config.cmd_config_dict), ("the config dict", config.variable_config_dict),
                        ("a config file", config.file_config_dict)):
        if key in given:
            return f" (from {name})"
    return ""


def check_against_dataset(config, dataset):
    """Settings that must fit the dataset: a top-k list cannot be longer than the items it ranks."""
    longest = max(config["topk"] or [0])
    items = dataset.item_num - 1  # id 0 is padding
    if longest > items:
        raise ValueError(f"setting topk: {config['topk']} asks for top-{longest} lists, but dataset "
                         f"'{config['dataset']}' has {items} items")
