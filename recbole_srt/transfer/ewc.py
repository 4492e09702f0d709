"""Elastic weight consolidation (`ewc_lambda`): while fine-tuning, a penalty
lambda / 2 * sum_i F_i (theta_i - theta*_i)^2 pulls each weight toward its pre-trained value theta*, weighted by the
diagonal Fisher information F estimated on the pre-training data (mean squared gradient of the batch-mean training
loss over `ewc_fisher_batches` batches). F is computed once per checkpoint, from the checkpoint's own dataset, and
cached next to it (`<checkpoint>.fisher-<batches>.pt`). This is the batch Fisher: Kirkpatrick et al.'s, whose lambda the
paper sets to 100, is per example and about a batch size larger (373x at batch 512, `benchmarks/ewc_fisher_scale.py`),
so the paper's strength is about 100 x 373 here.
"""

import os
from logging import getLogger

import torch
from torch import nn

from recbole_srt.checkpoint import load_checkpoint, save_checkpoint


def fisher_diagonal(model, train_data, batches):
    """{parameter name: mean squared gradient} over the first `batches` training batches."""
    device = next(model.parameters()).device
    fisher = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    model.train()
    seen = 0
    for batch in train_data:
        if seen == batches:
            break
        model.zero_grad(set_to_none=True)
        model.calculate_loss(batch.to(device)).backward()
        for name, p in model.named_parameters():
            if p.grad is not None:
                fisher[name] += p.grad.detach() ** 2
        seen += 1
    model.zero_grad(set_to_none=True)
    return {name: value / max(1, seen) for name, value in fisher.items()}


def pretraining_fisher(checkpoint_path, batches, pretraining_data):
    """The checkpoint's Fisher on its own training data: cached, or computed (and cached) now from
    `pretraining_data(checkpoint_path)` -> (model, training dataloader)."""
    cache = f"{checkpoint_path}.fisher-{batches}.pt"
    if os.path.isfile(cache):
        return load_checkpoint(cache, "cpu")
    if pretraining_data is None:
        raise ValueError(f"ewc_lambda: no Fisher information cached at {cache}, and the trainer was built without "
                         "`pretraining_data` to compute it from the pre-training data (run_recbole passes it)")
    getLogger().info(f"EWC: Fisher information of {checkpoint_path} over {batches} batches of its training data")
    model, train_data = pretraining_data(checkpoint_path)
    fisher = {name: value.cpu() for name, value in fisher_diagonal(model, train_data, batches).items()}
    save_checkpoint(fisher, cache)
    return fisher


# Parameters that fine-tuning adds (the transformer gate starts at the run's own value, the hashed id table at zero
# for the new catalog's ids): nothing to anchor them at.
UNANCHORED = ("transformer_gate", "item_id_embedding.table.weight")


class EWCPenalty(nn.Module):
    def __init__(self, model, fisher, strength):
        super().__init__()
        self.strength = strength
        anchored = [(name, p) for name, p in model.named_parameters() if name not in UNANCHORED]
        missing = [name for name, _ in anchored if name not in fisher]
        if missing:
            raise ValueError(f"ewc: the Fisher information has no entry for {missing[:3]} (another architecture?)")
        self.anchored = [p for _, p in anchored]  # a plain list: the model's own parameters, not registered twice
        for index, (name, p) in enumerate(anchored):
            self.register_buffer(f"fisher_{index}", fisher[name].to(p.device))
            self.register_buffer(f"anchor_{index}", p.detach().clone())

    def forward(self):
        total = 0.0
        for index, p in enumerate(self.anchored):
            total = total + (getattr(self, f"fisher_{index}") * (p - getattr(self, f"anchor_{index}")) ** 2).sum()
        return self.strength / 2 * total


def from_config(config, model, pretraining_data=None):
    """The EWC penalty of this run, or None (ewc_lambda 0). Anchored at the model's current (pre-trained) weights;
    `pretraining_data` as in `pretraining_fisher`."""
    strength = config["ewc_lambda"] or 0
    if strength <= 0:
        return None
    if not config["pretrained_model"]:
        raise ValueError("ewc_lambda: EWC anchors fine-tuning at pre-trained weights: set pretrained_model")
    if config["pretrained_parameters"] is not None:
        raise ValueError(f"ewc_lambda: EWC anchors every weight at pretrained_model's, but pretrained_parameters "
                         f"{config['pretrained_parameters']} starts only some there: set one or the other")
    fisher = pretraining_fisher(config["pretrained_model"], config["ewc_fisher_batches"], pretraining_data)
    return EWCPenalty(model, fisher, strength)
