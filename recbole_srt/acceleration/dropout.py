"""Dropout whose CPU masks are thresholded uniform draws, for every model run through our trainer.

torch's CPU dropout draws its mask with `bernoulli_`, which took 35-39% of an SRT-1K L2-H2-D64 training step on this
project's 2-core CPU (`docs/benchmarks/step_cost_cpu_dropout.md`: 92.4 of 267.0 ms in fp32, 91.0 of 233.9 in
bf16; 7 dropouts per step). Keeping a value where `torch.rand >= p` is the same distribution (kept with probability
1 - p, scaled by 1 / (1 - p)) and cost 1.8-2.7x less for a dropout's forward and backward there (a one-off timing
of [256, 50, 64] and [256, 2, 50, 50] tensors, fp32 and bf16). Other devices keep torch's fused dropout.
"""

import torch
from torch import nn


class CPUMaskDropout(nn.Dropout):
    def forward(self, input):
        if not self.training or self.p in (0, 1) or input.device.type != "cpu":
            return super().forward(input)
        uniform = torch.rand(input.shape, dtype=torch.float64 if input.dtype == torch.float64 else torch.float32,
                             device=input.device)
        scale = uniform.ge_(self.p).mul_(1 / (1 - self.p)).to(input.dtype)
        return input.mul_(scale) if self.inplace else input * scale


def use_cpu_mask_dropout(model, enabled):
    """Every torch Dropout of `model` becomes a CPUMaskDropout (or back, when not `enabled`), in place."""
    source, target = (nn.Dropout, CPUMaskDropout) if enabled else (CPUMaskDropout, nn.Dropout)
    for module in model.modules():
        if type(module) is source:
            module.__class__ = target
