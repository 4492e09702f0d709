"""The front page's headline table compares SRT with SASRec-CE at one budget: converged runs where both have them,
else runs stopped after the same number of epochs, else each side's runs that trained at least as long as the
other's longest."""

import os

import pytest

from conftest import REPO


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import quality

    return quality


def run(label, variant, seed, ndcg, epochs, stopped_by):
    return {"dataset": "d", "label": label, "variant": variant, "seed": seed, "test": {"ndcg@5": ndcg},
            "epochs_run": epochs, "stopped_by": stopped_by}


def short(label, variant, seed, ndcg, epochs):
    """A run an epoch limit stopped."""
    return run(label, variant, seed, ndcg, epochs, f"epoch limit ({epochs} of the schedule's 50)")


def converged(label, variant, seed, ndcg, epochs):
    return run(label, variant, seed, ndcg, epochs, "early stopping or max epochs")


def cells(quality, records):
    """The cells of the headline's one dataset row."""
    return [c.strip() for c in quality.headline(records).splitlines()[2].split("|")[1:-1]]


def test_runs_stopped_after_different_epochs_are_compared_at_the_budget_both_reached(quality):
    records = [short("SASRec-CE", "default", 1, 0.050, 4),
               short("SASRec-CE", "default", 2, 0.060, 12),
               short("SRT-1K", "default", 1, 0.040, 4),
               short("SRT-1K", "history_match", 1, 0.090, 12),
               short("SRT-1K", "history_match", 2, 0.096, 12)]
    row = cells(quality, records)
    # SASRec-CE's cell has all its runs; each ratio only those at the other side's budget.
    assert row[1] == "0.0550 ± 0.0071"
    assert row[3] == "0.80x * (both after 4 epochs: 1 / 1 seeds)"
    assert row[5] == "1.55x * (both after 12 epochs: 1 / 2 seeds)"


def test_where_both_have_converged_runs_those_are_compared(quality):
    records = [short("SASRec-CE", "default", 1, 0.038, 26),
               converged("SASRec-CE", "default", 2, 0.040, 50),
               short("SRT-1K", "default", 1, 0.038, 23),
               converged("SRT-1K", "default", 2, 0.044, 48),
               converged("SRT-1K", "history_match", 1, 0.060, 50)]
    row = cells(quality, records)
    assert row[1] == "0.0390 ± 0.0014"
    assert (row[3], row[5]) == ("1.10x (converged runs only: 1 / 1 seeds)", "1.50x (converged runs only: 1 / 1 seeds)")


def test_converged_runs_are_compared_as_they_are(quality):
    records = [converged("SASRec-CE", "default", 1, 0.050, 30),
               converged("SASRec-CE", "default", 2, 0.054, 20),
               converged("SRT-1K", "default", 1, 0.052, 25),
               short("SRT-1K", "history_match", 1, 0.078, 21)]
    row = cells(quality, records)
    assert (row[3], row[5]) == ("1.00x", "1.50x *")


def test_a_side_that_stopped_short_is_against_the_other_sides_runs_that_trained_at_least_as_long(quality):
    records = [short("SASRec-CE", "default", 1, 0.050, 4),
               short("SASRec-CE", "default", 2, 0.068, 20),
               converged("SASRec-CE", "default", 3, 0.066, 14),
               short("SRT-1K", "default", 1, 0.040, 4),
               short("SRT-1K", "history_match", 1, 0.100, 16),
               short("SRT-1K", "history_match", 2, 0.104, 16)]
    row = cells(quality, records)
    assert row[3] == "0.80x * (both after 4 epochs: 1 / 1 seeds)"
    # No budget both stopped at: SASRec-CE's 4-epoch run had less than SRT's 16 and is left out; its converged run
    # and its 20-epoch one are in.
    assert row[5] == "1.52x * (each after 16 epochs or more, or converged: 2 / 2 seeds)"
