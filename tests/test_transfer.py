"""An SRT checkpoint on another catalog: its weights and tokenizer, the new popularity, zero-shot evaluation."""

import pytest
import torch

from helpers import ML_TEXT, TOY_TEXT, build
from recbole_srt import SRTTrainer, run_recbole
from recbole_srt.compat import load_checkpoint


@pytest.fixture(scope="module")
def ml_checkpoint(data_root, tmp_path_factory):
    """SRT trained one epoch on a 40-user ml-100k subset (movie titles and genres)."""
    folder = tmp_path_factory.mktemp("pretrain")
    settings = {"data_path": data_root, "epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32,
                "n_layers": 1, "n_heads": 2, "train_batch_size": 256, "eval_batch_size": 256, "show_progress": False,
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


def test_zero_shot_evaluates_the_checkpoint_without_training(ml_checkpoint):
    path, base = ml_checkpoint
    result = run_recbole("SRT", "beauty_toy", config_dict=toy_settings(base, path, epochs=0))
    assert result["saved_model_file"] is None and result["compute"]["seen_interactions"] == 0
    config, model, (_, _, test) = build("SRT", "beauty_toy", {}, **toy_settings(base, path))
    trainer = SRTTrainer(config, model)
    assert dict(trainer.evaluate(test, load_best_model=False)) == dict(result["test_result"])


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
