"""Checkpoints hold data only (nothing in a file runs when it is opened), survive SIGKILL at any moment, and resume
to exactly the run that was never interrupted."""

import os
import subprocess
import sys

import pytest
import torch

from helpers import ML_TEXT, resumed_equals_straight
from recbole_srt import SRTTrainer, load_data_and_model, run_recbole, upgrade_checkpoint
from recbole_srt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from recbole_srt.config import Config


def test_a_run_saves_a_data_only_checkpoint_that_rebuilds_config_model_and_data(fast_config):
    result = run_recbole("SRT", "ml40", config_dict={**fast_config, **ML_TEXT, "epochs": 2})
    checkpoint_file = result["saved_model_file"]
    assert torch.serialization.get_unsafe_globals_in_checkpoint(checkpoint_file) == []
    checkpoint = load_checkpoint(checkpoint_file, "cpu")
    assert checkpoint["lr_scheduler"]["last_epoch"] > 0
    assert isinstance(checkpoint["other_parameter"]["tokenizer_proto"], bytes)
    config, model, _, _, _, test_data = load_data_and_model(checkpoint_file)
    assert config["MODEL_TYPE"].name == "SEQUENTIAL" and config["device"] == torch.device("cpu")
    assert config["n_layers"] == fast_config["n_layers"] and config["text_fields"] == ML_TEXT["text_fields"]
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, checkpoint["state_dict"][name])
    trainer = SRTTrainer(config, model)
    assert trainer.evaluate(test_data, load_best_model=False) == result["test_result"]


WRITER = """
import sys, torch
from recbole_srt.checkpoint import save_checkpoint
for count in range(1, 10**9):
    save_checkpoint({"count": count, "weights": torch.full((4_000_000,), float(count))}, sys.argv[1])
    print(count, flush=True)
"""


@pytest.mark.parametrize("saves_before_kill", [1, 3])
def test_sigkill_while_saving_leaves_a_whole_checkpoint(tmp_path, saves_before_kill):
    path = tmp_path / "model.pth"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    for _ in range(saves_before_kill):
        writer.stdout.readline()
    writer.kill()  # the writer does nothing but save: the kill lands inside a save (16 MB each)
    writer.wait()
    checkpoint = load_checkpoint(path, "cpu")
    assert checkpoint["count"] >= saves_before_kill
    assert torch.equal(checkpoint["weights"], torch.full((4_000_000,), float(checkpoint["count"])))


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    save_checkpoint({"weights": torch.ones(3)}, path)

    def killed(state, file, **kwargs):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"weights": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path, "cpu")["weights"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_a_run_killed_after_an_epoch_resumes_to_exactly_the_uninterrupted_run(fast_config, tmp_path, monkeypatch,
                                                                                one_thread):
    settings = {**fast_config, **ML_TEXT, "epochs": 3, "stopping_step": 10, "lr_schedule": "one_cycle",
                "checkpoint_dir": str(tmp_path / "saved")}
    resumed_equals_straight("SRT", "ml40", settings, monkeypatch, stop_after_epoch=1)


def test_resuming_needs_an_existing_file_and_the_same_model(fast_config, tmp_path):
    settings = {**fast_config, **ML_TEXT}
    with pytest.raises(FileNotFoundError, match="resume_from: checkpoint file 'nowhere.pth'"):
        run_recbole("SRT", "ml40", config_dict={**settings, "resume_from": "nowhere.pth"})
    sasrec = run_recbole("SASRec", "ml40", config_dict={k: v for k, v in settings.items() if k != "train_neg_count"})
    with pytest.raises(ValueError, match="trained as SASRec, not SRT"):
        run_recbole("SRT", "ml40", config_dict={**settings, "resume_from": sasrec["saved_model_file"]})


def crafted_checkpoint(path, payload):
    """A file whose unpickling calls `payload` = (callable, args): what a malicious shared model would hold."""

    class Crafted:
        def __reduce__(self):
            return payload

    torch.save({"config": Crafted(), "state_dict": {}}, str(path), pickle_protocol=2)


def test_a_checkpoint_that_would_run_code_is_refused_with_the_file_named_and_nothing_created(fast_config, tmp_path):
    from recbole.trainer import Trainer

    made_by_the_file = tmp_path / "made_by_the_file"
    config = Config("SASRec", "ml40", config_dict={"data_path": fast_config["data_path"],
                                                    "checkpoint_dir": str(made_by_the_file)})
    constructor = tmp_path / "constructor.pth"
    crafted_checkpoint(constructor, (Trainer, (config, torch.nn.Linear(1, 1))))
    command = tmp_path / "command.pth"
    crafted_checkpoint(command, (os.system, (f"mkdir {made_by_the_file}",)))
    for path in (constructor, command):
        for open_it in (lambda: load_checkpoint(path, "cpu"), lambda: load_data_and_model(str(path))):
            with pytest.raises(CheckpointError, match=f"checkpoint {path} holds pickled objects"):
                open_it()
        with pytest.raises(CheckpointError, match="trust_checkpoint"):
            run_recbole("SRT", "ml40", config_dict={**fast_config, **ML_TEXT, "pretrained_model": str(path)})
    with pytest.raises(CheckpointError, match="system.*trusted or not"):  # trusted: classes only, never functions
        load_checkpoint(command, "cpu", trust=True)
    assert not made_by_the_file.exists()


def test_a_checkpoint_from_before_data_only_opens_only_when_trusted(fast_config, tmp_path):
    result = run_recbole("SRT", "ml40", config_dict={**fast_config, **ML_TEXT})
    checkpoint = load_checkpoint(result["saved_model_file"], "cpu")
    config, *_ = load_data_and_model(result["saved_model_file"])
    legacy = tmp_path / "legacy.pth"
    torch.save({**checkpoint, "config": config}, str(legacy), pickle_protocol=2)  # the Config object itself
    with pytest.raises(CheckpointError,
                       match=r"legacy.pth holds pickled objects \(recbole.utils.enum_type.EvaluatorType"):
        load_data_and_model(str(legacy))
    trusted_config, model, *_ = load_data_and_model(str(legacy), trust_checkpoint=True)
    assert trusted_config["n_layers"] == config["n_layers"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint["state_dict"][name])
    upgraded = tmp_path / "upgraded.pth"
    assert upgrade_checkpoint.main([str(legacy), "--output", str(upgraded)]) == 0
    upgraded_config, model, *_ = load_data_and_model(str(upgraded))  # no trust needed any more
    assert upgraded_config["n_layers"] == config["n_layers"] and upgraded_config["MODEL_TYPE"] == config["MODEL_TYPE"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint["state_dict"][name])


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n", "truncated"])
def test_a_broken_checkpoint_file_is_an_error_that_names_it(fast_config, tmp_path, content):
    path = tmp_path / "broken.pth"
    if content == "truncated":
        save_checkpoint({"weights": torch.ones(10_000)}, path)
        content = path.read_bytes()[:20_000]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is not a whole PyTorch checkpoint"):
        load_data_and_model(str(path))
    with pytest.raises(CheckpointError, match=f"checkpoint {path}"):
        run_recbole("SRT", "ml40", config_dict={**fast_config, **ML_TEXT, "pretrained_model": str(path)})


def test_generators_resume_on_the_runs_device_and_ignore_another_kinds_state():
    from recbole_srt import random_state

    cpu = torch.device("cpu")
    loader = torch.Generator().manual_seed(3)
    torch.manual_seed(7)
    state = random_state.capture(cpu, loader)
    assert state["device"] is None  # a CPU run has no accelerator generator to keep
    expected = (torch.rand(3), torch.randperm(5, generator=loader))
    # Written on a GPU run: its CUDA state is not this CPU run's, and is left alone rather than failing.
    state["device"] = {"type": "cuda", "state": torch.zeros(16, dtype=torch.uint8)}
    random_state.restore(state, cpu, loader)
    assert torch.equal(torch.rand(3), expected[0])
    assert torch.equal(torch.randperm(5, generator=loader), expected[1])
