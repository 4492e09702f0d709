"""RecBole's Config, taught to resolve plugin models and to read the plugin's property files."""

from enum import Enum
from importlib import resources
from pathlib import Path

import torch
from recbole.config import Config as RecBoleConfig
from recbole.utils import ModelType, enum_type

from recbole_srt import architectures, distributed
from recbole_srt.registry import get_model

# Keys RecBole reads without declaring them in any yaml (distributed runs, quick-start internals).
_RUNTIME_KEYS = {"model", "dataset", "config_files", "nproc", "world_size", "ip", "port", "offset", "local_rank",
                 "rank"}


def properties_dir():
    """The plugin's yaml files: the top-level `properties/` folder, installed as `recbole_srt.properties`."""
    try:
        return resources.files("recbole_srt.properties")
    except ModuleNotFoundError:  # imported from a source checkout that was installed elsewhere
        return Path(__file__).resolve().parent.parent / "properties"


class Config(RecBoleConfig):
    """Priority, lowest first: RecBole's defaults, plugin model yaml, plugin model-on-dataset yaml, config files,
    config dict, command line (the same order RecBole uses for its own model yaml). `command_line=False`: a Config
    that a program builds for itself, not for its run, ignores the program's arguments."""

    def __init__(self, *args, command_line=True, **kwargs):
        self.command_line = command_line
        super().__init__(*args, **kwargs)

    def _load_cmd_line(self):
        return super()._load_cmd_line() if self.command_line else {}

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model = get_model(model)
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        for path in ("overall.yaml", f"model/{model}.yaml", f"model_on_dataset/{model}_{dataset}.yaml"):
            entry = properties_dir().joinpath(path)
            if entry.is_file():
                with resources.as_file(entry) as file:
                    self._update_internal_config_dict(file)

    def _get_final_config_dict(self):
        final = super()._get_final_config_dict()
        # Stock RecBole refuses its own defaults for CE-trained sequential models (SASRec, BERT4Rec): overall.yaml
        # asks for one uniform negative, then _set_default_parameters rejects it. Drop it unless the user asked.
        if (
            final.get("MODEL_TYPE") == ModelType.SEQUENTIAL
            and final.get("loss_type") == "CE"
            and "train_neg_sample_args" not in self.external_config_dict
        ):
            final["train_neg_sample_args"] = None
        architectures.apply(final, [self.file_config_dict, self.variable_config_dict, self.cmd_config_dict])
        return final

    def _init_device(self):
        """Under torchrun or RecBole's `nproc` spawn: our process-group setup (gloo or NCCL, env:// or tcp://)."""
        if distributed.requested(self.final_config_dict):
            distributed.init(self.final_config_dict)
        else:
            super()._init_device()
            self.final_config_dict["rank"] = 0

    def _set_eval_neg_sample_args(self, phase):
        """`sampledN` modes run on RecBole's full-sort loaders; the trainer draws the N negatives itself."""
        mode = self.final_config_dict["eval_args"]["mode"][phase]
        sampled = self.final_config_dict.setdefault("sampled_eval", {})
        sampled[phase] = None
        if isinstance(mode, str) and mode.startswith("sampled"):
            count = mode[len("sampled"):]
            if not count.isdigit() or int(count) < 1:
                raise ValueError(f"eval_args.mode.{phase}: '{mode}' must be 'sampled' followed by a positive count, "
                                 "e.g. sampled10000")
            sampled[phase] = int(count)
            self.final_config_dict["eval_args"]["mode"][phase] = "full"
        super()._set_eval_neg_sample_args(phase)

    def unknown_keys(self, keys):
        """Keys that no default yaml of this model/dataset declares: almost always a typo."""
        known = set(self.internal_config_dict) | _RUNTIME_KEYS
        for names in self.parameters.values():
            known.update(names)
        return sorted(k for k in keys if k not in known)

    @classmethod
    def from_checkpoint(cls, checkpoint, path):
        """The Config a checkpoint was trained with, for this one process on this machine's device. A trusted
        checkpoint from before data-only checkpoints holds the Config object itself."""
        stored = checkpoint["config"]
        if isinstance(stored, RecBoleConfig):
            distributed.as_single_process(stored)
            return stored
        meta = checkpoint.get("config_meta")
        if meta is None:
            raise ValueError(f"checkpoint {path} holds a released model's settings, not a whole run's configuration: "
                             "use it as pretrained_model on a dataset of your own")
        config = object.__new__(cls)
        final = dict(stored)
        for key, enum_name in meta["enums"].items():
            enum_class = getattr(enum_type, enum_name, None)
            is_enum = isinstance(enum_class, type) and issubclass(enum_class, Enum)
            if not is_enum or final[key] not in enum_class.__members__:
                raise ValueError(f"checkpoint {path}: setting {key} is '{final[key]}' of '{enum_name}', which is not "
                                 "one of RecBole's enums")
            final[key] = enum_class[final[key]]
        use_cuda = bool(str(final.get("gpu_id") or "")) and torch.cuda.is_available()
        final.update(single_spec=True, local_rank=0, rank=0, world_size=1,
                     device=torch.device("cuda" if use_cuda else "cpu"))
        config.final_config_dict = final
        config.parameters = {k: list(v) for k, v in meta["parameters"].items()}
        config.external_config_dict = dict(meta["external"])
        config.file_config_dict, config.variable_config_dict, config.cmd_config_dict = {}, dict(meta["external"]), {}
        config.internal_config_dict = {}
        config.model, config.dataset = final["model"], final["dataset"]
        config.model_class = get_model(config.model)
        config.yaml_loader = config._build_yaml_loader()
        config.compatibility_settings()
        return config


def checkpoint_settings(config):
    """(settings, meta): a config (ours or RecBole's) as the plain values a data-only checkpoint holds. `settings` is
    every setting by key (RecBole's enums by name, the device left out: it is the loading machine's); `meta` says which
    settings are enums and keeps what `Config.from_checkpoint` needs besides."""
    settings, enums = {}, {}
    for key, value in config.final_config_dict.items():
        if key == "device":
            continue
        if isinstance(value, Enum):
            enums[key], value = type(value).__name__, value.name
        settings[key] = plain_value(value, key)
    meta = {"enums": enums, "parameters": {k: list(v) for k, v in config.parameters.items()},
            "external": plain_value(config.external_config_dict, "external settings")}
    return settings, meta


def plain_value(value, key):
    """`value` as data a weights-only unpickler reads (numbers, strings, lists, tuples, dicts), or a clear error."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy and torch scalars (np.float64 is a float)
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(plain_value(v, key) for v in value)
    if isinstance(value, dict):
        return {k: plain_value(v, f"{key}.{k}") for k, v in value.items()}
    raise ValueError(f"setting {key}: a {type(value).__name__} ({value!r}) cannot be stored in a data-only "
                     "checkpoint; give numbers, strings, lists or dicts")
