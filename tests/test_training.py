import pickle

import pytest
import torch

from helpers import ML_TEXT, build
from recbole_srt import SRTTrainer, load_data_and_model, run_recbole
from recbole_srt.compat import load_checkpoint, save_checkpoint
from recbole_srt.lr_schedule import OneCycle, build_scheduler


def test_one_cycle_lr_at_start_peak_and_end():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=0.3)
    scheduler = build_scheduler("one_cycle", optimizer, total_steps=90)
    lrs = []
    for _ in range(90):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == 0.0
    assert lrs[15] == pytest.approx(0.15)  # linear: half-way through the warm-up
    assert max(lrs) == pytest.approx(0.3) and lrs.index(max(lrs)) == 30  # peak after the first third
    assert lrs[60] == pytest.approx(0.15)  # cosine: half-way through the decay
    assert lrs[90] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[30:], lrs[31:]))
    assert OneCycle(90)(1000) == pytest.approx(0.0, abs=1e-12)


def test_constant_schedule_and_bad_name():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    assert build_scheduler("constant", optimizer, 10) is None
    with pytest.raises(ValueError, match="lr_schedule"):
        build_scheduler("linear", optimizer, 10)


def test_trainer_steps_the_schedule_and_clips(fast_config):
    config, model, (train, valid, _) = build("SRT", "ml40", fast_config, epochs=2, eval_step=0)
    trainer = SRTTrainer(config, model)
    assert trainer.grad_clipping == {"max_norm": 1.0}
    norms = []  # seen by the optimizer as it steps, after our clipping hook
    trainer.optimizer.register_step_pre_hook(lambda *_: norms.append(float(torch.norm(torch.stack(
        [p.grad.norm() for p in model.parameters() if p.grad is not None])))))
    trainer.fit(train, saved=False)
    assert norms and max(norms) <= 1.0 + 1e-5
    steps = 2 * len(train)
    assert trainer.lr_scheduler.last_epoch == steps
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert not torch.is_anomaly_enabled()


def test_run_saves_and_reloads_checkpoint_on_current_torch(fast_config):
    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 6)
    result = run_recbole("SRT", "ml40", config_dict={**fast_config, **ML_TEXT, "epochs": 2})
    checkpoint_file = result["saved_model_file"]
    checkpoint = load_checkpoint(checkpoint_file, "cpu")  # weights-only unpickler, allowlist scoped to this call
    assert checkpoint["lr_scheduler"]["last_epoch"] > 0
    config, model, _, _, _, test_data = load_data_and_model(checkpoint_file)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, checkpoint["state_dict"][name])
    trainer = SRTTrainer(config, model)
    assert trainer.evaluate(test_data, load_best_model=False) == result["test_result"]
    assert not torch.is_anomaly_enabled()


def test_resume_restores_the_schedule(fast_config, tmp_path):
    config, model, (train, _, _) = build("SRT", "ml40", fast_config, epochs=3, eval_step=0)
    trainer = SRTTrainer(config, model)
    trainer.epochs = 1  # stop after one of three epochs, keeping the 3-epoch schedule
    trainer._build_lr_scheduler(len(train) * 3)
    trainer.fit(train, saved=True)
    lr_after_one = trainer.optimizer.param_groups[0]["lr"]
    config2, model2, (train2, _, _) = build("SRT", "ml40", fast_config, epochs=3, eval_step=0)
    resumed = SRTTrainer(config2, model2)
    resumed.resume_checkpoint(trainer.saved_model_file)
    resumed._build_lr_scheduler(len(train2))
    assert resumed.start_epoch == 1
    assert resumed.lr_scheduler.last_epoch == len(train)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(lr_after_one)


def test_an_interrupted_run_resumes_after_its_last_epoch_from_the_command_line(fast_config):
    import os

    settings = {**fast_config, **ML_TEXT, "epochs": 3, "stopping_step": 10}
    config, model, (train, valid, _) = build("SRT", "ml40", settings)
    trainer = SRTTrainer(config, model)

    def interrupt(epoch, score):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(train, valid, saved=True, callback_fn=interrupt)
    last = load_checkpoint(trainer.last_checkpoint_file, "cpu")
    assert last["epoch"] == 1 and last["best_model_file"] == trainer.saved_model_file
    assert last["compute"]["seen_interactions"] == 2 * len(train.dataset)
    for name, tensor in model.state_dict().items():  # the state after epoch 1, not the best one
        torch.testing.assert_close(tensor, last["state_dict"][name])

    result = run_recbole("SRT", "ml40", config_dict={**settings, "resume_from": trainer.last_checkpoint_file})
    assert result["compute"]["seen_interactions"] == 3 * len(train.dataset)  # epoch 2 only, counted on from 2 epochs
    assert result["saved_model_file"] == trainer.saved_model_file  # the best checkpoint stays the one file
    assert not os.path.exists(trainer.last_checkpoint_file)  # finished: nothing left to resume
    with pytest.raises(FileNotFoundError, match="resume_from: checkpoint file 'nowhere.pth'"):
        run_recbole("SRT", "ml40", config_dict={**settings, "resume_from": "nowhere.pth"})


def test_a_checkpoint_write_killed_midway_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    save_checkpoint({"weights": torch.ones(3)}, path)

    def killed(state, file, **kwargs):
        with open(file, "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"weights": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path, "cpu")["weights"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_foreign_globals_in_a_checkpoint_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    save_checkpoint({"config": pickle.PickleError("not a config")}, path)
    with pytest.raises(pickle.UnpicklingError, match="PickleError"):
        load_checkpoint(path, "cpu")


def test_numpy_data_loads_but_functions_are_refused_even_from_trusted_packages(tmp_path):
    import os

    import numpy as np
    from recbole.utils import init_seed

    data = tmp_path / "numpy.pth"
    save_checkpoint({"array": np.arange(3), "words": np.array(["ab", "c"]), "scalar": np.float64(2.5)}, data)
    loaded = load_checkpoint(data, "cpu")
    assert loaded["array"].tolist() == [0, 1, 2] and loaded["words"].dtype == np.dtype("<U2")
    assert loaded["scalar"] == 2.5
    for function, name in ((os.system, "system"), (init_seed, "init_seed")):
        path = tmp_path / f"{name}.pth"
        save_checkpoint({"config": function}, path)
        with pytest.raises(pickle.UnpicklingError, match=name):
            load_checkpoint(path, "cpu")


@pytest.mark.parametrize("model_name", ["SASRec", "BERT4Rec"])
def test_recbole_models_run_through_the_same_pipeline(fast_config, model_name):
    overrides = {k: v for k, v in fast_config.items() if k not in ("train_neg_count",)}
    result = run_recbole(model_name, "ml40", config_dict={**overrides, **ML_TEXT, "lr_schedule": "one_cycle"})
    assert set(result["test_result"]) >= {"recall@10", "ndcg@10"}
    checkpoint = load_checkpoint(result["saved_model_file"], "cpu")
    assert checkpoint["config"]["model"] == model_name and checkpoint["lr_scheduler"] is not None
