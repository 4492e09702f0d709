"""The history-match weights benchmark's table of runs."""

import os

import pytest
import torch

from conftest import REPO


@pytest.fixture
def weights_benchmark(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import history_match_weights

    return history_match_weights


def run(label, lexical, repeat, ndcg):
    return {"label": label, "checkpoint": f"{label}.pth", "fields": ["title", "brand"],
            "whole": {"ndcg": ndcg, "hit": 2 * ndcg}, "history_match": {"ndcg": ndcg / 2, "hit": ndcg},
            "weights": {"lexical": lexical, "repeat": repeat}}


def test_table_lists_last_item_and_summed_weights_and_the_cosine_to_the_first_run(weights_benchmark):
    payload = {"dataset": "toy.yaml", "seed": 1, "negatives": 100, "machine": {"cpu": "test"},
               "runs": [run("release", [[2.0, 1.0], [0.5, 0.0]], [-3.0, -1.0], 0.04),
                        run("scratch", [[4.0, 2.0], [1.0, 0.0]], [-6.0, -2.0], 0.06),
                        run("other", [[0.0, 0.0], [0.0, 1.0]], [1.0, 3.0], 0.02)]}
    table = weights_benchmark.table(payload)
    assert "| release | 0.0400 | 0.0200 | 0.0400 | 2.00 | 0.50 | 3.00 | 0.50 | -3.00 | -4.00 | 1.00 |" in table
    assert "| scratch | 0.0600 | 0.0300 | 0.0600 | 4.00 | 1.00 | 6.00 | 1.00 | -6.00 | -8.00 | 1.00 |" in table
    cosine = torch.nn.functional.cosine_similarity(torch.tensor([0.0, 0, 0, 1, 1, 3]),
                                                   torch.tensor([2.0, 1, 0.5, 0, -3, -1]), dim=0).item()
    assert f"| other | 0.0200 | 0.0100 | 0.0200 | 0.00 | 0.00 | 0.00 | 1.00 | 1.00 | 4.00 | {cosine:.2f} |" in table
