"""`eval_horizon: k`: the last k items of each user held out and ranked step by step, teacher-forced and
autoregressive, against candidates that depend only on (seed, phase, user, step)."""

import logging

import pandas as pd
import pytest
import torch
from recbole.data.interaction import Interaction

from helpers import TOY_TEXT, build
from recbole_srt import SRTTrainer, run_recbole
from recbole_srt.evaluation.horizon import HorizonEvaluation
from recbole_srt.evaluation.ranking import rank_metrics

SASREC = {"loss_type": "CE", "train_neg_sample_args": None}
SAMPLED = {"eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": {"valid": "full",
                                                                                    "test": "sampled10"}}}


def trained(fast_config, model="SASRec", **settings):
    extra = SASREC if model == "SASRec" else {"text_fields": ["title", "brand"]}
    config, built, (train, valid, test) = build(model, "beauty_toy", fast_config, epochs=2, **extra, **settings)
    trainer = SRTTrainer(config, built)
    trainer.fit(train, valid, saved=False)
    return config, built, trainer, test


def sequences(config, dataset):
    """Each user's items in time order, as internal ids, read from the atomic file by hand."""
    frame = pd.read_csv(f"{config['data_path']}/beauty_toy.inter", sep="\t", dtype=str)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    frame = frame.sort_values(["user_id", "timestamp"], key=lambda c: c.astype(float) if c.name == "timestamp" else c)
    return {dataset.token2id("user_id", user): [dataset.token2id("item_id", i) for i in group["item_id"]]
            for user, group in frame.groupby("user_id")}


def test_the_horizon_split_holds_out_the_last_k_items_and_the_one_before_for_validation(fast_config, caplog):
    with caplog.at_level(logging.WARNING):
        config, _, (train, valid, test) = build("SASRec", "beauty_toy", fast_config, eval_horizon=3, **SASREC)
    dataset = test._dataset
    by_user = sequences(config, dataset)
    test_rows = dataset.inter_feat
    for user, items in by_user.items():
        rows = (test_rows["user_id"] == user).nonzero().squeeze(1)
        assert test_rows["item_id"][rows].tolist() == items[-3:]
        lengths = test_rows["item_length"][rows].tolist()
        assert lengths == [min(len(items) - 3 + j, config["MAX_ITEM_LIST_LENGTH"]) for j in range(3)]
        valid_row = (valid._dataset.inter_feat["user_id"] == user).nonzero().squeeze(1)
        assert valid._dataset.inter_feat["item_id"][valid_row].tolist() == items[-4:-3]
    assert len(train._dataset) == sum(len(items) - 1 - 4 for items in by_user.values())
    assert "users have fewer" not in caplog.text  # every toy user has 8 interactions
    with caplog.at_level(logging.WARNING):
        build("SASRec", "beauty_toy", fast_config, eval_horizon=7, **SASREC)
    assert "eval_horizon 7: 25 users have fewer than 9 interactions" in caplog.text


@pytest.mark.parametrize("mode", [{}, SAMPLED])
@pytest.mark.parametrize("model", ["SASRec", "SRT"])
def test_a_horizon_of_one_gives_todays_metrics_exactly(fast_config, model, mode):
    config, _, trainer, test = trained(fast_config, model, **mode)
    today = trainer.evaluate(test, load_best_model=False)
    n_neg = (config["sampled_eval"] or {}).get("test")
    horizon = HorizonEvaluation(trainer, test, n_neg, 1).run()
    for name, value in today.items():
        assert horizon[f"{name}@step1"] == value, name


@pytest.mark.parametrize("mode", [{}, SAMPLED])
def test_teacher_forced_steps_equal_histories_truncated_by_hand(fast_config, mode):
    k = 3
    config, model, trainer, test = trained(fast_config, eval_horizon=k, **mode)
    result = trainer.evaluate(test, load_best_model=False)
    by_user = sequences(config, test._dataset)
    users = torch.tensor(sorted(by_user))
    length = config["MAX_ITEM_LIST_LENGTH"]
    n_neg = (config["sampled_eval"] or {}).get("test")
    for step in range(1, k + 1):
        seqs, lengths, targets, others = [], [], [], []
        for user in users.tolist():
            items = by_user[user]
            cut = len(items) - k + step - 1
            history = items[:cut][-length:]
            seqs.append(history + [0] * (length - len(history)))
            lengths.append(len(history))
            targets.append(items[cut])
            others.append([i for j, i in enumerate(items[-k:]) if j != step - 1])
        batch = Interaction({"user_id": users, "item_id_list": torch.tensor(seqs), "item_length": torch.tensor(lengths),
                             "item_id": torch.tensor(targets)})
        with torch.no_grad():
            scores = model.full_sort_predict(batch)
        targets, others = torch.tensor(targets), torch.tensor(others)
        keep = torch.ones_like(scores, dtype=torch.bool)
        keep[:, 0] = False
        keep.scatter_(1, others, False)
        keep.scatter_(1, targets.unsqueeze(1), False)
        if n_neg is not None:  # only the step's sampled candidates compete
            candidates, drawn = trainer.candidate_sampler(test._dataset.item_num, n_neg, step)("test", users, targets)
            in_candidates = torch.zeros_like(keep)
            in_candidates.scatter_(1, candidates, drawn)
            keep &= in_candidates
        ranks = ((scores > scores.gather(1, targets.unsqueeze(1))) & keep).sum(1)
        expected = rank_metrics(ranks, config["topk"], ["ndcg", "hit"], f"@step{step}")
        for name, values in expected.items():
            assert result[name] == pytest.approx(round(float(values.mean()), 4), abs=1e-12), name


def test_autoregressive_steps_generate_distinct_items_outside_the_history(fast_config):
    k = 4
    config, model, trainer, test = trained(fast_config, eval_horizon=k)
    evaluation = HorizonEvaluation(trainer, test, None, k)
    result = evaluation.run()
    generated = evaluation.generated_items
    assert generated.shape == (25, k)
    by_user = sequences(config, test._dataset)
    users = test._dataset.inter_feat["user_id"][0::k]  # the evaluation's order: step 1's rows
    for user, row in zip(users.tolist(), generated.tolist()):
        assert len(set(row)) == k and 0 not in row
        assert not set(row) & set(by_user[user][:-k][-config["MAX_ITEM_LIST_LENGTH"]:])
    top = config["topk"][0]
    assert {f"ndcg@{top}@step{k}", f"ndcg@{top}@gen_step{k}", "horizon_found@generated",
            f"horizon_found@{top}@step1_list"} <= set(result)
    assert result[f"ndcg@{top}@gen_step1"] == result[f"ndcg@{top}@step1"]  # nothing generated before step 1
    # Step 3 by hand: the true history, then the first two generated items; the other true items are not negatives.
    length = config["MAX_ITEM_LIST_LENGTH"]
    histories = [(by_user[u][:-k] + row[:2])[-length:] for u, row in zip(users.tolist(), generated.tolist())]
    padded = torch.tensor([h + [0] * (length - len(h)) for h in histories])
    batch = Interaction({"user_id": users, "item_id_list": padded,
                         "item_length": torch.tensor([len(h) for h in histories])})
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
    targets = torch.tensor([by_user[u][-k:] for u in users.tolist()])
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[:, 0] = False
    keep.scatter_(1, targets, False)
    ranks = ((scores > scores.gather(1, targets[:, 2:3])) & keep).sum(1)
    expected = rank_metrics(ranks, [top], ["ndcg"])[f"ndcg@{top}"].mean()
    assert result[f"ndcg@{top}@gen_step3"] == round(float(expected), 4)
    found = (targets.unsqueeze(2) == generated.unsqueeze(1)).any(2).double().mean(1).mean()
    assert result["horizon_found@generated"] == round(float(found), 4)


def test_step_candidates_depend_only_on_seed_phase_user_and_step(fast_config):
    config, _, trainer, test = trained(fast_config, **SAMPLED)
    other_trainer = SRTTrainer(config, trainer.model)
    users, positives = torch.arange(1, 21), torch.arange(1, 21) % 29 + 1
    n = test._dataset.item_num
    draws = {step: trainer.candidate_sampler(n, 10, step)("test", users, positives)[0] for step in (1, 2, 3)}
    assert torch.equal(draws[1], trainer.candidate_sampler(n, 10)("test", users, positives)[0])  # step 1: today's
    assert not torch.equal(draws[1], draws[2]) and not torch.equal(draws[2], draws[3])
    halves = [other_trainer.candidate_sampler(n, 10, 2)("test", u, p)[0] for u, p in zip(users.split(7),
                                                                                           positives.split(7))]
    assert torch.equal(torch.cat(halves), draws[2])  # another trainer, other batches: the same candidates


@pytest.mark.parametrize("model", ["SASRec", "BERT4Rec", "GRU4Rec"])
def test_run_recbole_reports_every_step_through_the_normal_result(fast_config, model):
    settings = {k: v for k, v in fast_config.items() if k != "train_neg_count"}
    result = run_recbole(model, "beauty_toy", config_dict={**settings, **TOY_TEXT, **SASREC, "eval_horizon": 3})
    test = result["test_result"]
    for step in (1, 2, 3):
        assert {f"ndcg@10@step{step}", f"hit@10@step{step}", f"ndcg@10@gen_step{step}"} <= set(test)
    assert 0.0 <= test["horizon_found@generated"] <= 1.0
    assert "ndcg@10" in result["best_valid_result"]  # validation: one step, as always
