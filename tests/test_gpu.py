"""Checks that only a CUDA GPU can make: the training step never waits for the device.

Marked `gpu` and deselected by default; run with `pytest -m gpu` on a GPU machine (`benchmarks/gpu_session.sh
tests`). Without CUDA they fail, never skip.
"""

import warnings

import pytest
import torch

from helpers import build
from recbole_srt import SRTTrainer

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.fail("tests marked gpu need a CUDA device (torch.cuda.is_available() is False)")
    return torch.device("cuda")


def synchronisations(run):
    """The host/device synchronisations torch reports while `run()` runs."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [w for w in caught if "synchroniz" in str(w.message)]


@pytest.mark.parametrize("model_name, extra", [("SRT", {"train_neg_count": 100}),
                                               ("SRT", {"train_neg_count": 100, "shared_negatives": False}),
                                               ("SRT", {"train_neg_count": 100, "compile": True}),
                                               ("SASRec", {"loss_type": "CE"})])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_epoch_synchronises_only_once_it_has_ended(fast_config, cuda, model_name, extra, precision):
    config, model, (train, _, _) = build(model_name, "ml80", fast_config, gpu_id="0", train_batch_size=16,
                                         precision=precision, lr_schedule="constant", **extra)
    assert config["device"].type == "cuda" and len(train) >= 8
    trainer = SRTTrainer(config, model)
    trainer._train_epoch(train, 0)  # first epoch: optimizer state, allocator caches and compiled graphs are created
    synced = synchronisations(lambda: trainer._train_epoch(train, 1))
    # The end of the epoch reads the NaN flag and the loss sums: a fixed number, however many steps ran.
    assert len(synced) <= 2, [str(w.message) for w in synced]
