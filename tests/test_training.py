import os
import threading

import pytest
import torch

from helpers import ML_TEXT, build
from recbole_srt import SRTTrainer, run_recbole
from recbole_srt.checkpoint import load_checkpoint
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


def test_fit_closes_its_tensorboard_writer_with_its_events_written(fast_config):
    def writer_threads():
        return {thread for thread in threading.enumerate() if type(thread).__name__ == "_AsyncWriterThread"}

    before = writer_threads()
    config, model, (train, _, _) = build("SRT", "ml40", fast_config, epochs=1, eval_step=0)
    trainer = SRTTrainer(config, model)
    log_dir = trainer.tensorboard.log_dir
    assert writer_threads() - before
    trainer.fit(train, saved=False)
    # RecBole leaves it open: a writer thread per run, flushing later to a path relative to the run's directory.
    assert trainer.tensorboard.all_writers is None and not writer_threads() - before
    events = [name for name in os.listdir(log_dir) if name.startswith("events.out.tfevents")]
    assert events and os.path.getsize(os.path.join(log_dir, events[0])) > 0


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


@pytest.mark.parametrize("model_name", ["SASRec", "BERT4Rec"])
def test_recbole_models_run_through_the_same_pipeline(fast_config, model_name):
    overrides = {k: v for k, v in fast_config.items() if k not in ("train_neg_count",)}
    result = run_recbole(model_name, "ml40", config_dict={**overrides, **ML_TEXT, "lr_schedule": "one_cycle"})
    assert set(result["test_result"]) >= {"recall@10", "ndcg@10"}
    checkpoint = load_checkpoint(result["saved_model_file"], "cpu")
    assert checkpoint["config"]["model"] == model_name and checkpoint["lr_scheduler"] is not None
    assert torch.serialization.get_unsafe_globals_in_checkpoint(result["saved_model_file"]) == []  # data only


@pytest.mark.parametrize("stopping_in_warmup, epochs_trained", [(False, 6), (True, 3)])
def test_early_stopping_waits_for_the_one_cycle_peak(fast_config, monkeypatch, stopping_in_warmup,
                                                    epochs_trained):
    # 15 epochs: the rate peaks after the 5th. Validation only falls after the first epoch, so patience 1 would
    # stop after the 3rd; waiting for the peak, the patience counts from it: the run stops at the second
    # validation after it without gain (the warm-up's epochs without gain do not count).
    config, model, (train, valid, _) = build("SRT", "ml40", fast_config, epochs=15, stopping_step=1,
                                             lr_schedule="one_cycle", stopping_in_warmup=stopping_in_warmup)
    trainer = SRTTrainer(config, model)
    scores = iter([0.5 - 0.01 * epoch for epoch in range(15)])
    monkeypatch.setattr(trainer, "_valid_epoch", lambda *_, **__: (score := next(scores), {"ndcg@5": score}))
    trainer.fit(train, valid, saved=False)
    assert trainer.seen_interactions == epochs_trained * train.sample_size
    assert trainer.stopping_step == 1  # after the warm-up, the configured patience
