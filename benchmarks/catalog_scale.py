"""Cost vs catalog size: evaluation, training and data preparation of SRT and SASRec-CE from 10K to millions of items.

    python benchmarks/catalog_scale.py                               # 10K, 100K, 1M items on this machine's CPU
    python benchmarks/catalog_scale.py --sizes 10000000 --gpu        # on a GPU, where memory allows

For each size a seeded synthetic catalog (`dataset_scripts.synthetic`: titles and brands, Zipf popularity, a fixed
number of users) is converted with `dataset_scripts sequences`, then every measurement runs in a fresh process of
its own, so its peak memory is its own:
- data: RecBole's dataset and sequential dataloaders (time, peak RSS);
- candidates: drawing sampled10000 negatives (ms/user);
- eval sampled10000 / eval full: one test pass of the same (untrained) SRT through our trainer, per user;
- train SRT-1K / train SASRec-CE: median seconds per optimizer step at a fixed batch, parameters, peak memory.
Peak memory is the phase's own high-water mark: process RSS (reset before the phase) on CPU, allocated memory on
CUDA. Results are appended to a JSONL file as they come (a rerun skips what is there), then tabulated.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time

import torch

from common import (RESULTS_DIR, first_batches, machine, machine_line, markdown_table, prepare, seconds_per_step,
                    trainer_for, write_results)

MEASUREMENTS = ["data", "candidates", "eval sampled10000", "eval full", "train SRT-1K", "train SASRec-CE"]
MODEL = {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 50}
TRAIN_BATCH = 512
# Users scored at once in full-sort evaluation: a [users x catalog] score matrix of about 2**28 floats (1 GiB).
FULL_SORT_SCORES = 2**28


def catalog(size, args):
    """The converted dataset for `size` items: (dataset name, its yaml), generated and converted once."""
    name = f"synth_{size}"
    yaml_path = os.path.join(args.data_dir, name, f"{name}.yaml")
    if not os.path.exists(yaml_path):
        raw = os.path.join(args.data_dir, "raw", name)
        interactions = max(args.interactions, int(1.2 * size))
        for command in (
            ["-m", "dataset_scripts.synthetic", "--items", str(size), "--users", str(args.users),
             "--interactions", str(interactions), "--output", raw],
            ["-m", "dataset_scripts", "sequences", "--input", raw, "--name", name, "--output-dir", args.data_dir],
        ):
            subprocess.run([sys.executable, *command], check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    return name, yaml_path


def reset_peak_memory(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as f:  # "5" resets the peak RSS (VmHWM)
            f.write("5")


def peak_memory_mb(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def settings_for(measurement, args, yaml_path):
    import yaml

    with open(yaml_path) as f:
        settings = yaml.safe_load(f)
    settings.update(MODEL)
    settings.update({"gpu_id": "0" if args.gpu else "", "state": "WARNING", "show_progress": False, "shuffle": False,
                     "train_batch_size": TRAIN_BATCH, "eval_batch_size": args.eval_batch})
    if measurement == "eval full":
        settings["eval_args"] = {**settings["eval_args"], "mode": {"valid": "full", "test": "full"}}
    if measurement == "train SASRec-CE":
        settings.update({"loss_type": "CE", "train_neg_sample_args": None})
    if measurement == "train SRT-1K":
        settings["train_neg_count"] = 1000
    return settings


def measure(measurement, size, args):
    """One measurement in this process; returns its record."""
    name, yaml_path = catalog(size, args)
    settings = settings_for(measurement, args, yaml_path)
    model_name = "SASRec" if measurement == "train SASRec-CE" else "SRT"
    device = torch.device("cuda" if args.gpu else "cpu")
    if measurement == "eval full":
        settings["eval_batch_size"] = max(1, min(args.eval_batch, FULL_SORT_SCORES // size))
    reset_peak_memory(device)
    start = time.perf_counter()
    config, model, train, _, test = prepare(model_name, name, settings)
    record = {"n_items": model.n_items, "users": len(test.dataset), "train_samples": len(train.dataset)}
    if measurement == "data":
        return {**record, "seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb(device)}
    record["params"] = sum(p.numel() for p in model.parameters())
    trainer = trainer_for(config, model, train)
    if measurement == "candidates":
        sampler = trainer.candidate_sampler(model.n_items, 10_000)
        users = torch.arange(1, 4097, device=device)
        positives = torch.randint(1, model.n_items, (len(users),), device=device)


        def ms_per_user(draw):
            draw("test", users[:64], positives[:64])
            times = []
            for _ in range(3):
                begin = time.perf_counter()
                draw("test", users, positives)
                times.append(time.perf_counter() - begin)
            return min(times) / len(users) * 1000

        # The evaluator draws the items left out instead when they are fewer (the catalog is under 2N): both timed.
        complement = ms_per_user(sampler.excluded) if sampler.complement_is_smaller else None
        return {**record, "ms_per_user": ms_per_user(sampler), "complement_ms_per_user": complement}
    if measurement.startswith("eval"):
        trainer.evaluate(test, load_best_model=False)  # warm-up: allocator, caches
        reset_peak_memory(device)
        begin = time.perf_counter()
        result = trainer.evaluate(test, load_best_model=False)
        seconds = time.perf_counter() - begin
        return {**record, "seconds": seconds, "ms_per_user": seconds / record["users"] * 1000,
                "peak_mb": peak_memory_mb(device), "ndcg@5": result["ndcg@5"], "eval_batch": config["eval_batch_size"]}
    batches = first_batches(train, args.steps + 1, device)
    reset_peak_memory(device)
    seconds = seconds_per_step(trainer, batches)  # the first step allocates optimizer state: not timed
    return {**record, "seconds_per_step": seconds, "peak_mb": peak_memory_mb(device),
            "batch": TRAIN_BATCH}


def run_all(args):
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    done = set()
    if os.path.exists(args.results):
        with open(args.results) as f:
            done = {(r["n_items_requested"], r["measurement"]) for r in map(json.loads, f)}
    for size in args.sizes:
        catalog(size, args)
        for measurement in MEASUREMENTS:
            if (size, measurement) in done:
                continue
            command = [sys.executable, __file__, "--one", measurement, "--sizes", str(size),
                       "--users", str(args.users), "--interactions", str(args.interactions),
                       "--data_dir", args.data_dir, "--steps", str(args.steps), "--eval_batch", str(args.eval_batch)]
            if args.gpu:
                command.append("--gpu")
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode == 0:
                record = json.loads(completed.stdout.strip().splitlines()[-1])
            else:  # out of memory or a crash: recorded, and the sweep goes on
                record = {"failed": completed.stderr.strip().splitlines()[-1:] or [f"exit {completed.returncode}"]}
            record = {"n_items_requested": size, "measurement": measurement, **record, "machine": machine()}
            print(json.dumps(record), flush=True)
            with open(args.results, "a") as f:
                f.write(json.dumps(record) + "\n")


def latest_records(results_path):
    """The last record of every (catalog size, measurement) in the resumable JSONL."""
    with open(results_path) as f:
        return list({(r["n_items_requested"], r["measurement"]): r for r in map(json.loads, f)}.values())


def table(payload):
    records = {(r["n_items_requested"], r["measurement"]): r for r in payload["records"]}
    sizes = sorted({size for size, _ in records})

    def cell(size, measurement, key, fmt):
        record = records.get((size, measurement))
        if record is None:
            return "-"
        if "failed" in record:
            return "failed"
        return fmt.format(record[key])

    def draw(size):
        record = records.get((size, "candidates"))
        if record is None or "failed" in record or record.get("complement_ms_per_user") is None:
            return cell(size, "candidates", "ms_per_user", "{:.3f}")
        return f"{record['ms_per_user']:.3f} ({record['complement_ms_per_user']:.3f} for the complement)"

    rows = [[f"{size:,}",
             draw(size),
             cell(size, "eval sampled10000", "ms_per_user", "{:.2f}"),
             cell(size, "eval full", "ms_per_user", "{:.2f}"),
             cell(size, "eval sampled10000", "peak_mb", "{:,.0f}"),
             cell(size, "eval full", "peak_mb", "{:,.0f}"),
             cell(size, "train SRT-1K", "seconds_per_step", "{:.3f}"),
             cell(size, "train SASRec-CE", "seconds_per_step", "{:.3f}"),
             cell(size, "train SRT-1K", "params", "{:,}"),
             cell(size, "train SASRec-CE", "params", "{:,}"),
             cell(size, "train SRT-1K", "peak_mb", "{:,.0f}"),
             cell(size, "train SASRec-CE", "peak_mb", "{:,.0f}"),
             cell(size, "data", "seconds", "{:.1f}"),
             cell(size, "data", "peak_mb", "{:,.0f}")] for size in sizes]
    header = ["catalog items", "draw ms/user", "SRT sampled10000 ms/user", "SRT full sort ms/user",
              "sampled peak MB", "full sort peak MB", "SRT-1K s/step", "SASRec-CE s/step", "SRT params",
              "SASRec params", "SRT-1K train peak MB", "SASRec-CE train peak MB", "data prep s", "data prep peak MB"]
    title = (f"SRT (hidden 64, 2 layers, length 50) and SASRec-CE on synthetic catalogs, "
             f"{payload['settings']['users']:,} users; training batch {TRAIN_BATCH}")
    return f"{title}\n\n{markdown_table(header, rows)}\n\n{machine_line(payload['machine'])}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--users", type=int, default=10_000, help="users of every catalog (default 10,000)")
    parser.add_argument("--interactions", type=int, default=200_000,
                        help="interactions, at least 1.2 x the catalog so every item is used (default 200,000)")
    parser.add_argument("--data_dir", default="/tmp/catalog_scale", help="where the synthetic datasets are written")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up step)")
    parser.add_argument("--eval_batch", type=int, default=4096, help="eval_batch_size of sampled evaluation")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--results", default=None, help="JSONL (default results/catalog_scale_{cpu,gpu}.jsonl)")
    parser.add_argument("--one", choices=MEASUREMENTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.sizes[0], args)))
        return
    device = "gpu" if args.gpu else "cpu"
    args.results = args.results or os.path.join(RESULTS_DIR, f"catalog_scale_{device}.jsonl")
    run_all(args)
    write_results(f"catalog_scale_{device}", {"settings": vars(args), "records": latest_records(args.results)}, table)


if __name__ == "__main__":
    main()
