"""One training epoch with no host/device synchronisation inside the step.

RecBole's loop reads every batch's loss back to the host (`loss.item()`, `torch.isnan(loss)` in an `if`). On a GPU
each read waits for the step to finish, so the CPU cannot collate and copy the next batch while the GPU computes.
Here the loss sum and the first NaN step stay on the device and are read once, after the last step; batches reach
a CUDA device through pinned memory with non-blocking copies. The step itself is RecBole's: zero the gradients,
loss, (scaled) backward, optimizer step; clipping and the LR schedule hang on the optimizer's step hooks. One read
remains with fp16: torch's GradScaler checks each step's gradients for overflow on the host (bf16 and fp32 have no
scaler).
"""

import torch
from recbole.data.interaction import Interaction
from recbole.utils import set_color
from tqdm import tqdm


def to_device(interaction, device):
    """The batch on `device`; from pinned memory without blocking the host when the device is a CUDA GPU."""
    if device.type != "cuda":
        return interaction.to(device)
    return Interaction({field: values.pin_memory().to(device, non_blocking=True)
                        for field, values in interaction.interaction.items()})


def train_epoch(trainer, train_data, epoch_idx, loss_func, show_progress=False):
    """The epoch's summed loss (a tuple of sums when `loss_func` returns parts), as RecBole's `_train_epoch` returns.

    A NaN loss is reported once the epoch ends, with the step it first appeared at (RecBole raises at that step).
    """
    trainer.model.train()
    device = trainer.device
    if not trainer.config["single_spec"] and train_data.shuffle:
        train_data.sampler.set_epoch(epoch_idx)
    batches = train_data
    if show_progress:
        batches = tqdm(train_data, total=len(train_data), ncols=100, desc=set_color(f"Train {epoch_idx:>5}", "pink"))
    scaler = torch.amp.GradScaler(device.type, enabled=trainer.enable_scaler)
    loss_sums, is_tuple = None, False
    # Step counter and first NaN step as device tensors: a Python int sent each step would be a blocking copy.
    step, first_nan_step = torch.zeros((), dtype=torch.long, device=device), torch.full((), -1, device=device)
    for interaction in batches:
        trainer.optimizer.zero_grad(set_to_none=True)
        losses = loss_func(to_device(interaction, device))
        is_tuple = isinstance(losses, tuple)
        # reshape(()): a one-element loss of any shape (GCSAN's is [1]), as RecBole's .item() accepts.
        parts = torch.stack([part.detach().float().reshape(()) for part in (losses if is_tuple else (losses,))])
        loss_sums = parts if loss_sums is None else loss_sums + parts
        nan_now = torch.isnan(parts).any() & (first_nan_step < 0)
        first_nan_step = torch.where(nan_now, step, first_nan_step)
        step += 1
        scaler.scale(sum(losses) if is_tuple else losses).backward()
        scaler.step(trainer.optimizer)
        scaler.update()
    if loss_sums is None:
        raise ValueError(f"epoch {epoch_idx}: the training data yielded no batch")
    if first_nan_step.item() >= 0:
        raise ValueError(f"Training loss is nan (epoch {epoch_idx}, first at step {first_nan_step.item()})")
    sums = loss_sums.tolist()
    return tuple(sums) if is_tuple else sums[0]
