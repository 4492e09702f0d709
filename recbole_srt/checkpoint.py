"""Checkpoint files: written atomically, read as data only.

Our checkpoints hold tensors and plain values (numbers, strings, bytes, lists, dicts), so torch's weights-only
unpickler opens them with no class or function allowed: nothing in a shared file can run code when it is opened. Files
that hold pickled objects (RecBole's own, ours from before) open only when the user says they trust them.
"""

import contextlib
import importlib
import inspect
import os
import pickle
from logging import getLogger

import torch

# Packages whose classes a RecBole checkpoint legitimately holds (configs, enums, models and their layers, datasets
# that feature-aware layers keep). Their classes are rebuilt from plain attributes; none defines __setstate__.
_TRUSTED_CLASS_PACKAGES = ("recbole.", "recbole_srt.", "torch.nn.modules.")
# Plain data: numpy arrays, scalars and dtypes (numpy's own reconstruction functions) and a pickled logger, which
# pickles as getLogger(name). Every other function is refused.
_TRUSTED_FUNCTIONS = {
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct",  # the same two under numpy 2
    "numpy._core.multiarray.scalar",
    "logging.getLogger",
}
_TRUSTED_NUMPY_CLASSES = {"numpy.ndarray", "numpy.dtype"}


def save_checkpoint(state, path):
    """Protocol 2 avoids the FRAME opcode that torch's weights-only unpickler rejects (protocol 4 is unloadable).
    Written beside the target, flushed to disk and renamed over it: a run killed at any moment leaves either the
    previous file or the new one, whole."""
    path = str(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f, pickle_protocol=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_folder(os.path.dirname(os.path.abspath(path)))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _sync_folder(folder):
    """The rename itself reaches the disk (POSIX); folders cannot be opened for syncing on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _resolve(name):
    module_name, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None


def _trusted_global(name):
    """The object for a global a checkpoint may hold, or None: classes of RecBole, recbole-srt and torch.nn, numpy's
    data types, yaml's FullLoader (stored inside Config), and the few plain-data functions above."""
    if name in _TRUSTED_FUNCTIONS:
        return _resolve(name)
    obj = _resolve(name)
    if not inspect.isclass(obj):
        return None
    if name in _TRUSTED_NUMPY_CLASSES or name.startswith("numpy.dtypes.") or name == "yaml.loader.FullLoader":
        return obj
    if name.startswith(_TRUSTED_CLASS_PACKAGES) and obj.__module__.startswith(_TRUSTED_CLASS_PACKAGES):
        # nn.Module's __setstate__ only restores attributes; any other class must not run code when rebuilt.
        if issubclass(obj, torch.nn.Module) or _defines_no_setstate(obj):
            return obj
    return None


def _defines_no_setstate(cls):
    return all("__setstate__" not in vars(base) for base in cls.__mro__ if base is not object)


@contextlib.contextmanager
def trusted_checkpoint_globals(path):
    """Within this block, torch's weights-only unpickler accepts the globals of checkpoint `path` that a RecBole
    checkpoint legitimately holds: classes of RecBole, recbole-srt and torch.nn, numpy arrays and dtypes, yaml's
    FullLoader. Any other global is refused, naming it, before anything is unpickled. Only for files the user says
    they trust: an admitted class may still be called with arguments taken from the file."""
    path = str(path)
    allowed = []
    for name in pickled_globals(path):
        obj = _trusted_global(name)
        if obj is None:
            raise CheckpointError(
                f"checkpoint {path} holds the global '{name}', which is not a class of RecBole, recbole-srt or "
                "torch.nn nor numpy data; refusing to unpickle it, trusted or not"
            )
        allowed.append(obj)
        if name == "numpy.dtype":
            allowed += _numpy_dtype_classes()
    with torch.serialization.safe_globals(allowed):
        yield


def _numpy_dtype_classes():
    """A pickled dtype is rebuilt as an instance of its class in `numpy.dtypes` (StrDType, Float64DType, ...), which
    the checkpoint never names as a global."""
    import numpy as np

    return [cls for cls in vars(np.dtypes).values() if inspect.isclass(cls) and issubclass(cls, np.dtype)]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or not safely; the message names the file and what to do."""


def pickled_globals(path):
    """The globals a checkpoint's pickle names beyond tensors and plain values; a clear error for a file that is not
    a whole PyTorch checkpoint."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError, KeyError) as error:
        raise CheckpointError(f"checkpoint {path} is not a whole PyTorch checkpoint (truncated, or another kind of "
                              f"file): {_first_sentence(error)}") from error


def _first_sentence(error):
    """torch's and miniz's messages run on for lines; their first sentence says what happened."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].split(". ")[0].rstrip(".")


def load_checkpoint(path, device, trust=False):
    """A checkpoint's contents, read by torch's weights-only unpickler with no class or function allowed: our
    checkpoints hold tensors and plain values only, so nothing in a file can run code when it is opened.

    A file that holds pickled objects (RecBole's own checkpoints, ours written before they were data-only) is refused,
    naming the file and the objects, unless `trust` says the user trusts whoever made it; then only what
    `trusted_checkpoint_globals` admits is rebuilt, and the log says so."""
    path = str(path)
    foreign = pickled_globals(path)
    if foreign and not trust:
        foreign = sorted(foreign)
        names = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise CheckpointError(
            f"checkpoint {path} holds pickled objects ({names}), not data only: it was written by RecBole or by "
            "recbole-srt before checkpoints held data only, and opening it could run code chosen by its author. If "
            "you trust whoever made it, open it with trust_checkpoint: True (run_recbole --trust_checkpoint=True; "
            "--trust-checkpoint for recommend and release)"
        )
    context = trusted_checkpoint_globals(path) if foreign else contextlib.nullcontext()
    try:
        with context:
            if foreign:
                getLogger().warning(f"checkpoint {path}: rebuilding its pickled objects, as trust_checkpoint allows")
            return torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"checkpoint {path} could not be read: {_first_sentence(error)}") from error


def data_only_other_parameter(other):
    """RecBole's `other_parameter()`, less the modules some models list there (the feature embedding layers of
    SASRecF, FDSA, GRU4RecF, DIN, DIEN): their weights are in the state dict and the rest of them is rebuilt from the
    dataset when the model is built, so the checkpoint stays data only."""
    if other is None:
        return None
    return {key: value for key, value in other.items() if not isinstance(value, torch.nn.Module)}
