"""Data-parallel training and evaluation: two gloo processes under torchrun against one process."""

import os
import re
import subprocess
import sys

import pytest
import torch
import yaml

from distributed_worker import samples
from helpers import ML_TEXT, build
from recbole_srt import SRTTrainer, load_data_and_model
from recbole_srt import distributed
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def torchrun(args, cwd, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": HERE}
    done = subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


@pytest.fixture(scope="module")
def two_processes(data_root, tmp_path_factory):
    """Both processes' results of tests/distributed_worker.py (one torchrun for all cases: start-up is slow)."""
    out = tmp_path_factory.mktemp("ddp")
    torchrun([os.path.join(HERE, "distributed_worker.py"), data_root, str(out)], cwd=out)
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)]  # written by the worker


def test_one_step_on_two_processes_equals_one_step_on_the_global_batch(two_processes, fast_config):
    ranks = [r["step"] for r in two_processes]
    assert len(ranks[0]["samples"]) == len(ranks[1]["samples"]) == 8
    assert not set(ranks[0]["samples"]) & set(ranks[1]["samples"])
    config, model, (train, _, _) = build("SASRec", "ml80", fast_config, loss_type="CE", hidden_dropout_prob=0.0,
                                         attn_dropout_prob=0.0, learner="sgd", train_batch_size=16, shuffle=False)
    trainer = SRTTrainer(config, model)
    batch = next(iter(train))
    assert samples(batch) == sorted(ranks[0]["samples"] + ranks[1]["samples"])  # the global batch, split
    trainer.optimizer.zero_grad()
    model.calculate_loss(batch).backward()
    trainer.optimizer.step()
    for name, value in model.state_dict().items():
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name]), name
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_two_process_evaluation_equals_one_process_exactly(two_processes, fast_config):
    ranks = [r["evaluation"] for r in two_processes]
    assert ranks[0]["valid"] == ranks[1]["valid"] and ranks[0]["test"] == ranks[1]["test"]
    config, model, (_, valid, test) = build("SRT", "ml80", fast_config, eval_batch_size=7, eval_args={
        "split": {"LS": "valid_and_test"}, "order": "TO", "mode": {"valid": "sampled50", "test": "full"}},
        metrics=["NDCG", "Hit", "MRR"], topk=[5, 10])
    model.load_state_dict(ranks[0]["state"])
    trainer = SRTTrainer(config, model)
    assert dict(trainer.evaluate(valid, load_best_model=False)) == ranks[0]["valid"]
    assert dict(trainer.evaluate(test, load_best_model=False)) == ranks[0]["test"]


def test_training_keeps_processes_identical_and_shares_one_checkpoint(two_processes):
    ranks = [r["training"] for r in two_processes]
    assert ranks[0]["checkpoint"] == ranks[1]["checkpoint"] and os.path.isfile(ranks[0]["checkpoint"])
    assert ranks[0]["test"] == ranks[1]["test"]
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    # The distributed checkpoint opens in one process and gives the same test metrics ...
    config, model, _, train, valid, test = load_data_and_model(ranks[0]["checkpoint"])
    assert config["single_spec"] and config["world_size"] == 1
    trainer = SRTTrainer(config, model)
    assert dict(trainer.evaluate(test, load_best_model=False)) == ranks[0]["test"]
    # ... and one process resumes the two processes' training from it. The checkpoint's optimizer state ends a
    # finished one-cycle schedule (LR near zero): a constant, fresh LR shows that training goes on.
    config["epochs"], config["lr_schedule"] = 3, "constant"
    trainer = SRTTrainer(config, model)
    trainer.resume_checkpoint(ranks[0]["checkpoint"])
    assert trainer.start_epoch in (1, 2)
    for group in trainer.optimizer.param_groups:
        group["lr"] = 0.01
    before = {name: value.clone() for name, value in model.state_dict().items()}
    trainer.fit(train, valid, saved=False)
    assert any(not torch.equal(before[name], value) for name, value in model.state_dict().items())


@pytest.mark.parametrize("launcher", ["torchrun", "nproc"])
def test_cli_on_two_processes_trains_saves_and_the_checkpoint_reloads(launcher, data_root, tmp_path):
    (tmp_path / "ml80.yaml").write_text(yaml.safe_dump(ML_TEXT))
    args = ["--model=SRT", "--dataset=ml80", "--config_files=ml80.yaml", f"--data_path={data_root}", "--epochs=2",
            "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--train_batch_size=64",
            "--train_neg_count=20", "--tokenizer_vocab_size=300", "--gpu_id=''",
            f"--checkpoint_dir={tmp_path / 'saved'}"]
    if launcher == "torchrun":
        done = torchrun(["-m", "recbole_srt.cli", *args], cwd=tmp_path)
    else:  # RecBole's key: processes spawned on this machine
        done = subprocess.run([sys.executable, "-m", "recbole_srt.cli", *args, "--nproc=2"], capture_output=True,
                              text=True, timeout=600, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-5000:]
    printed = re.findall(r"test result: (\{.*\})", done.stdout)
    assert len(printed) == 1  # one report
    checkpoints = list((tmp_path / "saved").glob("SRT-*.pth"))
    assert len(checkpoints) == 1
    config, model, _, _, _, test = load_data_and_model(str(checkpoints[0]))
    assert load_checkpoint(str(checkpoints[0]), "cpu")["config"]["world_size"] == 2
    result = SRTTrainer(config, model).evaluate(test, load_best_model=False)
    assert str(dict(result)) == printed[0]


def test_a_stalled_process_is_named_in_a_clear_error(data_root, tmp_path):
    (tmp_path / "ml80.yaml").write_text(yaml.safe_dump(ML_TEXT))
    args = ["--model=SRT", "--dataset=ml80", "--config_files=ml80.yaml", f"--data_path={data_root}", "--epochs=1",
            "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1", "--train_batch_size=64",
            "--train_neg_count=20", "--tokenizer_vocab_size=300", "--gpu_id=''", "--dist_timeout=5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": HERE}
    done = subprocess.run([*TORCHRUN, os.path.join(HERE, "stalled_worker.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert re.search(r"run_recbole: error: process 0 of 2 waited dist_timeout \(5 s\) for the other processes and "
                     r"got no answer \(.*\)\. One of them is stopped", done.stderr), done.stderr[-3000:]


def test_nccl_without_cuda_is_a_clear_error(monkeypatch, data_root):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="'nccl' needs CUDA"):
        Config(model="SRT", dataset="ml80", config_dict={"data_path": data_root, "dist_backend": "nccl"})


def test_more_processes_than_users_or_batch_is_a_clear_error():
    class Loader:
        def __init__(self, sample_size):
            self.sample_size = sample_size

    config = {"world_size": 4, "train_batch_size": 256}
    with pytest.raises(ValueError, match="3 test users for 4 processes"):
        distributed.check_sizes(config, Loader(1000), [("validation users", Loader(10)), ("test users", Loader(3))])
    with pytest.raises(ValueError, match="train_batch_size 6 .* multiple of the 4 processes"):
        distributed.check_sizes({**config, "train_batch_size": 6}, Loader(1000), [])
