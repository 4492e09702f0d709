"""Run by torchrun from test_distributed.py (two processes, gloo): each case writes what process RANK saw to OUT,
and the test compares it with one process doing the same.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py DATA_ROOT OUT
"""

import os
import sys

import torch
import torch.distributed as dist

from helpers import build
from recbole_srt import SRTTrainer


def small(data_root):
    """The suite's fast settings (conftest.fast_config), on the CPU."""
    return {"data_path": data_root, "epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32,
            "n_layers": 1, "n_heads": 2, "train_batch_size": 256, "eval_batch_size": 256, "show_progress": False,
            "train_neg_count": 20, "tokenizer_vocab_size": 300, "learning_rate": 0.005, "seed": 7,
            "state": "WARNING", "gpu_id": "", "checkpoint_dir": os.path.join(OUT, "saved")}


def one_sgd_step(base):
    """SASRec-CE without dropout, SGD, first global batch of 16 in file order: the single-process step to match."""
    config, model, (train, _, _) = build("SASRec", "ml80", base, loss_type="CE", hidden_dropout_prob=0.0,
                                         attn_dropout_prob=0.0, learner="sgd", train_batch_size=16, shuffle=False)
    trainer = SRTTrainer(config, model)
    batch = next(iter(train))
    trainer.optimizer.zero_grad()
    trainer.distributed_model(batch).backward()
    trainer.optimizer.step()
    return {"state": model.state_dict(), "samples": samples(batch)}


def samples(batch):
    """A training sample's identity: (user, target item, prefix length)."""
    return sorted(zip(batch["user_id"].tolist(), batch["item_id"].tolist(), batch["item_length"].tolist()))


def evaluation(base):
    """An (untrained) SRT evaluated on sampled and full-sort modes: DDP gave every process process 0's weights."""
    modes = {"valid": "sampled50", "test": "full"}
    config, model, (_, valid, test) = build("SRT", "ml80", base, eval_batch_size=7, eval_args={
        "split": {"LS": "valid_and_test"}, "order": "TO", "mode": modes}, metrics=["NDCG", "Hit", "MRR"], topk=[5, 10])
    trainer = SRTTrainer(config, model)
    return {"valid": dict(trainer.evaluate(valid, load_best_model=False)),
            "test": dict(trainer.evaluate(test, load_best_model=False)), "state": model.state_dict()}


def training(base):
    """Two epochs of SRT through the trainer's own loop (fit), checkpoint and best-model reload included."""
    config, model, (train, valid, test) = build("SRT", "ml80", base, epochs=2, train_batch_size=64)
    trainer = SRTTrainer(config, model)
    trainer.fit(train, valid, saved=True)
    test_result = trainer.evaluate(test, load_best_model=True)
    return {"state": model.state_dict(), "test": dict(test_result), "checkpoint": trainer.saved_model_file}


if __name__ == "__main__":
    DATA_ROOT, OUT = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value from the command line
    base = small(DATA_ROOT)
    results = {"step": one_sgd_step(base), "evaluation": evaluation(base), "training": training(base)}
    torch.save(results, os.path.join(OUT, f"rank{dist.get_rank()}.pt"))
    dist.destroy_process_group()
