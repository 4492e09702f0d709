"""The sequence store (`--store`, `data_store:`): the same samples, ids and metrics as RecBole's in-memory path."""

import collections
import json
import os

import numpy as np
import pytest

from dataset_scripts.cli import main as convert_main
from dataset_scripts.synthetic import main as synthetic_main
from recbole_srt import run_recbole
from recbole_srt.data.sequence_store import SequenceStore, StoreError, count_training_targets
from recbole_srt.data.store_loaders import _EpochShare
from recbole_srt.data.user_sample import sampled_users
from recbole_srt.quick_start import prepare

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "amazon-beauty-sample")
SMALL = {"seed": 3, "show_progress": False, "state": "ERROR", "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16,
         "inner_size": 32, "n_layers": 1, "n_heads": 1, "train_batch_size": 256, "eval_batch_size": 128,
         "train_neg_count": 20, "metric_decimal_place": 8, "checkpoint_dir": "saved"}


@pytest.fixture(scope="module")
def beauty(tmp_path_factory):
    """The Beauty sample converted twice: streamed into a store, and as atomic files."""
    folder = tmp_path_factory.mktemp("store")
    for name, extra in (("beauty_store", ["--store"]), ("beauty_atomic", [])):
        assert convert_main(["sequences", "--input", FIXTURE, "--name", name, "--output-dir", str(folder), *extra]) == 0
    return {name: str(folder / name / f"{name}.yaml") for name in ("beauty_store", "beauty_atomic")}


def samples(loader):
    """The (user, history, target) multiset of one epoch."""
    counted = collections.Counter()
    for batch in loader:
        lengths = batch["item_length"].tolist()
        for user, sequence, length, target in zip(batch["user_id"].tolist(), batch["item_id_list"].tolist(), lengths,
                                                  batch["item_id"].tolist()):
            counted[(user, tuple(sequence[:length]), target)] += 1
    return counted


def both_ways(beauty, model, **settings):
    """prepare() on the store and on the atomic files of the same data."""
    store = prepare(model, config_file_list=[beauty["beauty_store"]], config_dict={**SMALL, **settings})
    memory = prepare(model, config_file_list=[beauty["beauty_atomic"]], config_dict={**SMALL, **settings})
    return store, memory


def test_streamed_store_is_complete_and_numbers_like_recbole(beauty):
    with open(beauty["beauty_store"]) as f:
        assert "data_store:" in f.read()
    (_, store_data, _, _), (_, memory_data, _, _) = both_ways(beauty, "SRT")
    store = store_data.store
    assert not os.path.exists(os.path.join(os.path.dirname(beauty["beauty_store"]), "beauty_store.inter"))
    for field in ("user_id", "item_id"):
        assert list(store_data.field2id_token[field]) == list(memory_data.field2id_token[field])
    # RecBole's augmented rows: every interaction but each user's first
    assert store.meta["n_interactions"] == len(store.items) == memory_data.inter_num + memory_data.user_num - 1
    assert store.item_text.dtype == np.int16  # the smallest type that holds the vocabulary


def test_same_training_samples_and_evaluation_users(beauty):
    (_, _, store_loaders, _), (_, _, memory_loaders, _) = both_ways(beauty, "SRT")
    assert samples(store_loaders[0]) == samples(memory_loaders[0])
    for store_loader, memory_loader in zip(store_loaders[1:], memory_loaders[1:]):
        assert samples(b[0] for b in store_loader) == samples(b[0] for b in memory_loader)


def test_same_model_same_metrics_both_ways(beauty, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # With history match: its idf comes from the store's memory-mapped token table on one path.
    trained = run_recbole("SRT", config_file_list=[beauty["beauty_atomic"]],
                          config_dict={**SMALL, "epochs": 1, "lexical_match_dim": 64, "repeat_match": True})
    results = {}
    for name, extra in (("beauty_store", {}), ("beauty_atomic", {"data_store": None})):
        for model, settings in (("SRT", {"pretrained_model": trained["saved_model_file"]}),
                                ("SASRec", {"loss_type": "CE"}), ("BERT4Rec", {})):
            run = run_recbole(model, config_file_list=[beauty[name]],
                              config_dict={**SMALL, **settings, **extra, "epochs": 0, "topk": [10, 500],
                                           "valid_metric": "NDCG@10"})
            results[(name, model)] = (run["best_valid_result"], run["test_result"])
    for model in ("SRT", "SASRec", "BERT4Rec"):
        assert results[("beauty_store", model)] == results[("beauty_atomic", model)], model
    # 2,795 items ranked: top-500 lists hold enough positives that any difference in scores or candidates would show
    assert all(results[("beauty_store", model)][1]["hit@500"] > 0.1 for model in ("SRT", "SASRec", "BERT4Rec"))


def test_training_from_a_store(beauty, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = run_recbole("SRT", config_file_list=[beauty["beauty_store"]], config_dict={**SMALL, "epochs": 1})
    assert run["compute"]["seen_interactions"] > 0 and run["test_result"]["ndcg@10"] >= 0


def test_eval_user_sample_takes_the_same_users_both_ways(beauty):
    (_, _, store_loaders, _), (_, _, memory_loaders, _) = both_ways(beauty, "SASRec", eval_user_sample=50,
                                                                   loss_type="CE")
    for store_loader, memory_loader in zip(store_loaders[1:], memory_loaders[1:]):
        assert store_loader.sample_size == memory_loader.sample_size == 50
        assert samples(b[0] for b in store_loader) == samples(b[0] for b in memory_loader)


def test_user_sample_is_seeded_and_nested():
    users = np.arange(1, 1001)
    small, large = sampled_users(users, 10, seed=1), sampled_users(users, 100, seed=1)
    assert len(small) == 10 and set(small) <= set(large)
    assert list(small) == list(sampled_users(users[::-1].copy(), 10, seed=1))
    assert list(small) != list(sampled_users(users, 10, seed=2))


def test_process_shares_are_disjoint_and_cover_every_sample():
    shares = [_EpochShare(103, rank, 4, seed=5) for rank in range(4)]
    for share in shares:
        share.set_epoch(2)
    orders = [share.order(None) for share in shares]
    assert {len(o) for o in orders} == {26}
    assert sorted(set(np.concatenate(orders))) == list(range(103))
    assert sum(len(set(a) & set(b)) for a in orders for b in orders if a is not b) <= 2 * 3 * 1  # only the padding


def test_training_counts_follow_leave_one_out():
    # users of 1, 2, 3, 4 and 5 items: training targets at positions 1, 1, 1 and 1..2
    offsets = np.array([0, 0, 1, 3, 6, 10, 15])
    items = np.array([1, 1, 2, 1, 2, 3, 1, 2, 3, 4, 1, 2, 3, 4, 5], dtype=np.int32)
    counts = count_training_targets(offsets, items, 5)
    assert counts.tolist() == [0, 0, 4, 1, 0, 0]


def test_incomplete_or_inconsistent_store_is_a_clear_error(beauty, tmp_path):
    store = os.path.join(os.path.dirname(beauty["beauty_store"]), "store")
    copy = tmp_path / "copy"
    os.makedirs(copy)
    for name in os.listdir(store):
        if name != "store.json":
            os.link(os.path.join(store, name), copy / name)
    with pytest.raises(StoreError, match="store.json is missing.*incomplete"):
        SequenceStore(str(copy))
    with open(os.path.join(store, "store.json")) as f:
        meta = json.load(f)
    meta["n_interactions"] += 1
    with open(copy / "store.json", "w") as f:
        json.dump(meta, f)
    with pytest.raises(StoreError, match="items.npy has shape"):
        SequenceStore(str(copy))
    with pytest.raises(StoreError, match="is not a folder"):
        SequenceStore(str(tmp_path / "nowhere"))


def test_store_settings_it_cannot_serve_fail_first(beauty):
    with pytest.raises(ValueError, match="eval_horizon 2 is not served from a store"):
        prepare("SRT", config_file_list=[beauty["beauty_store"]], config_dict={**SMALL, "eval_horizon": 2})
    with pytest.raises(ValueError, match="text_fields \\['title'\\].*holds the text of \\['title', 'brand'\\]"):
        prepare("SRT", config_file_list=[beauty["beauty_store"]], config_dict={**SMALL, "text_fields": ["title"]})


def test_a_user_on_two_lines_is_an_error(tmp_path, capsys):
    raw = tmp_path / "raw"
    assert synthetic_main(["--items", "30", "--users", "10", "--interactions", "60", "--output", str(raw)]) == 0
    import gzip

    with gzip.open(raw / "user_sequence.txt.gz", "at") as f:
        f.write("u3 i1 i2\n")
    assert convert_main(["sequences", "--input", str(raw), "--name", "d", "--output-dir", str(tmp_path),
                         "--store"]) == 2
    assert "1 users appear on more than one line (first: 'u3')" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "d")


def test_streamed_conversion_counts_each_bad_item_line_once(tmp_path):
    import gzip

    raw = tmp_path / "raw"
    assert synthetic_main(["--items", "40", "--users", "10", "--interactions", "60", "--output", str(raw)]) == 0
    with gzip.open(raw / "synthetic.item.gz", "at") as f:
        f.write("i999\tonly two fields\n")
    assert convert_main(["sequences", "--input", str(raw), "--name", "d", "--output-dir", str(tmp_path), "--store",
                         "--max-bad-fraction", "0.5"]) == 0
    with open(tmp_path / "d" / "d.stats.json") as f:
        stats = json.load(f)
    (entry,) = stats["malformed_lines"].values()
    assert (entry["bad"], entry["total"]) == (1, 41)
    assert SequenceStore(str(tmp_path / "d" / "store")).n_items == 40


def test_two_torchrun_processes_train_from_one_store_and_the_checkpoint_reloads(beauty, tmp_path):
    import re
    import subprocess
    import sys

    from recbole_srt.quick_start import load_data_and_model
    from recbole_srt.trainer import SRTTrainer

    args = ["-m", "recbole_srt.cli", "--model=SRT", f"--config_files={beauty['beauty_store']}", "--epochs=1",
            "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--n_heads=1",
            "--train_batch_size=256", "--train_neg_count=20", "--gpu_id=''", f"--checkpoint_dir={tmp_path / 'saved'}"]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    (printed,) = re.findall(r"test result: (\{.*\})", done.stdout)
    (checkpoint,) = (tmp_path / "saved").glob("SRT-*.pth")
    config, model, dataset, _, _, test = load_data_and_model(str(checkpoint))
    assert type(dataset).__name__ == "StoreDataset"
    assert str(dict(SRTTrainer(config, model).evaluate(test, load_best_model=False))) == printed


def synthetic_with_a_bad_line(folder):
    import gzip

    assert synthetic_main(["--items", "40", "--users", "12", "--interactions", "80", "--output", str(folder)]) == 0
    with gzip.open(folder / "user_sequence.txt.gz", "at") as f:
        f.write("u_without_items\n")


def interrupt(*_):
    raise KeyboardInterrupt


def store_files(dataset_folder):
    store = dataset_folder / "store"
    return {name: (store / name).read_bytes() for name in sorted(os.listdir(store))}


def test_an_interrupted_streamed_conversion_continues_after_its_last_finished_stage(tmp_path, monkeypatch):
    from dataset_scripts import store as store_module

    raw = tmp_path / "raw"
    synthetic_with_a_bad_line(raw)
    args = ["sequences", "--input", str(raw), "--name", "d", "--store", "--max-bad-fraction", "0.5"]
    assert convert_main([*args, "--output-dir", str(tmp_path / "straight")]) == 0
    monkeypatch.setattr(store_module, "_tokenizer", interrupt)
    with pytest.raises(KeyboardInterrupt):
        convert_main([*args, "--output-dir", str(tmp_path / "out")])
    work = tmp_path / "out" / ".d.partial"
    with open(work / "progress.json") as f:
        assert list(json.load(f)["stages"]) == ["read", "order"]
    assert not (tmp_path / "out" / "d").exists()

    monkeypatch.undo()
    monkeypatch.setattr(store_module, "_read_sequences", lambda *_: pytest.fail("the finished read stage ran again"))
    monkeypatch.setattr(store_module, "_ordered", lambda *_: pytest.fail("the finished order stage ran again"))
    assert convert_main([*args, "--output-dir", str(tmp_path / "out")]) == 0
    assert not work.exists()
    assert store_files(tmp_path / "out" / "d") == store_files(tmp_path / "straight" / "d")
    stats = [json.loads((tmp_path / run / "d" / "d.stats.json").read_text()) for run in ("straight", "out")]
    assert stats[1]["malformed_lines"] == stats[0]["malformed_lines"] != {}  # counted in the stage that was kept
    assert {k: v for k, v in stats[1].items() if k not in ("store", "tokenizer")} == \
        {k: v for k, v in stats[0].items() if k not in ("store", "tokenizer")}


def test_changed_inputs_start_the_conversion_over_and_one_folder_takes_one_conversion(tmp_path, monkeypatch):
    import gzip

    from dataset_scripts import store as store_module
    from dataset_scripts.resume import WorkFolder
    from dataset_scripts.sources import InputError

    raw = tmp_path / "raw"
    synthetic_with_a_bad_line(raw)
    args = ["sequences", "--input", str(raw), "--name", "d", "--output-dir", str(tmp_path), "--store",
            "--max-bad-fraction", "0.5"]
    monkeypatch.setattr(store_module, "_tokenizer", interrupt)
    with pytest.raises(KeyboardInterrupt):
        convert_main(args)
    monkeypatch.undo()
    with gzip.open(raw / "user_sequence.txt.gz", "at") as f:
        f.write("u_new i1 i2 i3\n")
    assert convert_main(args) == 0
    assert SequenceStore(str(tmp_path / "d" / "store")).ids("users")[-1] == "u_new"

    first = WorkFolder(tmp_path, "e")
    with pytest.raises(InputError, match="another conversion is writing .*\\.e\\.partial"):
        WorkFolder(tmp_path, "e")
    first.discard()
