"""Model resolution, plugin first, then RecBole: the bottom of the package, importing nothing of it."""

import importlib
import importlib.util
import sys


_PLUGIN_MODELS = {"SRT": "recbole_srt.model.srt"}
_SEQUENTIAL_PACKAGE = "recbole.model.sequential_recommender"
_RECBOLE_SUBMODULES = (
    "general_recommender",
    "context_aware_recommender",
    "sequential_recommender",
    "knowledge_aware_recommender",
)


def register_models():
    """Alias our model modules under RecBole's sequential package so stock `recbole.utils.get_model` resolves them."""
    for name, module_path in _PLUGIN_MODELS.items():
        sys.modules.setdefault(f"{_SEQUENTIAL_PACKAGE}.{name.lower()}", importlib.import_module(module_path))


def get_model(model_name):
    """Return the model class named `model_name`; a clear ValueError (not RecBole's lightgbm ImportError) otherwise."""
    if model_name in _PLUGIN_MODELS:
        return getattr(importlib.import_module(_PLUGIN_MODELS[model_name]), model_name)
    for sub in _RECBOLE_SUBMODULES:
        module_path = f"recbole.model.{sub}.{model_name.lower()}"
        if importlib.util.find_spec(module_path) is not None:
            module = importlib.import_module(module_path)
            if hasattr(module, model_name):
                return getattr(module, model_name)
    raise ValueError(
        f"unknown model '{model_name}': not a recbole-srt model ({', '.join(_PLUGIN_MODELS)}) "
        "nor a RecBole built-in model (names are case-sensitive, e.g. SASRec, BERT4Rec)"
    )

