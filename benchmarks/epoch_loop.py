"""Training-epoch wall clock: our sync-free loop against RecBole's `_train_epoch` on the same model and batches.

    python benchmarks/epoch_loop.py                                    # CPU, SRT-1K and SASRec-CE on ml-100k
    python benchmarks/epoch_loop.py --gpu --arch L24-H4-D256 --precision bf16

RecBole's loop reads each batch's loss back to the host; ours reads the loss sums once per epoch and copies batches
from pinned memory without blocking (recbole_srt/acceleration/training_epoch.py). On a CPU the two should cost the
same (a read-back waits for nothing there); on a GPU the difference is the host time the device sat idle. The two
loops alternate, `--rounds` epochs each, and the table gives each one's median epoch.
"""

import argparse
import statistics
import time

import torch
from recbole.trainer import Trainer

from common import machine_line, markdown_table, prepare, trainer_for, write_results
from recbole_srt.acceleration.precision import autocast_loss

MODELS = {"SRT-1K": ("SRT", {"train_neg_count": 1000}), "SASRec-CE": ("SASRec", {"loss_type": "CE"})}


def epoch_seconds(trainer, train, loop, epoch):
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if loop == "ours":
        trainer._train_epoch(train, epoch)
    else:
        loss_func = autocast_loss(trainer.loss_module, trainer.precision, trainer.device)
        Trainer._train_epoch(trainer, train, epoch, loss_func=loss_func)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--arch", default="L2-H2-D64", help="a Table 3 architecture (recbole_srt.scaling)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--rounds", type=int, default=3, help="epochs per loop, after one warm-up epoch")
    parser.add_argument("--gpu", action="store_true")
    args = parser.parse_args()
    records = []
    for label in args.models:
        model_name, extra = MODELS[label]
        settings = {"architecture": args.arch, "train_batch_size": args.batch, "MAX_ITEM_LIST_LENGTH": args.length,
                    "precision": args.precision, "gpu_id": "0" if args.gpu else "", "state": "WARNING",
                    "show_progress": False, "train_neg_sample_args": None, **extra}
        config, model, train, _, _ = prepare(model_name, args.dataset, settings)
        trainer = trainer_for(config, model, train)
        epoch_seconds(trainer, train, "ours", 0)  # warm-up: allocators, optimizer state
        times = {"ours": [], "recbole": []}
        for epoch in range(args.rounds):
            for loop in times:
                times[loop].append(epoch_seconds(trainer, train, loop, epoch + 1))
        records.append({"label": label, "steps_per_epoch": len(train), "ours_seconds": times["ours"],
                        "recbole_seconds": times["recbole"]})
        print(records[-1], flush=True)
    device = "gpu" if args.gpu else "cpu"
    write_results(f"epoch_loop_{device}", {"settings": vars(args), "runs": records}, table)


def table(payload):
    settings, rows = payload["settings"], []
    for r in payload["runs"]:
        ours, recbole = statistics.median(r["ours_seconds"]), statistics.median(r["recbole_seconds"])
        rows.append([r["label"], r["steps_per_epoch"], f"{recbole:.2f}", f"{ours:.2f}", f"{recbole / ours:.2f}"])
    title = (f"{settings['dataset']}, {settings['arch']}, batch {settings['batch']} x length {settings['length']}, "
             f"{settings['precision']}: median of {settings['rounds']} epochs per loop")
    text = markdown_table(["model", "steps/epoch", "RecBole loop s/epoch", "our loop s/epoch", "speed-up"], rows)
    return f"{title}\n\n{text}\n\n{machine_line(payload['machine'])}\n"


if __name__ == "__main__":
    main()
