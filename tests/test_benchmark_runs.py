"""The quality benchmark's runs survive a kill and go on past a limit: a run killed after an epoch, or stopped by
`--epoch_limit`, continues from its last epoch to exactly the record of the run that was never stopped."""

import json
import os
import shutil

import pytest
import yaml

from conftest import REPO

BENCHMARKS = os.path.join(REPO, "benchmarks")


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    import quality

    return quality


@pytest.fixture
def converted_ml40(data_root, tmp_path, fast_config):
    """ml40 as `dataset_scripts` leaves a dataset: a folder with NAME.yaml, which the benchmark reads."""
    data_path = tmp_path / "data"
    shutil.copytree(os.path.join(data_root, "ml40"), data_path / "ml40")
    settings = {"dataset": "ml40", "load_col": {"inter": ["user_id", "item_id", "timestamp"],
                                                "item": ["item_id", "movie_title", "class"]},
                "text_fields": ["movie_title", "class"], "tokenizer_vocab_size": 300,
                "tokenizer_dir": fast_config["tokenizer_dir"],
                # The dataset's own settings win over the budget's: small and quick, and enough steps to learn.
                "hidden_size": 16, "inner_size": 32, "n_layers": 1, "MAX_ITEM_LIST_LENGTH": 10,
                "train_batch_size": 64, "learning_rate": 0.01}
    (data_path / "ml40" / "ml40.yaml").write_text(yaml.safe_dump(settings))
    return str(data_path)


def run(quality, data_path, results, *flags):
    quality.main(["run", "--datasets", "ml40", "--data_path", data_path, "--models", "SRT-100", "--seeds", "1",
                  "--max_epochs", "3", "--stopping_step", "3", "--results", str(results), *flags])
    return quality.read_results(str(results))


def same_run(a, b):
    for key in ("test", "best_valid_ndcg@5", "epochs_run", "epochs_to_best", "stopped_by"):
        assert a[key] == b[key], key


def test_a_killed_run_resumes_and_a_limited_one_extends_to_exactly_the_uninterrupted_run(
        quality, converted_ml40, tmp_path, monkeypatch):
    import run_state

    [straight] = run(quality, converted_ml40, tmp_path / "straight.jsonl", "--epoch_limit", "2")
    assert straight["epochs_run"] == 2 and straight["stopped_by"].startswith("epoch limit")

    original_save = run_state.RunState.save

    def save_then_kill(self, last_checkpoint, epoch, progress):
        original_save(self, last_checkpoint, epoch, progress)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(run_state.RunState, "save", save_then_kill)
        run(quality, converted_ml40, tmp_path / "killed.jsonl")
    assert quality.read_results(str(tmp_path / "killed.jsonl")) == []

    resumed_at = []
    with monkeypatch.context() as patch:
        check = run_state.RunState.check_resumed
        patch.setattr(run_state.RunState, "check_resumed",
                      lambda self, state, epoch: resumed_at.append(epoch) or check(self, state, epoch))
        [resumed] = run(quality, converted_ml40, tmp_path / "killed.jsonl", "--epoch_limit", "2")
    assert resumed_at == [0]  # went on after the first epoch, not from the start
    same_run(resumed, straight)
    assert resumed["seconds_per_epoch"] > 0

    # Without --extend a recorded run is done; with it, the limited run goes on to the end of its schedule, and its
    # new record replaces the old one.
    assert run(quality, converted_ml40, tmp_path / "killed.jsonl") == [resumed]
    [extended] = run(quality, converted_ml40, tmp_path / "killed.jsonl", "--extend")
    assert extended["epochs_run"] == 3 and extended["stopped_by"] == "early stopping or max epochs"
    with open(tmp_path / "killed.jsonl") as f:
        assert len(f.readlines()) == 2
    assert os.listdir(run_state.STATE_DIR) == [os.path.basename(
        run_state.RunState(str(tmp_path / "straight.jsonl"), ("ml40", "SRT-100", "default", 1)).path)]


def test_extending_a_run_without_saved_progress_says_so_and_keeps_its_record(quality, converted_ml40, tmp_path,
                                                                             capsys):
    results = tmp_path / "results.jsonl"
    record = {"dataset": "ml40", "label": "SRT-100", "variant": "default", "seed": 1, "stopped_by": "time limit (9 s)",
              "test": {"ndcg@5": 0.1}}
    results.write_text(json.dumps(record) + "\n")
    assert run(quality, converted_ml40, results, "--extend") == [record]
    assert "1 run(s) stopped by a limit have no saved progress" in capsys.readouterr().out


def test_progress_an_epoch_apart_from_its_checkpoint_is_an_error_naming_both(quality):
    import run_state

    state = run_state.RunState("results.jsonl", ("ml40", "SRT-100", "default", 1))
    with pytest.raises(RuntimeError, match=r"last\.pth holds epoch 4, its saved progress .* epoch 3"):
        state.check_resumed({"last_checkpoint": "saved/SRT-x-last.pth", "epoch": 3}, 4)
