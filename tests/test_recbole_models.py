"""Every sequential model RecBole 1.2.1 ships runs through our pipeline as it does through RecBole's: one epoch,
save, reload the checkpoint through the safe loader, test."""

import inspect
import json
import os
import subprocess
import sys

import pytest
import recbole.model.sequential_recommender as sequential
import recbole.trainer as recbole_trainer

from recbole_srt import SRTTrainer, run_recbole
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.trainer import get_trainer

# Small sizes under every name RecBole's sequential models use for them.
SMALL = {
    "epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "train_batch_size": 256, "eval_batch_size": 256, "hidden_size": 16,
    "embedding_size": 16, "inner_size": 32, "n_layers": 1, "num_layers": 1, "n_heads": 2, "kernel_size": 3,
    "mlp_hidden_size": [16], "show_progress": False, "state": "WARNING", "seed": 7,
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
}
ITEM_FEATURES = {"load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "class"]},
                 "selected_features": ["class"], "item_attribute": "class"}
PER_MODEL = {
    "SASRecF": ITEM_FEATURES,
    "GRU4RecF": ITEM_FEATURES,
    "FDSA": ITEM_FEATURES,
    "S3Rec": {**ITEM_FEATURES, "pretrain_epochs": 1, "save_step": 1},
    "FEARec": {"n_layers": 2},  # its filter sizes divide by n_layers - 1
}
NEEDS_OTHER_DATA = {
    "GRU4RecKG": "needs a knowledge graph with pre-trained entity embeddings (.kg, .link, .ent atomic files)",
    "KSR": "needs a knowledge graph with pre-trained entity embeddings (.kg, .link, .ent atomic files)",
    "DIN": "a click-through-rate model: needs a label field (`threshold` on ratings) and pointwise evaluation",
    "DIEN": "a click-through-rate model: needs a label field (`threshold` on ratings) and pointwise evaluation",
}
SEQUENTIAL_MODELS = sorted(name for name, obj in inspect.getmembers(sequential, inspect.isclass))


def test_every_shipped_sequential_model_is_covered():
    assert len(SEQUENTIAL_MODELS) == 31
    assert set(NEEDS_OTHER_DATA) < set(SEQUENTIAL_MODELS)


@pytest.mark.parametrize("model_name", [m for m in SEQUENTIAL_MODELS if m not in NEEDS_OTHER_DATA])
def test_recbole_sequential_model_trains_saves_reloads_and_tests(model_name, data_root):
    config = {**SMALL, "data_path": data_root, **PER_MODEL.get(model_name, {})}
    result = run_recbole(model_name, "ml40", config_dict=config)
    assert set(result["test_result"]) >= {"recall@10", "ndcg@10"}
    checkpoint = load_checkpoint(result["saved_model_file"], "cpu")
    assert checkpoint["config"]["model"] == model_name


def test_s3rec_keeps_its_pretraining_stage_and_fine_tunes_from_it(data_root, tmp_path):
    """S3Rec gets RecBole's S3RecTrainer (pre-training without evaluation, a snapshot every `save_step` epochs)
    with our additions; the snapshot loads into the fine-tuning stage, which trains and evaluates."""
    assert issubclass(get_trainer(sequential.S3Rec.type, "S3Rec"), recbole_trainer.S3RecTrainer)
    base = {**SMALL, "data_path": data_root, **PER_MODEL["S3Rec"], "pretrain_epochs": 2, "save_step": 1,
            "checkpoint_dir": str(tmp_path / "ckpt")}
    pretrained = run_recbole("S3Rec", "ml40", config_dict=base)
    assert pretrained["best_valid_result"] is None  # the pre-training stage does not evaluate
    snapshots = sorted(os.listdir(tmp_path / "ckpt"))
    assert snapshots == ["S3Rec-ml40-1.pth", "S3Rec-ml40-2.pth"]
    assert pretrained["saved_model_file"].endswith("S3Rec-ml40-2.pth")
    finetuned = run_recbole("S3Rec", "ml40", config_dict={
        **base, "train_stage": "finetune", "pre_model_path": pretrained["saved_model_file"], "epochs": 1})
    assert finetuned["best_valid_result"] is not None and "ndcg@10" in finetuned["test_result"]


def test_plain_sequential_models_get_recbole_trainer_with_our_additions():
    trainer = get_trainer(sequential.SASRec.type, "SASRec")
    assert trainer is SRTTrainer and issubclass(trainer, recbole_trainer.Trainer)


FRESH_PROCESS = """
import json, sys
import torch
from recbole_srt import load_data_and_model
from recbole_srt.trainer import get_trainer

config, model, dataset, train, valid, test = load_data_and_model(sys.argv[1])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
evaluated = trainer.evaluate(test, load_best_model=False)
batch = next(iter(test))[0].to(config["device"])
scores = model.full_sort_predict(batch)
trainer.fit(train, saved=False)  # fine-tune one more epoch from the loaded weights
print(json.dumps({"test": dict(evaluated), "scores": list(scores.shape), "n_items": dataset.item_num,
                  "anomaly": torch.is_anomaly_enabled()}))
"""


@pytest.mark.parametrize("model_name", ["SRT", "SASRecF"])
def test_saved_model_evaluates_predicts_and_fine_tunes_in_a_fresh_process(model_name, data_root, tmp_path):
    """A new interpreter that only loads a checkpoint (no Config built before it) has what RecBole's metrics need."""
    extra = {**ITEM_FEATURES} if model_name == "SASRecF" else {
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "movie_title", "class"]},
        "text_fields": ["movie_title", "class"], "train_neg_count": 20, "tokenizer_vocab_size": 300,
        "tokenizer_dir": str(tmp_path / "tok")}
    result = run_recbole(model_name, "ml40", config_dict={**SMALL, "data_path": data_root, **extra})
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, result["saved_model_file"]], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert fresh["test"] == pytest.approx(dict(result["test_result"]))
    assert fresh["scores"][1] == fresh["n_items"] and not fresh["anomaly"]


MISSING_VALUES = """
import json, os
from recbole.data import create_dataset
from recbole_srt import Config

config = Config(model="SASRec", dataset="gaps", command_line=False, config_dict={
    "data_path": os.environ["DATA_PATH"], "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"],
    "item": ["item_id", "genres"]}, "state": "WARNING"})
dataset = create_dataset(config)
genres = {dataset.id2token("item_id", i): [dataset.id2token("genres", g) for g in row if g]
          for i, row in enumerate(dataset.item_feat["genres"].tolist()) if i}
print(json.dumps({"rating": dataset.inter_feat["rating"].tolist(), "genres": genres}))
"""


def test_missing_values_and_token_sequences_load_without_pandas_3_warnings(tmp_path):
    """RecBole fills missing values with chained inplace `fillna` and splits token sequences with `Series.agg(len)`:
    under our pandas pin both work, and importing recbole_srt hides pandas' FutureWarnings about them."""
    folder = tmp_path / "gaps"
    folder.mkdir()
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"u{u}\ti{(u + k) % 6}\t{'' if (u, k) == (1, 2) else 2 + (u + k) % 3}\t{k}"
              for u in range(1, 5) for k in range(5)]
    (folder / "gaps.inter").write_text("\n".join(inter) + "\n")
    items = ["item_id:token\tgenres:token_seq"] + [f"i{i}\t{'' if i == 3 else 'drama comedy'}" for i in range(6)]
    (folder / "gaps.item").write_text("\n".join(items) + "\n")
    done = subprocess.run([sys.executable, "-c", MISSING_VALUES], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "DATA_PATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FutureWarning" not in done.stderr, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    given = [2 + (u + k) % 3 for u in range(1, 5) for k in range(5) if (u, k) != (1, 2)]
    assert len(loaded["rating"]) == 20 and loaded["rating"].count(sum(given) / len(given)) == 1
    assert loaded["genres"] == {f"i{i}": [] if i == 3 else ["drama", "comedy"] for i in range(6)}
