"""The sequence store at the Amazon Product Data's proportions: conversion, start-up, training and evaluation cost.

    python benchmarks/sequence_store.py --sizes 1000000 10000000           # this machine's CPU
    python benchmarks/sequence_store.py --sizes 82700000                   # the APD's size (long: run it alone)

For each size (interactions; users and items in the APD's proportions, 21M and 9.9M of 82.7M) a seeded synthetic
dataset is generated (`dataset_scripts.synthetic`) and converted into a store (`--store`, streamed); every
measurement then runs in a fresh process of its own, so its peak RSS (VmHWM) is its own:
- generate / convert store (and convert atomic where the in-memory path is measured): wall time, peak RSS;
- train store / train memory (/ train store in `--torchrun N` processes, each one's peak RSS): SRT-1K L2-H2-D64
  (length 50, batch 512) as run_recbole builds it: seconds from start to the first training step, training steps
  per second, the loader's own batches per second with the model removed, peak RSS, and sampled10000 evaluation of
  `--eval-users` seeded users (`eval_user_sample`), seconds per user;
- stream epoch (`--stream-epoch`): every training batch of one epoch cut from the store with no model, the samples
  counted against the epoch's size, wall time and peak RSS.
Records are appended to a JSONL file as they come (a rerun skips what is there), then tabulated.
"""

import time

STARTED = time.perf_counter()  # before the imports: start-up time counts them, as run_recbole's would

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from common import RESULTS_DIR, machine_line, markdown_table, write_results  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APD = {"interactions": 82_700_000, "items": 9_900_000, "users": 21_000_000}
MODEL = {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 50,
         "train_neg_count": 1000, "train_batch_size": 512, "eval_batch_size": 256}
STEPS = 30
# The in-memory path's item_id_list alone is interactions x 50 x 8 bytes: measured where it fits this machine.
MEMORY_PATH_MAX = 2_000_000


def shape(size):
    return {"interactions": size, "items": round(size * APD["items"] / APD["interactions"]),
            "users": round(size * APD["users"] / APD["interactions"])}


def timed(command):
    """(wall seconds, peak RSS in MB) of a command run under /usr/bin/time."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *command], cwd=REPO, stderr=subprocess.PIPE, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, int(result.stderr.strip().splitlines()[-1]) / 1024


def peak_rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def prepared(args, size):
    """Generate and convert once; returns the records of those steps (empty when already there)."""
    raw, name = os.path.join(args.data_dir, "raw", f"apd_{size}"), f"apd_{size}"
    records = []
    counts = shape(size)
    steps = [("generate", raw, ["-m", "dataset_scripts.synthetic", "--items", str(counts["items"]), "--users",
                                str(counts["users"]), "--interactions", str(size), "--output", raw]),
             ("convert store", os.path.join(args.data_dir, name), ["-m", "dataset_scripts", "sequences", "--input",
                                                                   raw, "--name", name, "--output-dir", args.data_dir,
                                                                   "--store"])]
    if size <= MEMORY_PATH_MAX:
        steps.append(("convert atomic", os.path.join(args.data_dir, f"{name}_atomic"),
                      ["-m", "dataset_scripts", "sequences", "--input", raw, "--name", f"{name}_atomic",
                       "--output-dir", args.data_dir, "--tokenizer",
                       os.path.join(args.data_dir, name, "store", "tokenizer.model")]))
    for what, output, command in steps:
        if not os.path.exists(output):
            seconds, peak = timed([sys.executable, *command])
            records.append({"size": size, "measurement": what, "seconds": round(seconds, 1),
                            "peak_rss_mb": round(peak), **counts})
    return records


def train_measure(args, size, path):
    """In this process: run_recbole's preparation and trainer, timed from the start to the first training step."""
    import torch
    import yaml

    from recbole_srt import distributed
    from recbole_srt.quick_start import prepare
    from recbole_srt.trainer import SRTTrainer

    torch.set_num_threads(args.threads)
    start = STARTED
    name = f"apd_{size}" if path == "store" else f"apd_{size}_atomic"
    with open(os.path.join(args.data_dir, name, f"{name}.yaml")) as f:
        settings = yaml.safe_load(f)
    settings.update(MODEL, state="WARNING", show_progress=False, eval_user_sample=args.eval_users,
                    checkpoint_dir=os.path.join(args.data_dir, "saved"))
    config, dataset, (train, _, test), model = prepare("SRT", config_dict=settings)
    trainer = SRTTrainer(config, model)
    trainer.set_train_item_counts(train)
    world = config["world_size"] if distributed.is_distributed(config) else 1
    loss = trainer.distributed_model if world > 1 else trainer.loss_module
    model.train()
    batches = iter(train)
    step_times = []
    for index in range(STEPS + 1):
        batch = next(batches)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss(batch).backward()
        trainer.optimizer.step()
        step_times.append(time.perf_counter())
        if index == 0:
            first_step = step_times[0] - start
    steps_per_second = STEPS / (step_times[-1] - step_times[0])
    loader_start = time.perf_counter()
    loader_batches = 0
    for _ in zip(range(200), train):
        loader_batches += 1
    loader_rate = loader_batches / (time.perf_counter() - loader_start)
    eval_start = time.perf_counter()
    result = trainer.evaluate(test, load_best_model=False)
    eval_seconds = time.perf_counter() - eval_start
    peaks = [round(peak_rss_mb())]
    if world > 1:
        peaks = [None] * world
        torch.distributed.all_gather_object(peaks, round(peak_rss_mb()))
    return {"size": size, "measurement": f"train {path}" + (f", {world} processes" if world > 1 else ""),
            "n_items": model.n_items - 1,
            "train_samples": train.sample_size, "first_step_seconds": round(first_step, 1),
            "steps_per_second": round(steps_per_second, 3), "loader_batches_per_second": round(loader_rate, 1),
            "loader_over_step_rate": round(loader_rate / steps_per_second, 1),
            "eval_users": test.sample_size, "eval_ms_per_user": round(eval_seconds / test.sample_size * 1000, 2),
            "test_ndcg@5": result["ndcg@5"], "peak_rss_mb": max(peaks), "peak_rss_mb_per_process": peaks,
            "threads": args.threads}


def stream_epoch(args, size):
    """In this process: one whole epoch of training batches from the store, no model."""
    import torch
    import yaml

    from recbole_srt.quick_start import prepare

    torch.set_num_threads(args.threads)
    name = f"apd_{size}"
    with open(os.path.join(args.data_dir, name, f"{name}.yaml")) as f:
        settings = yaml.safe_load(f)
    settings.update(MODEL, state="WARNING", show_progress=False, checkpoint_dir=os.path.join(args.data_dir, "saved"))
    _, _, (train, _, _), _ = prepare("SRT", config_dict=settings)
    start = time.perf_counter()
    batches = samples = 0
    for batch in train:
        batches += 1
        samples += len(batch)
    seconds = time.perf_counter() - start
    if samples != train.sample_size:
        raise SystemExit(f"stream epoch at {size}: {samples} samples streamed, the epoch has {train.sample_size}")
    return {"size": size, "measurement": "stream epoch", "seconds": round(seconds, 1), "batches": batches,
            "samples": samples, "peak_rss_mb": round(peak_rss_mb())}


def read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def table(payload):
    rows = []
    for r in sorted(payload["records"], key=lambda r: (r["size"], r["measurement"])):
        detail = ""
        if r["measurement"] == "stream epoch":
            detail = (f"{r['samples']:,} training samples in {r['batches']:,} batches of {MODEL['train_batch_size']}, "
                      f"no model ({r['batches'] / r['seconds']:.0f} batches/s)")
            rows.append([f"{r['size']:,}", r["measurement"], r["seconds"], f"{r['peak_rss_mb']:,}", detail])
            continue
        if r["measurement"].startswith("train"):
            per_process = r.get("peak_rss_mb_per_process", [])
            detail = (f"peak RSS per process {', '.join(f'{p:,}' for p in per_process)} MB; " if len(per_process) > 1
                      else "")
            detail += (f"first step after {r['first_step_seconds']} s; {r['steps_per_second']} steps/s; loader alone "
                      f"{r['loader_batches_per_second']} batches/s ({r['loader_over_step_rate']}x the step rate); "
                      f"sampled10000 eval {r['eval_ms_per_user']} ms/user over {r['eval_users']:,} users "
                      f"({r['n_items']:,} items)")
            seconds = ""
        else:
            seconds = r["seconds"]
            if r["measurement"] == "generate":
                detail = f"{r['users']:,} users, {r['items']:,} items"
        rows.append([f"{r['size']:,}", r["measurement"], seconds, f"{r['peak_rss_mb']:,}", detail])
    body = markdown_table(["interactions", "measurement", "seconds", "peak RSS (MB)", "details"], rows)
    return f"{body}\n\n{machine_line(payload['machine'])}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--data-dir", default=os.path.join(REPO, "data", "store_benchmark"))
    parser.add_argument("--eval-users", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="sequence_store_cpu")
    parser.add_argument("--torchrun", type=int, default=0, metavar="N",
                        help="also train from the store in N torchrun processes (each one's peak RSS is recorded)")
    parser.add_argument("--stream-epoch", action="store_true",
                        help="also stream one whole epoch of training batches from the store, no model")
    parser.add_argument("--measure", nargs=2, metavar=("SIZE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        size, path = int(args.measure[0]), args.measure[1]
        record = stream_epoch(args, size) if path == "stream" else train_measure(args, size, path)
        if os.environ.get("RANK", "0") == "0":
            print(json.dumps(record))
        return
    jsonl = os.path.join(RESULTS_DIR, f"{args.name}.jsonl")
    done = {(r["size"], r["measurement"]) for r in read(jsonl)}
    for size in args.sizes:
        records = prepared(args, size)
        runs = [("train store", []), *([("train memory", [])] if size <= MEMORY_PATH_MAX else [])]
        if args.torchrun > 1:
            runs.append((f"train store, {args.torchrun} processes",
                         ["-m", "torch.distributed.run", "--nproc_per_node", str(args.torchrun)]))
        if args.stream_epoch:
            runs.append(("stream epoch", []))
        for what, launcher in runs:
            if (size, what) in done:
                continue
            path = {"train memory": "memory", "stream epoch": "stream"}.get(what, "store")
            out = subprocess.run([sys.executable, *launcher, __file__, "--measure", str(size), path, "--data-dir",
                                  args.data_dir, "--eval-users", str(args.eval_users), "--threads", str(args.threads)],
                                 cwd=REPO, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{what} at {size} failed:\n{out.stderr[-3000:]}")
            records.append(json.loads(out.stdout.strip().splitlines()[-1]))
        with open(jsonl, "a") as f:
            for record in records:
                if (record["size"], record["measurement"]) not in done:
                    f.write(json.dumps(record) + "\n")
    write_results(args.name, {"records": read(jsonl)}, table)


if __name__ == "__main__":
    main()
