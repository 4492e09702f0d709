"""The EWC Fisher benchmark tells the batch Fisher (what `ewc_lambda` weighs) from the per-example one (the paper's
lambda): on a loss whose gradients are known, each is what its definition says."""

import os

import pytest
import torch

from conftest import REPO
from recbole_srt.transfer.ewc import fisher_diagonal


class MeanOfProducts(torch.nn.Module):
    """loss = mean_i w * x_i: one example's gradient is x_i, the batch's their mean."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1.0))

    def calculate_loss(self, batch):
        return (self.w * batch).mean()


@pytest.fixture
def fisher_scale(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import ewc_fisher_scale

    return ewc_fisher_scale


def test_the_per_example_fisher_is_the_mean_squared_example_gradient_and_exceeds_the_batch_one(fisher_scale):
    batches = [torch.tensor([1.0, -1.0, 3.0, 1.0]), torch.tensor([2.0, 0.0, -2.0, 0.0])]
    model = MeanOfProducts()
    example, count = fisher_scale.per_example_fisher(model, batches)
    assert count == 8
    assert example["w"].item() == pytest.approx((1 + 1 + 9 + 1 + 4 + 0 + 4 + 0) / 8)
    assert fisher_diagonal(model, batches, 2)["w"].item() == pytest.approx((1.0 ** 2 + 0.0 ** 2) / 2)


def test_a_checkpoint_of_another_shape_is_named(fisher_scale):
    anchor = {"w": torch.zeros(2)}
    with pytest.raises(SystemExit, match="--finetuned other.pth: its w"):
        fisher_scale.weighted_distance({"w": torch.ones(2)}, anchor, {"w": torch.zeros(3)}, "other.pth")
    assert fisher_scale.weighted_distance({"w": torch.ones(2)}, anchor, {"w": torch.tensor([1.0, 2.0])}, "x") == 5.0
