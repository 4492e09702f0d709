"""What every benchmark script shares: building a model and its data, the machine description, output files."""

import json
import os
import statistics
import sys
import time

import torch

from recbole_srt import SRTTrainer
from recbole_srt.acceleration.precision import autocast_loss
from recbole_srt.machine import describe as machine
from recbole_srt.quick_start import prepare as prepare_run

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def prepare(model, dataset, config_dict):
    """Config, model (seeded) and the three dataloaders, exactly as run_recbole builds them."""
    sys.argv = sys.argv[:1]
    config, _, (train, valid, test), built = prepare_run(model, dataset, config_dict=config_dict)
    return config, built, train, valid, test


def trainer_for(config, model, train):
    trainer = SRTTrainer(config, model)
    trainer.set_train_item_counts(train)
    return trainer


def first_batches(train, count, device, batch_size=None):
    """The first `count` training batches, already on `device` (only full ones of `batch_size` rows, if given)."""
    batches = []
    for batch in train:
        if batch_size is None or len(batch) == batch_size:
            batches.append(batch.to(device))
        if len(batches) == count:
            break
    return batches


def training_step(trainer):
    """The trainer's own step as a function of a batch: its loss function under the training precision's autocast,
    fp16 loss scaling, and the clipping and LR schedule hooked on the optimizer's step."""
    model, optimizer, device = trainer.model, trainer.optimizer, trainer.device
    loss_func = autocast_loss(trainer.loss_module, trainer.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=trainer.precision == "fp16")
    model.train()

    def step(batch):
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss_func(batch)).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def seconds_per_step(trainer, batches, warmup=1):
    """Median seconds of the trainer's step over `batches` after the first `warmup` (allocators, optimizer state,
    compilation). A CUDA device is synchronised around each step."""
    step, device = training_step(trainer), trainer.device
    times = []
    for index, batch in enumerate(batches):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def top_operators(trainer, batches, count=12):
    """Where a step's time goes: the operators with the most self time over `batches` (run after warm-up), device
    time on a GPU and CPU time otherwise, in ms per step."""
    step, on_gpu = training_step(trainer), trainer.device.type == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if on_gpu else [])
    with torch.profiler.profile(activities=activities) as profile:
        for batch in batches:
            step(batch)
        if on_gpu:
            torch.cuda.synchronize()
    self_time = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    events = sorted(profile.key_averages(), key=lambda e: getattr(e, self_time), reverse=True)[:count]
    return [{"operator": e.key, "calls_per_step": e.count / len(batches),
             "self_ms_per_step": getattr(e, self_time) / 1000 / len(batches)} for e in events]


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name, payload, render):
    """Write results/<name>.json (with the machine) and print `render(payload)`, the table that
    `python -m benchmarks.report` puts in the documentation."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    payload = {"machine": machine(), **payload}
    with open(os.path.join(RESULTS_DIR, f"{name}.json"), "w") as f:
        json.dump(payload, f, indent=2)
    print(render(payload))


def labelled_checkpoint(text):
    """`--runs LABEL=CHECKPOINT`: (label, path) of a checkpoint that exists."""
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise SystemExit(f"--runs: expected LABEL=CHECKPOINT, got {text!r}")
    if not os.path.isfile(path):
        raise SystemExit(f"--runs {label}: no checkpoint at {path}")
    return label, path


def machine_line(machine_description):
    return f"Machine: {json.dumps(machine_description)}"
