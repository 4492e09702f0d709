import glob
import os

import pytest
import torch

from recbole_srt import run_recbole
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.quick_start import prepare
from recbole_srt.trainer import SRTTrainerMixin

ML_TEXT = {
    "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "movie_title", "class"]},
    "text_fields": ["movie_title", "class"],
}
TOY_TEXT = {"load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "title", "brand"]}}


def build(model, dataset, base, **overrides):
    """Config, dataloaders and a freshly built model for `dataset` under the test's small settings."""
    text = TOY_TEXT if dataset in ("beauty_toy", "two_sources") else ML_TEXT
    config, _, loaders, built = prepare(model, dataset, config_dict={**base, **text, **overrides})
    return config, built, loaders


def interrupt_after_epoch(monkeypatch, epoch):
    """Stop a run as SIGKILL would, right after its `-last` state of `epoch` is on disk."""
    original = SRTTrainerMixin._save_checkpoint

    def save_then_stop(self, epoch_idx, verbose=True, **kwargs):
        last = str(kwargs.get("saved_model_file", "")).endswith("-last.pth")
        original(self, epoch_idx, verbose, **kwargs)
        if last and epoch_idx == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(SRTTrainerMixin, "_save_checkpoint", save_then_stop)


def resumed_equals_straight(model, dataset, settings, monkeypatch, stop_after_epoch):
    straight = run_recbole(model, dataset, config_dict=settings)
    interrupt_after_epoch(monkeypatch, stop_after_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_recbole(model, dataset, config_dict=settings)
    monkeypatch.undo()
    [last] = glob.glob(os.path.join(settings["checkpoint_dir"], "*-last.pth"))
    resumed = run_recbole(model, dataset, config_dict={**settings, "resume_from": last})
    assert not os.path.exists(last)  # finished: nothing left to resume
    assert resumed["test_result"] == straight["test_result"]
    assert resumed["best_valid_result"] == straight["best_valid_result"]
    assert resumed["compute"] == straight["compute"]
    resumed_weights = load_checkpoint(resumed["saved_model_file"], "cpu")["state_dict"]
    for name, tensor in load_checkpoint(straight["saved_model_file"], "cpu")["state_dict"].items():
        assert torch.equal(resumed_weights[name], tensor), name
