"""Every bad input a careful new user tried (issue 26) is a clear error naming the file, line, key or value, with
exit code 2 and nothing half-written; or, where the input is usable, it is used one documented way and counted."""

import gzip
import json
import logging
import os
import shutil

import pytest

from conftest import write_atomic
from dataset_scripts.cli import main as dataset_scripts_main
from helpers import ML_TEXT, TOY_TEXT
from recbole_srt import cli, run_recbole
from recbole_srt.quick_start import prepare
from recbole_srt.recommend import main as recommend_main


def run_cli(args, capsys):
    code = cli.main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("overrides, message", [
    (["--epochs=-1", "--lr_schedule=constant"],
     "setting epochs: expected an integer >= 0, got -1 (from the command line)"),
    (["--epochs=-1"], "setting epochs: expected an integer >= 0, got -1"),
    (["--epochs=abc"], "setting epochs: expected an integer, got 'abc'"),
    (["--epochs=2.5"], "setting epochs: expected an integer, got 2.5"),
    (["--learning_rate=abc"], "setting learning_rate: expected a number, got 'abc'"),
    (["--learning_rate=0"], "setting learning_rate: expected a number > 0, got 0"),
    (["--MAX_ITEM_LIST_LENGTH=0"], "setting MAX_ITEM_LIST_LENGTH: expected an integer >= 1, got 0"),
    (["--hidden_dropout_prob=1.5"], "setting hidden_dropout_prob: expected a probability in [0, 1), got 1.5"),
    (["--epochs=2", "--epochs=3"], "--epochs given more than once"),
])
def test_bad_settings_on_the_command_line_are_named_before_anything_runs(fast_config, tmp_path, capsys, overrides,
                                                                         message):
    saved = tmp_path / "saved"
    args = ["--model=SASRec", "--dataset=ml40", f"--data_path={fast_config['data_path']}",
            f"--checkpoint_dir={saved}", *overrides]
    code, err = run_cli(args, capsys)
    assert code == 2 and f"run_recbole: error: {message}" in err
    assert not saved.exists()  # nothing written: no checkpoint of a run that did not train


def test_bad_settings_from_python_name_the_config_dict(fast_config):
    with pytest.raises(ValueError,
                       match=r"setting train_batch_size: expected an integer >= 1, got 0 \(from the config dict\)"):
        run_recbole("SRT", "ml40", config_dict={**fast_config, **ML_TEXT, "train_batch_size": 0})


def test_top_k_lists_longer_than_the_catalog_are_named(fast_config):
    with pytest.raises(ValueError,
                       match=r"setting topk: \[5, 500\] asks for top-500 lists, but dataset 'beauty_toy' has 30"):
        prepare("SRT", "beauty_toy", config_dict={**fast_config, **TOY_TEXT, "topk": [5, 500]})


def test_an_item_file_with_a_header_and_no_items_is_named(data_root, tmp_path):
    write_atomic(tmp_path, "no_items", [("u1", "1", 1), ("u1", "2", 2), ("u1", "3", 3)],
                 ["item_id:token", "title:token", "brand:token"], [])
    with pytest.raises(ValueError, match=r"no_items\.item: a header but no items"):
        prepare("SRT", "no_items", config_dict={"data_path": str(tmp_path), **TOY_TEXT})


def test_duplicate_item_ids_keep_the_first_row_and_are_counted(tmp_path, caplog):
    inters = [(f"u{u}", str(i), 10 * u + i) for u in range(1, 6) for i in range(1, 6)]
    items = [(str(i), f"item {i}", "brand") for i in range(1, 6)] + [("3", "a later row", "other"),
                                                                      ("3", "and another", "other")]
    write_atomic(tmp_path, "dup", inters, ["item_id:token", "title:token", "brand:token"], items)
    with caplog.at_level(logging.WARNING):
        _, dataset, _, _ = prepare("SASRec", "dup", config_dict={
            "data_path": str(tmp_path), **TOY_TEXT, "train_neg_sample_args": None, "loss_type": "CE", "topk": [3]})
    assert "dup.item: 2 row(s) repeat an earlier item id (e.g. '3'); the first row of each id is kept" in caplog.text
    title = dataset.item_feat["title"][dataset.token2id("item_id", "3")]
    assert dataset.field2id_token["title"][int(title)] == "item 3"
    # dataset_scripts keeps the same row, and counts the others in its statistics.
    out = tmp_path / "converted"
    assert dataset_scripts_main(["recbole", "--input", str(tmp_path / "dup"), "--name", "dup", "--output-dir",
                                 str(out), "--vocab-size", "40"]) == 0
    stats = json.loads((out / "dup" / "dup.stats.json").read_text())
    assert stats["duplicate_item_rows"] == {str(tmp_path / "dup" / "dup.item"): {"rows": 2, "first": [7, 8]}}
    converted = (out / "dup" / "dup.item").read_text()
    assert "item 3" in converted and "a later row" not in converted


def test_a_truncated_gzip_input_names_the_file_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "seq"
    folder.mkdir()
    lines = "".join(f"u{u} " + " ".join(f"i{(u + k) % 50}" for k in range(5)) + "\n" for u in range(3000))
    data = gzip.compress(lines.encode())
    (folder / "user_sequence.txt.gz").write_bytes(data[: len(data) // 2])
    (folder / "X.item").write_text("item_id:token\ttitle:token\tbrand:token\n" +
                                   "".join(f"i{i}\tthing {i}\tb\n" for i in range(50)))
    code = dataset_scripts_main(["sequences", "--input", str(folder), "--name", "x",
                                 "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{folder / 'user_sequence.txt.gz'}: truncated or corrupt compressed file, read up to line" in err
    assert not (tmp_path / "out" / "x").exists()


def test_a_byte_that_is_not_utf8_costs_its_line_not_the_conversion(tmp_path, capsys):
    folder = tmp_path / "seq"
    folder.mkdir()
    (folder / "user_sequence.txt").write_text("".join(f"u{u} a b c\n" for u in range(20)))
    rows = b"item_id:token\ttitle:token\tbrand:token\na\tLip gloss\tX\nb\tCr\xe8me\tY\nc\tSoap\tZ\n"
    (folder / "X.item").write_bytes(rows)
    out = tmp_path / "out"
    args = ["sequences", "--input", str(folder), "--name", "x", "--output-dir", str(out), "--vocab-size", "30"]
    assert dataset_scripts_main([*args, "--max-bad-fraction", "0.5"]) == 0
    stats = json.loads((out / "x" / "x.stats.json").read_text())
    assert stats["malformed_lines"][str(folder / "X.item")]["reasons"] == {"not utf-8 text": 1}
    assert stats["items_without_metadata"] == 1  # item b: its line was skipped, and counted
    shutil.rmtree(out)
    assert dataset_scripts_main(args) == 2  # over the default --max-bad-fraction 0.01
    assert "X.item: 1 of 3 lines are malformed" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def toy_checkpoint(data_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_inputs")
    settings = {"data_path": data_root, "epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32,
                "n_layers": 1, "n_heads": 2, "train_neg_count": 10, "tokenizer_vocab_size": 200, "seed": 3,
                "state": "WARNING", "show_progress": False, "tokenizer_dir": str(folder / "tok"),
                "checkpoint_dir": str(folder / "saved"), **TOY_TEXT, "text_fields": ["title", "brand"]}
    return run_recbole("SRT", "beauty_toy", config_dict=settings)["saved_model_file"]


@pytest.mark.parametrize("histories, k, message", [
    ("1 2\n\n3 4\n", "5", "histories.txt, line 2: an empty history"),
    ("1 2\n", "0", "recommend: error: k must be a positive integer (how many items per history), got 0"),
    ("1 2\n", "-1", "k must be a positive integer"),
    ("", "5", "histories.txt: no histories"),
])
def test_recommend_refuses_blank_histories_and_a_k_below_one(toy_checkpoint, tmp_path, capsys, histories, k, message):
    (tmp_path / "histories.txt").write_text(histories)
    output = tmp_path / "out.tsv"
    code = recommend_main(["--checkpoint", toy_checkpoint, "--histories", str(tmp_path / "histories.txt"),
                           "--k", k, "--output", str(output)])
    assert code == 2 and message in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize("content", [b"", b"hello\n"])
def test_recommend_names_a_checkpoint_that_is_not_one(tmp_path, capsys, content):
    (tmp_path / "model.pth").write_bytes(content)
    (tmp_path / "histories.txt").write_text("1 2\n")
    code = recommend_main(["--checkpoint", str(tmp_path / "model.pth"), "--histories", str(tmp_path / "histories.txt")])
    assert code == 2
    assert f"checkpoint {tmp_path / 'model.pth'} is not a whole PyTorch checkpoint" in capsys.readouterr().err


def test_the_shipped_example_inputs_still_run(toy_checkpoint, tmp_path):
    """The checks above leave good input alone: the same command with a good file succeeds."""
    (tmp_path / "histories.txt").write_text("1 2\n3 4 5\n")
    assert recommend_main(["--checkpoint", toy_checkpoint, "--histories", str(tmp_path / "histories.txt"), "--k", "3",
                           "--output", str(tmp_path / "out.tsv")]) == 0
    assert len((tmp_path / "out.tsv").read_text().splitlines()) == 1 + 2 * 3
    assert os.path.getsize(tmp_path / "out.tsv") > 0
