import math

import pytest
import torch
from recbole.evaluator import Collector
from scipy.stats import chi2_contingency, chisquare

from helpers import build
from recbole_srt import SRTTrainer
from recbole_srt.evaluation.candidates import CandidateSampler, keyed_permutation
from recbole_srt.evaluation.ranking import positive_ranks, random_tie_break, rank_metrics, topk_hits


def sampled(phase_modes, **extra):
    return {"eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": phase_modes},
            "metrics": ["NDCG", "Hit", "MRR"], "topk": [5, 10], "valid_metric": "NDCG@5", **extra}


def evaluate(model_name, fast_config, modes, **extra):
    config, model, (train, valid, test) = build(model_name, "ml80", fast_config, **sampled(modes, **extra))
    trainer = SRTTrainer(config, model)
    trainer.set_train_item_counts(train)
    return trainer, test


def test_without_replacement_draws_exactly_n_distinct_negatives():
    sampler = CandidateSampler(n_items=50, n_neg=30, seed=3)
    users, positives = torch.arange(200), torch.randint(1, 50, (200,))
    candidates, keep = sampler("test", users, positives)
    assert candidates.shape == (200, 30) and keep.all()
    assert all(len(set(row.tolist())) == 30 for row in candidates)
    assert not (candidates == positives.unsqueeze(1)).any() and not (candidates == 0).any()
    assert CandidateSampler(n_items=50, n_neg=10_000, seed=3).n_neg == 48  # capped at all other items


def test_candidates_depend_only_on_seed_phase_and_user():
    sampler = CandidateSampler(n_items=300, n_neg=40, seed=11)
    users, positives = torch.arange(1, 61), torch.arange(1, 61) * 3
    whole, _ = sampler("valid", users, positives)
    order = torch.randperm(60)
    shuffled, _ = sampler("valid", users[order], positives[order])
    in_pieces = torch.cat([sampler("valid", u, p)[0] for u, p in zip(users.split(7), positives.split(7))])
    as_sets = lambda rows: [frozenset(r.tolist()) for r in rows]  # noqa: E731
    assert as_sets(whole[order]) == as_sets(shuffled) and as_sets(whole) == as_sets(in_pieces)
    assert as_sets(sampler("test", users, positives)[0]) != as_sets(whole)
    assert as_sets(CandidateSampler(300, 40, seed=12)("valid", users, positives)[0]) != as_sets(whole)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 65, 1000, 4097])
def test_keyed_permutation_is_a_bijection_for_every_key(size):
    values = keyed_permutation(torch.tensor([0, 1, 12345, 2**32 - 1]), torch.arange(size), size)
    assert all(sorted(row.tolist()) == list(range(size)) for row in values)
    if size >= 64:  # different keys, different orders
        assert len({tuple(row.tolist()) for row in values}) == 4


def test_candidates_from_a_ten_million_item_catalog_without_touching_every_item():
    """The cost is O(N) per user: a 10M-item catalog is never materialised (a [users x catalog] key matrix would
    be 8 GB here)."""
    sampler = CandidateSampler(n_items=10_000_001, n_neg=500, seed=4)
    users, positives = torch.arange(64), torch.randint(1, 10_000_001, (64,))
    candidates, _ = sampler("test", users, positives)
    assert candidates.shape == (64, 500) and all(len(set(row.tolist())) == 500 for row in candidates)
    assert candidates.min() >= 1 and candidates.max() <= 10_000_000
    assert not (candidates == positives.unsqueeze(1)).any()
    assert candidates.float().mean().item() == pytest.approx(5e6, rel=0.02)  # spread over the whole catalog


def test_popularity_without_replacement_matches_weighted_keys_and_is_batch_independent():
    """Successive draws (large catalogs) and Efraimidis-Spirakis keys (small ones) sample the same distribution."""
    weights = torch.arange(41, dtype=torch.float64) ** 1.5
    successive = CandidateSampler(41, 6, seed=9, distribution="popularity", weights=weights)
    assert successive.successive
    keys = CandidateSampler(41, 6, seed=9, distribution="popularity", weights=weights)
    keys.successive = False
    users, positives = torch.arange(20000), torch.full((20000,), 40)
    drawn = {}
    for name, sampler in (("successive", successive), ("keys", keys)):
        candidates, _ = sampler("valid", users, positives)
        assert all(len(set(row.tolist())) == 6 for row in candidates[:500])
        assert not (candidates == 40).any() and not (candidates == 0).any()
        drawn[name] = torch.bincount(candidates.flatten(), minlength=41)[1:40]
    assert chi2_contingency(torch.stack([drawn["successive"], drawn["keys"]]).numpy()).pvalue > 0.001
    whole, _ = successive("valid", users[:300], positives[:300])
    pieces = torch.cat([successive("valid", u, p)[0] for u, p in zip(users[:300].split(7), positives[:300].split(7))])
    assert torch.equal(whole, pieces)


def test_uniform_candidates_cover_items_evenly():
    sampler = CandidateSampler(n_items=101, n_neg=20, seed=5)
    candidates, _ = sampler("test", torch.arange(20000), torch.ones(20000, dtype=torch.long))
    counts = torch.bincount(candidates.flatten(), minlength=101)[2:]  # item 1 is everyone's positive
    assert chisquare(counts.numpy()).pvalue > 0.001


def test_popularity_candidates_follow_the_counts():
    weights = torch.tensor([0, 1, 2, 3, 4, 10] * 1, dtype=torch.float64)
    sampler = CandidateSampler(6, 50, seed=1, distribution="popularity", weights=weights, replacement=True)
    users = torch.arange(4000)
    draws = sampler._draw("test", users.unsqueeze(1), torch.arange(50).unsqueeze(0))
    observed = torch.bincount(draws.flatten(), minlength=6)
    assert observed[0] == 0
    assert chisquare(observed[1:].numpy(), (weights[1:] / weights.sum() * draws.numel()).numpy()).pvalue > 0.001


def test_ties_never_favour_the_positive():
    users = torch.arange(5000)
    item_ids = torch.cat([torch.ones(5000, 1, dtype=torch.long), torch.arange(2, 102).expand(5000, -1)], dim=1)
    scores = torch.zeros(5000, 101)  # a model that scores every item alike
    tie_break = random_tie_break(0, "test", users, item_ids[:, 0], lambda r, c: item_ids[r, c + 1])
    ranks = positive_ranks(scores[:, :1], scores[:, 1:], torch.ones(5000, 100, dtype=torch.bool), tie_break)
    hit5 = (ranks < 5).double().mean().item()
    assert hit5 == pytest.approx(5 / 101, abs=0.01)  # random level, not 1.0 (positive first) nor 0.0


@pytest.mark.parametrize("n_items, n_neg", [(300, 200), (300, 298), (1001, 600)])
def test_excluded_items_are_exactly_the_complement_of_the_candidates(n_items, n_neg):
    sampler = CandidateSampler(n_items, n_neg, seed=4)
    assert sampler.complement_is_smaller
    users = torch.arange(500)
    positives = torch.randint(1, n_items, (500,))
    positives[:50] = sampler("test", users[:50], positives[:50])[0][:, 0]  # positives at the permutation's start too
    candidates, _ = sampler("test", users, positives)
    excluded = sampler.excluded("test", users, positives)
    assert excluded.shape == (500, n_items - 2 - n_neg)
    everything = torch.cat([candidates, excluded, positives.unsqueeze(1)], dim=1).sort(dim=1).values
    assert torch.equal(everything, torch.arange(1, n_items).expand(500, -1))


def test_drawing_the_complement_gives_the_same_metrics_as_drawing_the_candidates(fast_config, monkeypatch):
    trainer, test = evaluate("SRT", fast_config, {"valid": "sampled1000", "test": "sampled1000"})
    assert CandidateSampler(trainer.model.n_items, 1000, seed=0).complement_is_smaller  # ml80: under 2,002 items
    by_complement = trainer.evaluate(test, load_best_model=False)
    monkeypatch.setattr(CandidateSampler, "complement_is_smaller", property(lambda self: False))
    assert trainer.evaluate(test, load_best_model=False) == by_complement


def test_rank_metrics_from_zero_based_ranks():
    values = rank_metrics(torch.tensor([0, 1, 4, 5, 9000]), [5], ["ndcg", "hit", "mrr", "precision"])
    assert values["hit@5"].tolist() == [1, 1, 1, 0, 0]
    assert values["ndcg@5"].tolist() == pytest.approx([1, 1 / math.log2(3), 1 / math.log2(6), 0, 0])
    assert values["mrr@5"].tolist() == pytest.approx([1, 1 / 2, 1 / 5, 0, 0])
    assert values["precision@5"].tolist() == pytest.approx([1 / 5, 1 / 5, 1 / 5, 0, 0])


# candidates drawn; the complement (ml80: under 2,002 items)
@pytest.mark.parametrize("n_neg, k", [(20, 5), (1000, 100)])
def test_per_user_ranks_give_the_trainers_metrics(fast_config, n_neg, k):
    modes = {"valid": f"sampled{n_neg}", "test": f"sampled{n_neg}"}
    trainer, test = evaluate("SRT", fast_config, modes, topk=[k], valid_metric=f"NDCG@{k}")
    result = trainer.evaluate(test, load_best_model=False)
    positives, ranks = trainer.sampled_positive_ranks(test)
    assert len(positives) == len(ranks) == 80 and (positives > 0).all()
    in_top = ranks < k
    assert 0 < in_top.sum() < 80  # a result that can tell the two apart
    assert in_top.float().mean().item() == pytest.approx(result[f"hit@{k}"], abs=1e-4)
    ndcg = torch.where(in_top, 1 / torch.log2(ranks.double() + 2), torch.zeros(())).mean().item()
    assert ndcg == pytest.approx(result[f"ndcg@{k}"], abs=1e-4)


def test_per_user_ranks_need_a_sampled_phase(fast_config):
    trainer, test = evaluate("SRT", fast_config, {"valid": "full", "test": "full"})
    with pytest.raises(ValueError, match="phase 'test' is not evaluated against sampled negatives"):
        trainer.sampled_positive_ranks(test)


def test_constant_model_gets_random_level_metrics_through_the_trainer(fast_config, monkeypatch):
    trainer, test = evaluate("SASRec", fast_config, {"valid": "sampled20", "test": "sampled20"})
    monkeypatch.setattr(trainer.model, "full_sort_predict",
                        lambda inter: torch.zeros(len(inter), trainer.model.n_items))
    result = trainer.evaluate(test, load_best_model=False)
    assert 0.08 < result["hit@5"] < 0.42  # random level 5/21 = 0.24 over 80 users
    assert result["ndcg@5"] < 0.3


@pytest.mark.parametrize("model_name", ["SASRec", "BERT4Rec", "SRT"])
def test_sampling_every_other_item_equals_recbole_full_sort(fast_config, model_name):
    trainer, test = evaluate(model_name, fast_config, {"valid": "full", "test": "sampled100000"})
    ours = trainer.evaluate(test, load_best_model=False)
    trainer.config["sampled_eval"]["test"] = None
    recbole_full = trainer.evaluate(test, load_best_model=False)
    assert ours == recbole_full


def test_candidates_identical_across_models_and_batch_sizes(fast_config, monkeypatch):
    seen = {}
    original = SRTTrainer.score_candidates

    def record(self, interaction, item_ids):
        for user, row in zip(interaction["user_id"].tolist(), item_ids.tolist()):
            run = self.config["model"] + str(self.config["eval_batch_size"])
            seen.setdefault(run, {})[user] = (row[0], frozenset(row[1:]))
        return original(self, interaction, item_ids)

    monkeypatch.setattr(SRTTrainer, "score_candidates", record)
    modes = {"valid": "sampled50", "test": "sampled50"}
    for model_name, batch in (("SASRec", 7), ("SRT", 64)):
        trainer, test = evaluate(model_name, fast_config, modes, eval_batch_size=batch)
        first = trainer.evaluate(test, load_best_model=False)
        assert trainer.evaluate(test, load_best_model=False) == first  # deterministic across epochs
    assert seen["SASRec7"] == seen["SRT64"] and len(seen["SRT64"]) == 80


def test_with_replacement_reproduces_recbole_unin_scoring():
    """Same candidates, RecBole's own uniN scoring (scatter into -inf, top-k via its Collector) vs ours."""
    n_items, batch = 60, 30
    sampler = CandidateSampler(n_items, 40, seed=2, replacement=True)
    users, positives = torch.arange(batch), torch.randint(1, n_items, (batch,))
    candidates, keep = sampler("test", users, positives)
    item_scores = torch.randn(batch, n_items)
    item_ids = torch.cat([positives.unsqueeze(1), candidates], dim=1)
    scores = item_scores.gather(1, item_ids)
    tie_break = random_tie_break(2, "test", users, positives, lambda r, c: candidates[r, c])
    ranks = positive_ranks(scores[:, :1], scores[:, 1:], keep, tie_break)
    assert (~keep).any()  # duplicates were drawn and are ignored
    scattered = torch.full((batch, n_items), float("-inf"))
    rows = torch.arange(batch).unsqueeze(1).expand_as(item_ids)
    scattered[rows, item_ids] = item_scores.gather(1, item_ids)
    collector = Collector(_collector_config())
    collector.eval_batch_collect(scattered, None, torch.arange(batch), positives)
    torch.testing.assert_close(collector.get_data_struct().get("rec.topk"), topk_hits(ranks, 10))


def _collector_config():
    from recbole_srt import Config

    return Config(model="SASRec", dataset="ml-100k", config_dict={"metrics": ["NDCG", "Hit"], "topk": [10]})


def test_recbole_modes_keep_working(fast_config):
    trainer, test = evaluate("SASRec", fast_config, {"valid": "full", "test": "uni10"})
    assert trainer.config["sampled_eval"] == {"valid": None, "test": None}
    assert set(trainer.evaluate(test, load_best_model=False)) >= {"ndcg@5", "hit@10"}


def test_bad_sampled_mode_is_a_clear_error(fast_config):
    with pytest.raises(ValueError, match="sampledten"):
        build("SASRec", "ml80", fast_config, **sampled({"valid": "sampledten", "test": "full"}))


def test_metrics_that_need_the_full_ranking_are_refused(fast_config):
    trainer, test = evaluate("SASRec", fast_config, {"valid": "sampled10", "test": "sampled10"},
                             metrics=["NDCG", "ItemCoverage"])
    with pytest.raises(ValueError, match="ItemCoverage"):
        trainer.evaluate(test, load_best_model=False)
