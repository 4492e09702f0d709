"""Every random number generator a training run draws from, as tensors and plain values a data-only checkpoint
holds, so that a resumed run draws exactly what the uninterrupted one would have: torch's (CPU and the run's
accelerator, `config['device']`), numpy's and Python's global generators, and the training dataloader's own
shuffling generator."""

import random

import numpy as np
import torch


def capture(device, loader_generator=None):
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        # The run's own device only: under DDP each process's other devices' generators belong to other processes.
        "device": ({"type": device.type, "state": torch.get_device_module(device).get_rng_state(device)}
                   if device.type != "cpu" else None),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
        "loader": loader_generator.get_state() if loader_generator is not None else None,
    }


def restore(state, device, loader_generator=None):
    torch.set_rng_state(state["torch"])
    # A checkpoint written on another kind of device (or before this key existed) has no state for this one.
    accelerator = state.get("device")
    if accelerator is not None and accelerator["type"] == device.type:
        torch.get_device_module(device).set_rng_state(accelerator["state"], device)
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    if loader_generator is not None and state["loader"] is not None:
        loader_generator.set_state(state["loader"])
