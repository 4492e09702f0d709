"""`pretrained_model: PATH` builds SRT on a new dataset with a checkpoint's weights and tokenizer.

Every SRT parameter (token embeddings, adapter, transformer, positions) is independent of the catalog, so a
checkpoint trained on other categories loads as is; the new catalog's text is tokenized with the checkpoint's own
SentencePiece model (stored in the checkpoint), and popularity comes from the new training split as always. The
settings that decide the parameters come from the checkpoint unless the run sets them. The one part that belongs
to a catalog, the hashed item-id table, is not carried over: its rows are another catalog's ids.
"""

from recbole_srt.architectures import SHAPE_KEYS
from recbole_srt.checkpoint import load_checkpoint

# Settings that decide the parameters' shapes or what they mean: they must be the checkpoint's.
MUST_MATCH = ("n_layers", "n_heads", "hidden_size", "inner_size", "hidden_act", "token_embedding_size",
              "per_field_token_tables", "text_pooling", "text_normalization", "position_encoding",
              "MAX_ITEM_LIST_LENGTH", "lexical_match_dim", "repeat_match")
# Taken from the checkpoint unless the run sets them, but free to differ: the new catalog's hashed id table starts at
# zero whatever its size (0: none, the pre-trained model's text part alone).
ADOPTED = MUST_MATCH + ("item_id_hash_buckets", "item_id_hashes")
# The checkpoint's parameters that are never loaded: the hashed item-id table (HashedItemEmbedding).
CATALOG_PARAMETERS = ("item_id_embedding.",)
# What a checkpoint written before an ADOPTED setting existed was trained with.
BEFORE_THE_SETTING = {"item_id_hash_buckets": 0, "item_id_hashes": 2, "lexical_match_dim": 0, "repeat_match": False}


def trained_value(trained, key):
    """An ADOPTED setting of a checkpoint's config (its default when the checkpoint predates the setting)."""
    return trained[key] if key in trained else BEFORE_THE_SETTING.get(key)


def read(path, trust=False):
    """The checkpoint at `path`, checked to be an SRT checkpoint with its tokenizer (`trust`: see load_checkpoint)."""
    checkpoint = load_checkpoint(path, "cpu", trust=trust)
    model = checkpoint["config"]["model"]
    if str(model) != "SRT":
        raise ValueError(f"pretrained_model {path}: a {model} checkpoint, not SRT's (only SRT's weights do not depend "
                         "on the catalog)")
    if not (checkpoint.get("other_parameter") or {}).get("tokenizer_proto"):
        raise ValueError(f"pretrained_model {path}: the checkpoint holds no SentencePiece model")
    return checkpoint


def is_release(checkpoint):
    """A released model (recbole_srt.transfer.release) keeps the settings that decide its parameters, not a whole
    run's configuration, and no training data."""
    return isinstance(checkpoint["config"], dict) and "config_meta" not in checkpoint


def adopt_settings(config):
    """Take every ADOPTED setting the run does not set itself (in a config file, the config dict or the command
    line; `architecture` sets the shape keys) from `pretrained_model`'s checkpoint. A setting the run sets to another
    value stays an error (`check_compatible`), naming both. Returns what it took."""
    path = config["pretrained_model"]
    if not path:
        return {}
    trained = read(path, bool(config["trust_checkpoint"]))["config"]
    given = set(config.file_config_dict) | set(config.variable_config_dict) | set(config.cmd_config_dict)
    if "architecture" in given:
        given |= set(SHAPE_KEYS)
    adopted = {key: trained_value(trained, key) for key in ADOPTED
               if key not in given and config[key] != trained_value(trained, key)}
    for key, value in adopted.items():
        config[key] = value
    return adopted


def describe_adopted(config, adopted):
    """The log line naming what `adopt_settings` took (logged once the run's log exists)."""
    return (f"pretrained_model {config['pretrained_model']}: settings from the checkpoint: "
            + ", ".join(f"{k}={v!r}" for k, v in adopted.items()))


def check_compatible(config, checkpoint, path, text_fields):
    """A clear error naming both values for every setting that differs from the checkpoint's."""
    trained = checkpoint["config"]
    differing = [f"{key} is {config[key]!r} here but {trained_value(trained, key)!r} in the checkpoint"
                 for key in MUST_MATCH if config[key] != trained_value(trained, key)]
    trained_fields = trained["text_fields"]
    trained_fields = [trained_fields] if isinstance(trained_fields, str) else list(trained_fields)
    if len(trained_fields) != len(text_fields):
        differing.append(f"text_fields is {text_fields} here but {trained_fields} in the checkpoint "
                         "(the adapter takes one vector per field)")
    if differing:
        raise ValueError(f"pretrained_model {path}: " + "; ".join(differing))


def selected(state, prefixes, path):
    """The checkpoint's weights that `pretrained_parameters` names (parameter-name prefixes; None: all of them).
    The rest keep the run's own initial weights: which part of a pre-trained model carries over."""
    if prefixes is None:
        return state
    prefixes = [prefixes] if isinstance(prefixes, str) else list(prefixes)
    unmatched = [prefix for prefix in prefixes if not any(key.startswith(prefix) for key in state)]
    if not prefixes or unmatched:
        modules = sorted({key.split(".")[0] for key in state})
        raise ValueError(f"pretrained_parameters: {unmatched or prefixes} names no parameter of pretrained_model "
                         f"{path}; expected a list of parameter-name prefixes, such as {modules}")
    return {key: value for key, value in state.items() if key.startswith(tuple(prefixes))}


def tokenizer_proto(checkpoint):
    return checkpoint["other_parameter"]["tokenizer_proto"]
