"""The breakdown of a transfer run's test metrics by the test item's training count: buckets, NDCG and HIT."""

import math
import os

import pytest
import torch

from conftest import REPO


@pytest.fixture
def by_popularity(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import transfer_by_popularity

    return transfer_by_popularity


def test_bucket_names_cover_every_count(by_popularity):
    assert by_popularity.bucket_names([1, 5, 20]) == ["0", "1-4", "5-19", "20+"]
    assert by_popularity.bucket_names([2, 3]) == ["0-1", "2", "3+"]


def test_metrics_per_bucket_from_ranks(by_popularity):
    counts = torch.tensor([0, 0, 3, 4, 7, 250])
    ranks = torch.tensor([0, 9000, 1, 5, 4, 2])
    rows = {row["bucket"]: row for row in by_popularity.by_bucket(counts, ranks, [1, 5, 100])}
    assert [(b, rows[b]["users"]) for b in rows] == [("0", 2), ("1-4", 2), ("5-99", 1), ("100+", 1), ("all", 6)]
    assert rows["0"]["ndcg"] == pytest.approx(0.5) and rows["0"]["hit"] == 0.5
    assert rows["1-4"]["ndcg"] == pytest.approx(1 / math.log2(3) / 2)  # rank 5 is outside the top 5
    assert rows["5-99"]["ndcg"] == pytest.approx(1 / math.log2(6)) and rows["100+"]["hit"] == 1
    assert rows["0"]["median_rank"] == 1 and rows["100+"]["median_rank"] == 3
    assert rows["all"]["hit"] == pytest.approx(4 / 6)


def test_empty_bucket_and_table(by_popularity):
    rows = by_popularity.by_bucket(torch.tensor([10, 30]), torch.tensor([0, 7]), [1, 20])
    assert rows[0] == {"bucket": "0", "users": 0, "ndcg": None, "hit": None, "median_rank": None}
    payload = {"dataset": "toy", "seed": 1, "negatives": 100, "edges": [1, 20], "machine": {"cpu": "test"},
               "runs": [{"label": "a", "checkpoint": "a.pth", "buckets": rows},
                        {"label": "b", "checkpoint": "b.pth", "buckets": [{**r, "ndcg": r["ndcg"] and r["ndcg"] / 2}
                                                                          for r in rows]}]}
    table = by_popularity.table(payload)
    assert "| 0 | 0 (0%) | - | - | - | - | - |" in table
    assert "| 1-19 | 1 (50%) | 1.0000 | 0.5000 | 0.50x | 1 | 1 |" in table
