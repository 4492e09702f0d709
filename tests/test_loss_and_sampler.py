import math

import pytest
import torch
from scipy.stats import chisquare

from helpers import build
from recbole_srt.model.negative_sampler import NegativeSampler, mixture_log_q, sampling_probabilities
from recbole_srt.model.sampled_softmax import sampled_softmax_loss

Q = torch.tensor([0.0, 0.1, 0.1, 0.2, 0.3, 0.3])
LOG_Q = torch.where(Q > 0, Q.log(), torch.tensor(float("-inf")))


def test_loss_matches_hand_computation():
    seq = torch.tensor([[1.0, 0.0]])
    pos_emb, neg_emb = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    loss = sampled_softmax_loss(seq, pos_emb, neg_emb, torch.tensor([3]), torch.tensor([4, 5]), LOG_Q, temperature=0.5)
    # logits / tau: positive 4, negatives 0 and 2; logQ subtracts log q from each (q = .2, .3, .3).
    pos, negs = math.exp(4) / 0.2, math.exp(0) / 0.3 + math.exp(2) / 0.3
    assert loss.item() == pytest.approx(-math.log(pos / (pos + negs)), rel=1e-6)


def test_loss_without_logq_is_plain_sampled_softmax():
    seq = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos_emb = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    neg_emb = torch.tensor([[[0.5, 0.0]], [[1.0, 1.0]]])  # per-sequence negatives [B, N=1, H]
    loss = sampled_softmax_loss(seq, pos_emb, neg_emb, torch.tensor([1, 2]), torch.tensor([[3], [4]]))
    first = -math.log(math.exp(1) / (math.exp(1) + math.exp(0.5)))
    second = -math.log(math.exp(3) / (math.exp(3) + math.exp(1)))
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_accidental_hits_are_masked():
    seq, pos_emb = torch.tensor([[1.0, 0.5]]), torch.tensor([[0.3, 1.0]])
    neg_emb = torch.tensor([[0.3, 1.0], [2.0, -1.0]])
    with_hit = sampled_softmax_loss(seq, pos_emb, neg_emb, torch.tensor([3]), torch.tensor([3, 5]), LOG_Q)
    without = sampled_softmax_loss(seq, pos_emb, neg_emb[1:], torch.tensor([3]), torch.tensor([5]), LOG_Q)
    torch.testing.assert_close(with_hit, without)


def test_popularity_sampling_frequencies_match_the_table():
    counts = torch.tensor([0, 50, 10, 0, 5, 35])
    probabilities = sampling_probabilities(counts, "popularity", smoothing=1.0)
    torch.testing.assert_close(probabilities, torch.tensor([0, 51, 11, 1, 6, 36], dtype=torch.float64) / 105)
    torch.manual_seed(0)
    draws = NegativeSampler(probabilities)((400, 500))
    observed = torch.bincount(draws.flatten(), minlength=6)
    assert observed[0] == 0  # the padding id is never drawn
    expected = probabilities[1:] * draws.numel()
    assert chisquare(observed[1:].numpy(), expected.numpy()).pvalue > 0.01
    uniform = torch.full((5,), draws.numel() / 5.0)
    assert chisquare(observed[1:].numpy(), uniform.numpy()).pvalue < 1e-12


def test_zero_count_items_keep_a_finite_logq():
    sampler = NegativeSampler(sampling_probabilities(torch.tensor([0, 0, 9, 0]), "popularity", smoothing=0.5))
    assert torch.isfinite(sampler.log_q[1:]).all() and sampler.log_q[0] == float("-inf")
    with pytest.raises(ValueError, match="popularity_smoothing"):
        sampling_probabilities(torch.tensor([0, 0, 9, 0]), "popularity", smoothing=0.0)


def test_uniform_sampling_ignores_counts():
    probabilities = sampling_probabilities(torch.tensor([5, 50, 10, 0]), "uniform")
    torch.testing.assert_close(probabilities, torch.tensor([0, 1, 1, 1], dtype=torch.float64) / 3)


def test_popularity_comes_from_the_training_split_only(fast_config):
    _, model, (train, valid, test) = build("SRT", "ml40", fast_config)
    train_counts = torch.bincount(train._dataset.inter_feat["item_id"], minlength=model.n_items).double()
    expected = train_counts + 1.0
    expected[0] = 0.0
    torch.testing.assert_close(model.negative_sampler.probabilities.double(), expected / expected.sum(),
                               rtol=1e-6, atol=0)
    held_out = torch.cat([valid._dataset.inter_feat["item_id"], test._dataset.inter_feat["item_id"]])
    assert (train_counts[held_out] == 0).any()  # some held-out items never seen in training: no leakage of them


@pytest.mark.parametrize("shared", [True, False])
def test_training_step_reduces_loss(fast_config, shared):
    _, model, (train, _, _) = build("SRT", "ml40", fast_config, shared_negatives=shared, hidden_dropout_prob=0.0,
                                    attn_dropout_prob=0.0)
    batch = next(iter(train))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # same negatives every step: the loss must go down on a fixed problem
        loss = model.calculate_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


SOURCES = torch.tensor([0, 0, 1, 0, 1, 1])  # items 1, 3 in source 0; 2, 4, 5 in source 1


def test_within_source_probabilities_sum_to_one_per_source():
    probabilities = sampling_probabilities(torch.tensor([0, 3, 1, 1, 2, 0]), "popularity", smoothing=1.0,
                                           item_sources=SOURCES)
    torch.testing.assert_close(probabilities, torch.tensor([0, 4 / 6, 2 / 6, 2 / 6, 3 / 6, 1 / 6], dtype=torch.float64))


@pytest.mark.parametrize("shared", [True, False])
def test_within_source_draws_stay_in_the_positives_source_with_their_frequencies(shared):
    probabilities = sampling_probabilities(torch.tensor([0, 3, 1, 1, 2, 0]), "popularity", smoothing=1.0,
                                           item_sources=SOURCES)
    sampler = NegativeSampler(probabilities, item_sources=SOURCES)
    torch.manual_seed(0)
    pos_ids = torch.tensor([1, 2, 4, 3])
    neg_ids, group = sampler.draw(pos_ids, 20000, shared)
    rows = neg_ids[group] if shared else neg_ids
    assert rows.shape == (4, 20000) and (SOURCES[rows] == SOURCES[pos_ids].unsqueeze(1)).all()
    for source, items in ((0, [1, 3]), (1, [2, 4, 5])):
        drawn = torch.bincount(rows[SOURCES[pos_ids] == source].flatten(), minlength=6)[items]
        assert chisquare(drawn.numpy(), (probabilities[items] * drawn.sum()).numpy()).pvalue > 0.01


def test_grouped_negatives_equal_per_sequence_negatives_of_the_same_sets():
    torch.manual_seed(0)
    seq, pos_emb, neg_emb = torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 5, 4)
    pos_ids, group = torch.tensor([1, 2, 4]), torch.tensor([0, 1, 1])
    neg_ids = torch.tensor([[1, 3, 3, 1, 3], [2, 5, 4, 4, 2]])
    log_q = torch.randn(6)
    grouped = sampled_softmax_loss(seq, pos_emb, neg_emb, pos_ids, neg_ids, log_q, neg_group=group)
    per_sequence = sampled_softmax_loss(seq, pos_emb, neg_emb[group], pos_ids, neg_ids[group], log_q)
    torch.testing.assert_close(grouped, per_sequence)


@pytest.mark.parametrize("shared", [True, False])
def test_srt_draws_negatives_within_the_sources_of_a_combined_dataset(fast_config, shared):
    _, model, (train, _, _) = build("SRT", "two_sources", fast_config, neg_sampling_scope="source",
                                    shared_negatives=shared)
    sampler = model.negative_sampler
    tokens = train._dataset.field2id_token["item_id"]
    expected = torch.tensor([0] + [0 if t.startswith("games:") else 1 for t in tokens[1:]])
    assert sampler.n_sources == 2 and torch.equal(sampler.item_sources, expected)
    batch = next(iter(train))
    pos_ids = batch["item_id"]
    neg_ids, group = sampler.draw(pos_ids, 50, shared)
    rows = neg_ids[group] if shared else neg_ids
    assert (sampler.item_sources[rows] == sampler.item_sources[pos_ids].unsqueeze(1)).all()
    loss = model.calculate_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)


def test_catalog_scope_ignores_sources_and_a_bad_scope_is_named(fast_config):
    _, model, _ = build("SRT", "two_sources", fast_config)
    assert model.negative_sampler.n_sources == 1
    with pytest.raises(ValueError, match="neg_sampling_scope must be one of"):
        build("SRT", "two_sources", fast_config, neg_sampling_scope="category")


def test_mixture_log_q_is_the_share_of_sampled_and_in_batch_candidates():
    log_q, log_target = LOG_Q, torch.log(torch.tensor([0.0, 0.5, 0.0, 0.25, 0.25, 0.0]))
    mixed = mixture_log_q(torch.tensor([1, 2, 3, 5]), log_q, log_target, neg_count=3, batch=1)
    expected = torch.tensor([(3 * 0.1 + 0.5) / 4, (3 * 0.1) / 4, (3 * 0.2 + 0.25) / 4, (3 * 0.3) / 4]).log()
    torch.testing.assert_close(mixed, expected)
    # Sampled from the targets' own distribution, the in-batch positives change nothing.
    torch.testing.assert_close(mixture_log_q(torch.arange(1, 6), LOG_Q, LOG_Q, neg_count=7, batch=5), LOG_Q[1:])


def in_batch_losses(fast_config, pos_ids, shared, **overrides):
    """SRT's loss on one ml40 batch, without and with in-batch negatives, from the same drawn negatives."""
    losses = []
    for in_batch in (False, True):
        _, model, (train, _, _) = build("SRT", "ml40", fast_config, in_batch_negatives=in_batch, seed=3,
                                        shared_negatives=shared, hidden_dropout_prob=0.0, attn_dropout_prob=0.0,
                                        **overrides)
        batch = next(iter(train))
        if pos_ids is not None:
            batch[model.POS_ITEM_ID] = torch.full_like(batch[model.POS_ITEM_ID], pos_ids)
        torch.manual_seed(0)
        losses.append(model.calculate_loss(batch))
    return losses


@pytest.mark.parametrize("shared", [True, False])
def test_in_batch_negatives_add_the_other_positives_to_every_softmax(fast_config, shared):
    plain, mixed = in_batch_losses(fast_config, None, shared, logq_correction=False)
    assert mixed > plain  # more (unmasked) negatives in every denominator
    # When every sequence has the same positive, the in-batch candidates are all accidental hits: masked.
    plain, mixed = in_batch_losses(fast_config, 7, shared, logq_correction=False)
    torch.testing.assert_close(mixed, plain)


def test_in_batch_negatives_train_and_refuse_source_scoped_negatives(fast_config):
    _, model, (train, _, _) = build("SRT", "ml40", fast_config, in_batch_negatives=True)
    loss = model.calculate_loss(next(iter(train)))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="in_batch_negatives.*neg_sampling_scope"):
        build("SRT", "two_sources", fast_config, neg_sampling_scope="source", in_batch_negatives=True)
