"""Weight-space ensembles of a fine-tuned model and its pre-trained start: the weights, and the benchmark's choice."""

import os

import pytest
import torch

from conftest import REPO
from recbole_srt.transfer.interpolate import interpolated_state, pretrained_start


def test_shared_weights_move_between_the_two_and_added_ones_keep_their_fine_tuned_values():
    start = {"w": torch.zeros(2, 2), "b": torch.tensor([2.0, 4.0])}
    finetuned = {"w": torch.ones(2, 2), "b": torch.tensor([0.0, 0.0]), "transformer_gate": torch.tensor(0.7),
                 "steps": torch.tensor([3])}
    quarter = interpolated_state(finetuned, start, 0.25)
    assert torch.equal(quarter["w"], torch.full((2, 2), 0.25)) and torch.equal(quarter["b"], torch.tensor([1.5, 3.0]))
    assert quarter["transformer_gate"].item() == pytest.approx(0.7) and torch.equal(quarter["steps"], torch.tensor([3]))
    assert torch.equal(interpolated_state(finetuned, start, 0.0)["b"], start["b"])
    assert torch.equal(interpolated_state(finetuned, start, 1.0)["w"], finetuned["w"])


@pytest.mark.parametrize("start, alpha, message", [
    ({"w": torch.zeros(2)}, 1.5, r"alpha is a weight in \[0, 1\], got 1.5"),
    ({"w": torch.zeros(3)}, 0.5, r"\['w'\] have no counterpart"),
    ({"other": torch.zeros(2)}, 0.5, r"\['other'\] have no counterpart"),
])
def test_bad_interpolations_are_clear_errors(start, alpha, message):
    with pytest.raises(ValueError, match=message):
        interpolated_state({"w": torch.ones(2)}, start, alpha)


def test_a_run_without_a_pretrained_model_has_no_start():
    with pytest.raises(ValueError, match="ml-100k was not fine-tuned from a pretrained_model"):
        pretrained_start({"pretrained_model": None, "dataset": "ml-100k", "trust_checkpoint": False})


def test_a_run_that_took_part_of_its_pretrained_model_moves_only_that_part():
    release = os.path.join(REPO, "pretrained", "srt-1k-amazon7-text-match", "srt-1k-amazon7-text-match.pth")
    config = {"pretrained_model": release, "dataset": "Amazon_Beauty", "trust_checkpoint": False}
    everything = pretrained_start({**config, "pretrained_parameters": None})
    assert "trm_encoder.layer.0.feed_forward.dense_1.weight" in everything
    start = pretrained_start({**config, "pretrained_parameters": ["lexical_match", "repeat_match"]})
    assert set(start) == {"lexical_match.weight", "repeat_match.weight"}
    finetuned = {"repeat_match.weight": torch.zeros(20), "position_embedding.weight": torch.ones(20, 64)}
    halfway = interpolated_state(finetuned, {"repeat_match.weight": start["repeat_match.weight"]}, 0.5)
    assert torch.equal(halfway["repeat_match.weight"], start["repeat_match.weight"] / 2)
    assert torch.equal(halfway["position_embedding.weight"], finetuned["position_embedding.weight"])


@pytest.fixture
def benchmark(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import transfer_interpolation

    return transfer_interpolation


def test_alpha_is_chosen_on_validation_and_the_table_compares_its_test_with_alpha_1(benchmark):
    points = [{"alpha": 0.5, "valid_ndcg": 0.06, "test_ndcg": 0.050, "test_hit": 0.08},
              {"alpha": 0.8, "valid_ndcg": 0.07, "test_ndcg": 0.062, "test_hit": 0.09},
              {"alpha": 0.9, "valid_ndcg": 0.07, "test_ndcg": 0.061, "test_hit": 0.09},
              {"alpha": 1.0, "valid_ndcg": 0.065, "test_ndcg": 0.060, "test_hit": 0.09}]
    assert benchmark.chosen(points)["alpha"] == 0.9  # a tie on validation goes to the smaller change
    payload = {"alphas": [0.5, 0.8, 0.9, 1.0], "machine": {"cpu": "test"},
               "runs": [{"label": "a", "checkpoint": "a.pth", "dataset": "toy", "seed": 1,
                         "pretrained_model": "p.pth", "points": points}]}
    table = benchmark.table(payload)
    assert "| a | toy | 1 | 0.0600 | 0.9 | 0.0700 (0.0650) | 0.0610 | 1.017x |" in table
    assert "| 0.5 | 0.0500 (0.0600) |" in table
