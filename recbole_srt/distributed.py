"""Data-parallel runs: one model trained by several processes, started by torchrun (env://, one node or many) or by
RecBole's `nproc` key (processes spawned on this machine).

RecBole 1.2.1's own path hard-codes NCCL and tcp://, weights evaluation by batch counts and pads evaluated users with
duplicates; this module replaces those parts and keeps the rest (its DistributedSampler for training data, its
`single_spec` / `local_rank` / `world_size` keys, so RecBole's models and loaders behave as under RecBole).
"""

import contextlib
import os
import socket
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

BACKENDS = ("gloo", "nccl")
# Keys that legitimately differ between the processes of one run.
_PER_PROCESS_KEYS = {"local_rank", "rank", "device", "state", "show_progress", "verbose", "gpu_id"}
# Per-user rows of RecBole's evaluation data struct (top-k and rank metrics), gathered across processes.
_PER_USER_KEYS = ("rec.topk", "rec.meanrank", "rec.items")


def launched_by_torchrun():
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def requested(config_dict):
    """True under torchrun with several processes, or in a process that RecBole's `nproc` spawn started."""
    spawned = "local_rank" in config_dict and int(config_dict.get("world_size") or 1) > 1
    return launched_by_torchrun() or spawned


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def init(config_dict):
    """Join the process group and fill RecBole's keys: single_spec False, local_rank, world_size, device; and
    `rank` (global). Device: cuda:LOCAL_RANK when `gpu_id` is set and CUDA exists, else the CPU."""
    gpu_id = config_dict["gpu_id"]
    gpu_id = ",".join(map(str, gpu_id)) if isinstance(gpu_id, (tuple, list)) else str(gpu_id)
    config_dict["gpu_id"] = gpu_id
    if launched_by_torchrun():
        rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
        world_size, init_method = int(os.environ["WORLD_SIZE"]), "env://"
    else:  # RecBole's spawn: it restricts the visible GPUs to gpu_id, as RecBole does
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_id
        local_rank = int(config_dict["local_rank"])
        rank, world_size = local_rank + int(config_dict.get("offset") or 0), int(config_dict["world_size"])
        init_method = f"tcp://{config_dict.get('ip') or 'localhost'}:{config_dict.get('port')}"
    use_cuda = len(gpu_id) > 0 and torch.cuda.is_available()
    backend = config_dict.get("dist_backend") or ("nccl" if use_cuda else "gloo")
    if backend not in BACKENDS:
        raise ValueError(f"dist_backend: '{backend}' is not one of {BACKENDS}")
    if backend == "nccl" and not use_cuda:
        raise ValueError("dist_backend: 'nccl' needs CUDA devices (gpu_id set and CUDA available); use 'gloo' on CPUs")
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise ValueError(f"process {rank} has local rank {local_rank} but this node has {torch.cuda.device_count()} "
                         "visible GPUs: start at most one process per GPU")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # A timeout instead of a hang when a process never arrives (e.g. nodes started with different world sizes).
        timeout = timedelta(seconds=float(config_dict.get("dist_timeout") or 600))
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size, timeout=timeout)
    elif dist.get_world_size() != world_size:
        raise ValueError(f"the process group has {dist.get_world_size()} processes, this run asks for {world_size}")
    config_dict.update(single_spec=False, local_rank=local_rank, rank=rank, world_size=world_size, device=device)
    if rank != 0:  # one process logs and shows progress
        config_dict.update(state="error", show_progress=False, verbose=False)


class PeerTimeout(RuntimeError):
    """Another process of the run did not answer within dist_timeout."""


@contextlib.contextmanager
def explaining_timeouts(config):
    """gloo and NCCL report a stalled peer as "Timed out waiting 30000ms for send operation": say which process
    waited, for how long, and what to check."""
    try:
        yield
    except RuntimeError as error:
        message = str(error)
        if not is_distributed(config) or "timed out" not in message.lower() and "timeout" not in message.lower():
            raise
        raise PeerTimeout(
            f"process {config['rank']} of {config['world_size']} waited dist_timeout ({config['dist_timeout'] or 600} "
            f"s) for the other processes and got no answer ({message.strip().splitlines()[-1][:200]}). One of them "
            "is stopped (Ctrl-Z, SIGSTOP), hung or dead: check that all of them are running and the end of each "
            "one's log (log/MODEL/), and the network between nodes; raise dist_timeout if a step legitimately takes "
            "longer (e.g. evaluating a large catalog)"
        ) from error


def as_single_process(config):
    """A checkpoint's config, made for this one process: a distributed run's checkpoint opens anywhere."""
    if config["single_spec"]:
        return
    use_cuda = config["device"].type == "cuda" and torch.cuda.is_available()
    config.final_config_dict.update(single_spec=True, local_rank=0, rank=0, world_size=1,
                                    device=torch.device("cuda" if use_cuda else "cpu"))


def is_distributed(config):
    return not config["single_spec"]


def is_main_process(config):
    return config["single_spec"] or dist.get_rank() == 0


def check_same_settings(config):
    """Every process must run the same experiment: a clear error naming the keys that differ, not a hang later."""
    mine = {k: repr(v) for k, v in config.final_config_dict.items() if k not in _PER_PROCESS_KEYS}
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    differing = sorted({k for other in everyone for k in set(other) | set(mine) if other.get(k) != mine.get(k)})
    if differing:
        raise ValueError(f"the {len(everyone)} processes of this run were started with different settings: "
                         f"{', '.join(differing)} (start every node with the same command)")


def check_sizes(config, train_data, eval_loaders):
    """Every process needs training batches and evaluation users: fewer is a mistake, reported before training."""
    world = config["world_size"]
    if config["train_batch_size"] < world or config["train_batch_size"] % world:
        raise ValueError(f"train_batch_size {config['train_batch_size']} is the global batch: it must be a multiple "
                         f"of the {world} processes (each takes an equal share)")
    for name, loader in (("training samples", train_data), *eval_loaders):
        if loader is not None and loader.sample_size < world:
            raise ValueError(f"{loader.sample_size} {name} for {world} processes: use at most that many processes")


def shared_path(path):
    """Rank 0's choice of a path (checkpoint names contain times and random parts), used by every process."""
    holder = [path]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def user_shard(loader):
    """This process's evaluation batches: users rank, rank + W, ... of the loader, in batches of its step.

    RecBole's distributed loaders pad with duplicated users to equal shares; this shard has none, and
    `gather_per_user` puts the rows back in the loader's order."""
    indices = np.arange(dist.get_rank(), loader.sample_size, dist.get_world_size())
    for start in range(0, len(indices), loader.step):
        yield loader.collate_fn(indices[start : start + loader.step])


def gather_per_user(struct, device):
    """Replace the per-user rows of a RecBole data struct by all processes' rows, in the single-process order."""
    world = dist.get_world_size()
    for key in _PER_USER_KEYS:
        if key not in struct:
            continue
        mine = struct.get(key).to(device)
        counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world)]
        dist.all_gather(counts, torch.tensor([len(mine)], device=device))
        counts = [int(c) for c in counts]
        padded = torch.zeros((max(counts), *mine.shape[1:]), dtype=mine.dtype, device=device)
        padded[: len(mine)] = mine
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        rows = torch.empty((sum(counts), *mine.shape[1:]), dtype=mine.dtype, device=device)
        for rank, (part, count) in enumerate(zip(parts, counts)):
            rows[rank::world] = part[:count]
        struct.set(key, rows.cpu())
    return struct
