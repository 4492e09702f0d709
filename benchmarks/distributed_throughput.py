"""Data-parallel training throughput: sequences per second of one SRT model trained by 1..K processes (torchrun).

    python benchmarks/distributed_throughput.py                       # 1 and 2 processes on this machine's CPUs
    python benchmarks/distributed_throughput.py --procs 1 2 4 8 --gpu # one process per GPU

Each configuration is a fresh `torchrun --standalone` whose processes time whole training epochs (after one warm-up
epoch) through the trainer's own loop, at the same global batch (`train_batch_size`, split across processes). On
CPUs the machine's cores are shared out: each process gets cores / K threads. Scaling efficiency is throughput
with K processes / (K x throughput with 1).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.distributed as dist

from common import machine_line, markdown_table, prepare, write_results

SETTINGS = {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 50,
            "train_neg_count": 1000, "show_progress": False, "state": "WARNING"}


def worker(args):
    settings = {**SETTINGS, "train_batch_size": args.batch, "gpu_id": "0" if args.gpu else ""}
    config, model, train, _, _ = prepare("SRT", args.dataset, settings)
    from recbole_srt.trainer import get_trainer

    trainer = get_trainer(config["MODEL_TYPE"], "SRT")(config, model)
    seconds = []
    for epoch in range(args.epochs + 1):
        if config["device"].type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer._train_epoch(train, epoch)
        if config["device"].type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    per_epoch = torch.tensor(min(seconds[1:]))  # the slowest process sets the pace
    world = 1
    if dist.is_initialized():
        dist.all_reduce(per_epoch, op=dist.ReduceOp.MAX)
        world = dist.get_world_size()
    if not dist.is_initialized() or dist.get_rank() == 0:
        samples = train.sample_size
        print(json.dumps({"processes": world, "seconds_per_epoch": float(per_epoch), "train_samples": samples,
                          "sequences_per_second": samples / float(per_epoch), "global_batch": args.batch,
                          "threads_per_process": torch.get_num_threads()}))
    if dist.is_initialized():
        dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--batch", type=int, default=512, help="global train_batch_size")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up epoch")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.argv = sys.argv[:1]
        worker(args)
        return
    records = []
    for procs in args.procs:
        threads = max(1, (os.cpu_count() or 1) // procs)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                   __file__, "--worker", "--dataset", args.dataset, "--batch", str(args.batch),
                   "--epochs", str(args.epochs), *(["--gpu"] if args.gpu else [])]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{procs} processes failed:\n{done.stderr[-3000:]}")
        records.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(records[-1], flush=True)
    device = "gpu" if args.gpu else "cpu"
    write_results(f"distributed_throughput_{device}", {"settings": vars(args), "runs": records}, table)


def table(payload):
    settings, records = payload["settings"], payload["runs"]
    base = records[0]["sequences_per_second"] / records[0]["processes"]
    rows = [[r["processes"], r["threads_per_process"], f"{r['seconds_per_epoch']:.1f}",
             f"{r['sequences_per_second']:,.0f}", f"{r['sequences_per_second'] / (base * r['processes']):.2f}"]
            for r in records]
    title = (f"SRT-1K on {settings['dataset']} (hidden 64, 2 layers, length 50), global batch {settings['batch']}, "
             f"{payload['machine']['device']}")
    text = markdown_table(["processes", "threads each", "s/epoch", "sequences/s", "scaling efficiency"], rows)
    return f"{title}\n\n{text}\n\n{machine_line(payload['machine'])}\n"

if __name__ == "__main__":
    main()
