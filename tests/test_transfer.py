"""An SRT checkpoint on another catalog: its weights and tokenizer, the new popularity, zero-shot evaluation."""

import json
import os

import pytest
import torch

from helpers import ML_TEXT, TOY_TEXT, build, resumed_equals_straight
from recbole_srt import SRTTrainer, run_recbole
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.quick_start import pretraining_data
from recbole_srt.transfer.ewc import EWCPenalty


@pytest.fixture(scope="module")
def ml_checkpoint(data_root, tmp_path_factory):
    """SRT (2 layers) trained one epoch on a 40-user ml-100k subset (movie titles and genres)."""
    folder = tmp_path_factory.mktemp("pretrain")
    settings = {"data_path": data_root, "epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32,
                "n_layers": 2, "n_heads": 2, "train_batch_size": 256, "eval_batch_size": 256, "show_progress": False,
                "train_neg_count": 20, "tokenizer_vocab_size": 300, "seed": 7, "state": "WARNING",
                "tokenizer_dir": str(folder / "tok"), "checkpoint_dir": str(folder / "saved"), **ML_TEXT}
    result = run_recbole("SRT", "ml40", config_dict=settings)
    return result["saved_model_file"], settings


def toy_settings(base, checkpoint, **extra):
    settings = {k: v for k, v in base.items() if k not in ML_TEXT}
    return {**settings, **TOY_TEXT, "text_fields": ["title", "brand"], "pretrained_model": checkpoint, **extra}


def test_pretrained_model_brings_weights_and_tokenizer_to_a_new_catalog(ml_checkpoint):
    path, base = ml_checkpoint
    checkpoint = load_checkpoint(path, "cpu")
    config, model, (train, _, _) = build("SRT", "beauty_toy", {}, **toy_settings(base, path))
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint["state_dict"][name]), name
    assert model.tokenizer_proto == checkpoint["other_parameter"]["tokenizer_proto"]
    assert model.n_items == 31 and len(model.negative_sampler.probabilities) == 31  # the new catalog's popularity
    assert (model.item_tokens[1:] > 0).any()  # the toy titles, tokenized with the ml-100k vocabulary


def test_pretrained_parameters_takes_only_the_named_part_of_the_checkpoint(ml_checkpoint):
    path, base = ml_checkpoint
    checkpoint = load_checkpoint(path, "cpu")["state_dict"]
    models = {part: build("SRT", "beauty_toy", {}, **toy_settings(base, path, pretrained_parameters=[part]))[1]
              for part in ("trm_encoder.layer.1", "position_embedding")}
    for name, value in models["trm_encoder.layer.1"].state_dict().items():
        other = models["position_embedding"].state_dict()[name]
        if name.startswith("trm_encoder.layer.1."):
            assert torch.equal(value, checkpoint[name]) and not torch.equal(other, checkpoint[name]), name
        elif name.startswith("position_embedding"):
            assert torch.equal(other, checkpoint[name]) and not torch.equal(value, checkpoint[name]), name
        else:  # the run's own random weights (the same seed in both), not the checkpoint's
            assert torch.equal(value, other) and not torch.equal(value, checkpoint[name]), name


@pytest.mark.parametrize("extra, message", [
    ({"pretrained_parameters": ["transformer"]}, r"\['transformer'\] names no parameter.*'trm_encoder'"),
    ({"pretrained_parameters": []}, "names no parameter"),
    ({"pretrained_parameters": ["item_encoder"], "ewc_lambda": 100}, "set one or the other"),
])
def test_pretrained_parameters_that_name_nothing_or_meet_ewc_are_clear_errors(ml_checkpoint, extra, message):
    path, base = ml_checkpoint
    with pytest.raises(ValueError, match=message):
        config, model, (train, valid, _) = build("SRT", "beauty_toy", {}, **toy_settings(base, path, **extra))
        SRTTrainer(config, model, pretraining_data=pretraining_data)


def test_zero_shot_evaluates_the_checkpoint_without_training(ml_checkpoint):
    path, base = ml_checkpoint
    result = run_recbole("SRT", "beauty_toy", config_dict=toy_settings(base, path, epochs=0))
    assert result["saved_model_file"] is None and result["compute"]["seen_interactions"] == 0
    config, model, (_, _, test) = build("SRT", "beauty_toy", {}, **toy_settings(base, path))
    trainer = SRTTrainer(config, model)
    assert dict(trainer.evaluate(test, load_best_model=False)) == dict(result["test_result"])


def test_settings_that_decide_the_parameters_come_from_the_checkpoint_unless_set(ml_checkpoint):
    path, base = ml_checkpoint
    shape = ("n_layers", "n_heads", "hidden_size", "inner_size", "MAX_ITEM_LIST_LENGTH")
    bare = {k: v for k, v in toy_settings(base, path).items() if k not in shape}
    config, model, _ = build("SRT", "beauty_toy", {}, **bare)
    # the checkpoint's; the model defaults are 2, 2, 64, 256, 50
    assert [config[k] for k in shape] == [2, 2, 16, 32, 10]
    assert model.max_seq_length == 10
    checkpoint = load_checkpoint(path, "cpu")
    assert all(torch.equal(v, checkpoint["state_dict"][n]) for n, v in model.state_dict().items())
    with pytest.raises(ValueError, match="n_layers is 1 here but 2 in the checkpoint"):
        build("SRT", "beauty_toy", {}, **bare, n_layers=1)


@pytest.mark.parametrize("extra, message", [
    ({"hidden_size": 32, "inner_size": 64}, "hidden_size is 32 here but 16 in the checkpoint"),
    ({"text_fields": ["title"]}, r"text_fields is \['title'\] here but \['movie_title', 'class'\]"),
    ({"text_pooling": "mean"}, "text_pooling is 'mean' here but 'sum'"),
])
def test_mismatches_with_the_checkpoint_are_clear_errors(ml_checkpoint, extra, message):
    path, base = ml_checkpoint
    with pytest.raises(ValueError, match=message):
        build("SRT", "beauty_toy", {}, **toy_settings(base, path, **extra))


def test_a_non_srt_checkpoint_is_refused(data_root, tmp_path, ml_checkpoint):
    _, base = ml_checkpoint
    sasrec = run_recbole("SASRec", "ml40", config_dict={**base, "loss_type": "CE"})["saved_model_file"]
    with pytest.raises(ValueError, match="a SASRec checkpoint, not SRT's"):
        build("SRT", "beauty_toy", {}, **toy_settings(base, sasrec))


def distance(model, state, prefix=""):
    return sum(float((p.detach() - state[name]).norm()) for name, p in model.named_parameters()
               if name.startswith(prefix))


@pytest.fixture(scope="module")
def hashed_checkpoint(data_root, tmp_path_factory):
    """SRT with a 16-row hashed id table, trained one epoch on the 40-user ml-100k subset."""
    settings = {"data_path": data_root, "epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32,
                "n_layers": 1, "n_heads": 2, "train_neg_count": 20, "tokenizer_vocab_size": 300, "seed": 7,
                "state": "WARNING", "show_progress": False, "item_id_hash_buckets": 16,
                "checkpoint_dir": str(tmp_path_factory.mktemp("hashed") / "saved"), **ML_TEXT}
    checkpoint = run_recbole("SRT", "ml40", config_dict=settings)["saved_model_file"]
    assert load_checkpoint(checkpoint, "cpu")["state_dict"]["item_id_embedding.table.weight"].abs().sum() > 0
    return checkpoint, settings


def test_a_hashed_id_table_starts_at_zero_on_another_catalog_whatever_its_size(hashed_checkpoint):
    checkpoint, settings = hashed_checkpoint
    _, adopted, _ = build("SRT", "beauty_toy", {}, **toy_settings(settings, checkpoint))  # the hash keys adopted
    assert adopted.item_id_embedding.table.weight.shape == (16, 16)
    assert adopted.item_id_embedding.table.weight.abs().sum() == 0  # another catalog's ids mean nothing here
    _, larger, _ = build("SRT", "beauty_toy", {}, **toy_settings(settings, checkpoint, item_id_hash_buckets=64))
    table = larger.item_id_embedding.table.weight
    assert table.shape == (64, 16) and table.abs().sum() == 0
    _, ignored, _ = build("SRT", "beauty_toy", {}, **toy_settings(settings, checkpoint, item_id_hash_buckets=0))
    assert ignored.item_id_embedding is None
    adopted.eval()
    ignored.eval()
    with torch.no_grad():  # zero-shot, a zero table and none score alike
        assert torch.equal(adopted.all_item_embeddings(), ignored.all_item_embeddings())


def test_a_release_leaves_the_hashed_id_table_out_and_ewc_leaves_it_free(hashed_checkpoint, tmp_path):
    from recbole_srt.transfer.release import export

    checkpoint, settings = hashed_checkpoint
    released = torch.load(export(checkpoint, "hashed", str(tmp_path)), weights_only=True)
    assert not any(k.startswith("item_id_embedding.") for k in released["state_dict"])
    assert released["config"]["item_id_hash_buckets"] == 16
    _, model, _ = build("SRT", "beauty_toy", {}, **toy_settings(settings, str(tmp_path / "hashed" / "hashed.pth")))
    assert model.item_id_embedding.table.weight.abs().sum() == 0
    fisher = {name: torch.ones_like(p) for name, p in model.named_parameters() if not name.startswith("item_id_")}
    penalty = EWCPenalty(model, fisher, strength=1.0)
    with torch.no_grad():
        model.item_id_embedding.table.weight += 1.0
    assert penalty().item() == 0.0


def test_progressive_fine_tuning_unfreezes_layers_from_the_top(ml_checkpoint):
    path, base = ml_checkpoint
    pretrained = load_checkpoint(path, "cpu")["state_dict"]
    config, model, (train, valid, _) = build("SRT", "beauty_toy", {}, **toy_settings(
        base, path, finetune_strategy="progressive", finetune_epochs_per_layer=1, finetune_final_epochs=0,
        learning_rate=0.01, lr_schedule="constant"))  # one step per stage here: one-cycle would start it at LR 0
    after_first_stage = {}

    def snapshot(epoch, _):
        if epoch == 0:
            after_first_stage.update({k: v.clone() for k, v in model.state_dict().items()})

    trainer = SRTTrainer(config, model)
    trainer.fit(train, valid, saved=False, callback_fn=snapshot)
    changed = {k for k, v in after_first_stage.items() if not torch.equal(v, pretrained[k])}
    assert changed and all(k.startswith("trm_encoder.layer.1.") for k in changed)  # stage 1: the top layer only
    final = model.state_dict()
    changed = {k for k, v in final.items() if not torch.equal(v, pretrained[k])}
    assert any(k.startswith("trm_encoder.layer.0.") for k in changed)  # stage 2: both layers
    assert not any(k.startswith(("item_encoder.", "position_embedding.")) for k in changed)  # no final stage here
    assert trainer.epochs == 2 and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("stop_after_epoch", [2, 3])  # inside stage 2 (epochs 2-3), between stages 2 and 3
def test_progressive_fine_tuning_killed_in_or_between_stages_resumes_to_exactly_the_uninterrupted_run(
        ml_checkpoint, tmp_path, monkeypatch, one_thread, stop_after_epoch):
    path, base = ml_checkpoint
    settings = toy_settings(base, path, finetune_strategy="progressive", finetune_epochs_per_layer=2,
                            finetune_final_epochs=1, stopping_step=10, checkpoint_dir=str(tmp_path / "saved"))
    resumed_equals_straight("SRT", "beauty_toy", settings, monkeypatch, stop_after_epoch)


def test_ewc_penalty_is_the_fisher_weighted_distance_to_the_anchor():
    model = torch.nn.Linear(3, 2)
    fisher = {"weight": torch.full((2, 3), 2.0), "bias": torch.tensor([0.0, 4.0])}
    penalty = EWCPenalty(model, fisher, strength=10.0)
    assert penalty().item() == 0.0
    with torch.no_grad():
        model.weight += 0.5
        model.bias += 1.0
    assert penalty().item() == pytest.approx(10 / 2 * (6 * 2.0 * 0.25 + 4.0 * 1.0))


def test_ewc_leaves_the_transformer_gate_free_as_the_pre_trained_model_has_none():
    model = torch.nn.Linear(3, 2)
    model.transformer_gate = torch.nn.Parameter(torch.tensor(0.0))
    penalty = EWCPenalty(model, {"weight": torch.ones(2, 3), "bias": torch.ones(2)}, strength=1.0)
    with torch.no_grad():
        model.transformer_gate += 3.0
        model.bias += 1.0
    assert penalty().item() == pytest.approx(1 / 2 * 2 * 1.0)


def test_ewc_holds_fine_tuned_weights_near_the_pre_trained_ones(ml_checkpoint):
    import os

    path, base = ml_checkpoint
    pretrained = load_checkpoint(path, "cpu")["state_dict"]
    distances = {}
    for strength in (0, 1e6):
        config, model, (train, valid, _) = build("SRT", "beauty_toy", {}, **toy_settings(
            base, path, epochs=8, learning_rate=0.01, lr_schedule="constant", ewc_lambda=strength,
            ewc_fisher_batches=3))
        SRTTrainer(config, model, pretraining_data=pretraining_data).fit(train, valid, saved=False)
        # The adapter: every pre-training item went through it, so its Fisher information is large (a barely trained
        # transformer's is near 0 here, and token rows no pre-training item used have none: EWC leaves those free).
        distances[strength] = distance(model, pretrained, "item_encoder.adapter.")
    assert distances[1e6] < 0.5 * distances[0], distances
    assert os.path.isfile(f"{path}.fisher-3.pt")  # computed once on the pre-training data, cached


@pytest.mark.parametrize("extra, message", [
    ({"finetune_strategy": "layerwise"}, "finetune_strategy: 'layerwise'"),
    ({"pretrained_model": None, "finetune_strategy": "progressive"}, "set pretrained_model"),
    ({"pretrained_model": None, "ewc_lambda": 100}, "set pretrained_model"),
])
def test_bad_fine_tuning_settings_are_clear_errors(ml_checkpoint, extra, message):
    path, base = ml_checkpoint
    with pytest.raises(ValueError, match=message):
        config, model, (train, valid, _) = build("SRT", "beauty_toy", {}, **toy_settings(base, path, **extra))
        SRTTrainer(config, model).fit(train, valid, saved=False)


def test_ewc_without_cached_fisher_or_pretraining_data_is_a_clear_error(ml_checkpoint):
    path, base = ml_checkpoint
    config, model, _ = build("SRT", "beauty_toy", {}, **toy_settings(base, path, ewc_lambda=100,
                                                                      ewc_fisher_batches=7))
    with pytest.raises(ValueError, match=r"fisher-7\.pt.*pretraining_data"):
        SRTTrainer(config, model)


def test_a_release_holds_weights_tokenizer_and_settings_only_and_fine_tunes_in_one_command(ml_checkpoint, tmp_path):
    from recbole_srt.quick_start import prepare
    from recbole_srt.recommend import recommend
    from recbole_srt.transfer.release import main as release_main

    path, base = ml_checkpoint
    assert release_main([path, "--name", "tiny", "--output-dir", str(tmp_path)]) == 0
    released = tmp_path / "tiny" / "tiny.pth"
    content = torch.load(str(released), weights_only=True)  # torch's own safe loader, no allowlist
    assert set(content) == {"config", "state_dict", "other_parameter", "compute"}
    assert content["config"]["hidden_size"] == 16 and content["config"]["model"] == "SRT"
    with open(tmp_path / "tiny" / "tiny.json") as f:
        assert json.load(f)["from"] == os.path.basename(path)  # no folder of the machine that wrote it
    original = load_checkpoint(path, "cpu")
    assert content["other_parameter"]["tokenizer_proto"] == original["other_parameter"]["tokenizer_proto"]
    shape = ("n_layers", "n_heads", "hidden_size", "inner_size", "MAX_ITEM_LIST_LENGTH")
    settings = {k: v for k, v in toy_settings(base, str(released)).items() if k not in shape}
    _, model, _ = build("SRT", "beauty_toy", {}, **settings)
    assert all(torch.equal(v, original["state_dict"][n]) for n, v in model.state_dict().items())
    _, dataset, _, zero_shot = prepare("SRT", "beauty_toy", config_dict=settings)
    recommended = recommend(zero_shot, [["3", "5"]], k=4, dataset=dataset)
    assert len(recommended[0]) == 4 and not {"3", "5"} & {item for item, _ in recommended[0]}
    result = run_recbole("SRT", "beauty_toy", config_dict={**settings, "epochs": 1})
    assert result["test_result"]["ndcg@5"] >= 0
    with pytest.raises(ValueError, match="released model, which holds no pre-training data"):
        run_recbole("SRT", "beauty_toy", config_dict={**settings, "epochs": 1, "ewc_lambda": 10})


def test_a_release_over_the_size_limit_is_refused(ml_checkpoint, tmp_path, monkeypatch):
    from recbole_srt.transfer import release

    monkeypatch.setattr(release, "LIMIT_BYTES", 1000)
    with pytest.raises(ValueError, match="over the 0 MB"):
        release.export(ml_checkpoint[0], "big", str(tmp_path))
    assert not any((tmp_path / "big").iterdir())


def test_interpolation_runs_from_the_pre_trained_start_to_the_fine_tuned_model(ml_checkpoint):
    from recbole_srt.transfer.interpolate import interpolated_state, pretrained_start

    path, base = ml_checkpoint
    config, model, (train, valid, test) = build("SRT", "beauty_toy", {}, **toy_settings(
        base, path, epochs=3, learning_rate=0.01, lr_schedule="constant"))
    trainer = SRTTrainer(config, model)
    zero_shot = dict(trainer.evaluate(test, load_best_model=False))
    trainer.fit(train, valid, saved=False)
    finetuned = {name: value.clone() for name, value in model.state_dict().items()}
    fine_tuned_result = dict(trainer.evaluate(test, load_best_model=False))
    assert fine_tuned_result != zero_shot
    start = pretrained_start(config)
    model.load_state_dict(interpolated_state(finetuned, start, 0.0))
    assert dict(trainer.evaluate(test, load_best_model=False)) == zero_shot
    model.load_state_dict(interpolated_state(finetuned, start, 0.5))
    halfway = model.state_dict()
    for name in start:
        assert torch.allclose(halfway[name], (start[name] + finetuned[name]) / 2, atol=1e-6), name
    model.load_state_dict(interpolated_state(finetuned, start, 1.0))
    assert dict(trainer.evaluate(test, load_best_model=False)) == fine_tuned_result


def test_an_interpolated_checkpoint_is_written_beside_the_run_and_loads_as_one(ml_checkpoint, tmp_path, capsys):
    from recbole_srt.quick_start import load_data_and_model
    from recbole_srt.transfer.interpolate import main as interpolate_main

    path, base = ml_checkpoint
    settings = toy_settings(base, path, epochs=2, learning_rate=0.01, lr_schedule="constant",
                            checkpoint_dir=str(tmp_path))
    finetuned = run_recbole("SRT", "beauty_toy", config_dict=settings)["saved_model_file"]
    output = str(tmp_path / "halfway.pth")
    assert interpolate_main([finetuned, "--alpha", "0.5", "--output", output]) == 0
    _, model, _, _, _, _ = load_data_and_model(output)
    start, own = load_checkpoint(path, "cpu")["state_dict"], load_checkpoint(finetuned, "cpu")["state_dict"]
    for name, value in model.state_dict().items():
        assert torch.allclose(value, (start[name] + own[name]) / 2, atol=1e-6), name
    written = load_checkpoint(output, "cpu")
    assert written["interpolation"] == {"fine_tuned": finetuned, "pretrained_model": path, "alpha": 0.5}
    assert "optimizer" not in written and "best_valid_result" not in written  # they describe the fine-tuned weights
    assert interpolate_main([finetuned, "--alpha", "0.5", "--output", finetuned]) == 2
    assert interpolate_main([path, "--alpha", "0.5", "--output", output]) == 2
    assert "was not fine-tuned from a pretrained_model" in capsys.readouterr().err
