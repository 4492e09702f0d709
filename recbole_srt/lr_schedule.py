"""The paper's one-cycle learning-rate policy: linear warm-up for the first third of the steps, then cosine decay."""

import math

from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("one_cycle", "constant")


class OneCycle:
    """LR factor at optimizer step s: s/w during warm-up (w = warmup_fraction * total), then a cosine from 1 to 0."""

    def __init__(self, total_steps, warmup_fraction=1 / 3):
        if total_steps < 1:
            raise ValueError(f"one-cycle schedule needs at least one optimizer step, got {total_steps}")
        self.total_steps = total_steps
        self.warmup_steps = max(1, round(total_steps * warmup_fraction))

    def __call__(self, step):
        if step < self.warmup_steps:
            return step / self.warmup_steps
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def warming_up(scheduler):
    """Whether `scheduler` (build_scheduler's, or None) has not yet brought the learning rate to its peak."""
    schedule = scheduler.lr_lambdas[0] if scheduler is not None else None
    return isinstance(schedule, OneCycle) and scheduler.last_epoch < schedule.warmup_steps


def build_scheduler(name, optimizer, total_steps):
    """A LambdaLR for `name`, or None for a constant learning rate."""
    if name not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got '{name}'")
    if name == "constant":
        return None
    return LambdaLR(optimizer, OneCycle(total_steps))
