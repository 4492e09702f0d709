"""Mixed-precision training steps: bf16 or fp16 autocast around the loss (fp16 with loss scaling), fp32 by default.

The loss functions keep their logits' softmax in fp32 (SRT's sampled softmax and logQ correction cast explicitly;
cross-entropy autocasts to fp32). Evaluation stays in fp32 so metrics never depend on the training precision.
"""

import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check(precision, device):
    if precision not in PRECISIONS:
        raise ValueError(f"precision: '{precision}' is not one of {sorted(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision: 'fp16' needs a CUDA device (loss scaling); use 'bf16' on CPUs")


def autocast_loss(loss_func, precision, device):
    """`loss_func` as a plain function run under autocast to the precision's dtype (no autocast for fp32)."""
    dtype = PRECISIONS[precision]

    def loss(interaction):
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None):
            return loss_func(interaction)

    return loss
