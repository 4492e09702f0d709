"""A scaling sweep: the product of user-sample fractions, architectures and negative counts, every grid point a
normal run (our quick start, trainer and sampled evaluation), on Ray or in this process, resumable.

Records are JSON lines appended in one write each: one per epoch (valid NDCG@5/HIT@5, cumulative FLOPs, seen
interactions, parameters, wall time) and a final one with the best epoch's test metrics. A point counts as done
when its final record is there; a rerun skips it, and redoes a point that was interrupted under a new attempt id
(its earlier epoch records are left out of fits).
"""

import hashlib
import json
import os
import time
import uuid

import yaml

from recbole_srt.machine import describe as machine
from recbole_srt import architectures
from recbole_srt.scaling.records import append_record, read_records

SWEEP_KEYS = {"dataset_config", "sample_users", "archs", "train_neg_count", "epochs", "settings", "model", "seed",
              "sample_seed", "data_dir"}
REQUIRED_KEYS = {"dataset_config", "archs"}


def settings_hash(settings):
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_sweep(path):
    """The sweep file, checked: unknown keys, architectures, fractions, the dataset yaml; a clear error naming the
    problem before anything runs."""
    if not os.path.isfile(path):
        raise ValueError(f"sweep file '{path}' does not exist")
    with open(path) as f:
        sweep = yaml.safe_load(f) or {}
    if not isinstance(sweep, dict):
        raise ValueError(f"{path}: expected a mapping of sweep keys, got {type(sweep).__name__}")
    unknown = sorted(set(sweep) - SWEEP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; a sweep has {sorted(SWEEP_KEYS)} "
                         "(RecBole/SRT properties go under 'settings')")
    missing = sorted(REQUIRED_KEYS - set(sweep))
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    base = os.path.dirname(os.path.abspath(path))
    dataset_config = os.path.join(base, sweep["dataset_config"])
    if not os.path.isfile(dataset_config):
        raise ValueError(f"{path}: dataset_config '{sweep['dataset_config']}' not found (looked at {dataset_config})")
    for arch in _as_list(sweep["archs"]):
        architectures.parse(arch)
    fractions = [float(f) for f in _as_list(sweep.get("sample_users", [1.0]))]
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise ValueError(f"{path}: sample_users {bad} outside (0, 1]")
    negatives = [int(n) for n in _as_list(sweep.get("train_neg_count", [100]))]
    if any(n < 1 for n in negatives):
        raise ValueError(f"{path}: train_neg_count must be positive, got {negatives}")
    settings = sweep.get("settings") or {}
    shape_keys = sorted(set(settings) & set(architectures.SHAPE_KEYS[:3]))
    if shape_keys:
        raise ValueError(f"{path}: settings {shape_keys} clash with archs (the architecture sets them)")
    with open(dataset_config) as f:
        dataset = yaml.safe_load(f)
    return {
        "dataset_config": dataset_config,
        "dataset": dataset,
        "sample_users": sorted(set(fractions)),
        "archs": list(_as_list(sweep["archs"])),
        "train_neg_count": negatives,
        "epochs": int(sweep.get("epochs", 10)),
        "settings": settings,
        "model": sweep.get("model", "SRT"),
        "seed": int(sweep.get("seed", 2020)),
        "sample_seed": int(sweep.get("sample_seed", 2020)),
        "data_dir": os.path.join(base, sweep["data_dir"]) if sweep.get("data_dir") else None,
    }


def _as_list(value):
    return value if isinstance(value, (list, tuple)) else [value]


def grid(sweep):
    """Every point's settings (what its hash covers) in a stable order: smaller and cheaper first."""
    points = []
    for fraction in sweep["sample_users"]:
        for arch in sweep["archs"]:
            for negatives in sweep["train_neg_count"]:
                points.append({"model": sweep["model"], "dataset": sweep["dataset"]["dataset"],
                               "sample_users": fraction, "sample_seed": sweep["sample_seed"], "architecture": arch,
                               "train_neg_count": negatives, "epochs": sweep["epochs"], "seed": sweep["seed"],
                               "settings": sweep["settings"]})
    return points


def sample_dataset(sweep, fraction, data_dir):
    """(data_path, dataset name) of a grid point's user sample of the sweep's dataset."""
    return user_sample_dataset(sweep["dataset"], fraction, sweep["sample_seed"], data_dir, sweep["dataset_config"])


def user_sample_dataset(dataset, fraction, seed, data_dir, source):
    """(data_path, dataset name) of a user sample of a converted dataset (`dataset`: the settings of its yaml file
    `source`): nested across fractions (one seed), same tokenizer and text fields as the full dataset, built once
    with dataset_scripts."""
    if fraction == 1.0:
        return dataset["data_path"], dataset["dataset"]
    if not dataset.get("tokenizer_model"):
        raise ValueError(f"{source}: user samples need the dataset's tokenizer_model (one vocabulary "
                         "for every sample); convert the dataset with dataset_scripts, which writes it")
    from dataset_scripts.convert import convert

    name = f"{dataset['dataset']}-users{fraction:g}-seed{seed}"
    if not os.path.isfile(os.path.join(data_dir, name, f"{name}.inter")):
        convert("recbole", [os.path.join(dataset["data_path"], dataset["dataset"])], name, data_dir,
                tokenizer=dataset["tokenizer_model"], sample=fraction, seed=seed,
                text_fields=dataset["text_fields"])
    return data_dir, name


def run_point(point, data_path, dataset_name, dataset_settings, results_path, machine, gpu_id=""):
    """Train and evaluate one grid point; append its records. Returns its final record."""
    from recbole_srt.quick_start import prepare
    from recbole_srt.trainer import get_trainer

    key = settings_hash(point)
    attempt = uuid.uuid4().hex[:8]
    config_dict = {**dataset_settings, **point["settings"], "data_path": data_path, "dataset": dataset_name,
                   "architecture": point["architecture"], "train_neg_count": point["train_neg_count"],
                   "epochs": point["epochs"], "seed": point["seed"], "eval_step": 1, "gpu_id": gpu_id,
                   "show_progress": False, "state": point["settings"].get("state", "WARNING")}
    if point["model"] != "SRT":
        config_dict.pop("train_neg_count")
    start = time.perf_counter()
    config, _, (train, valid, test), model = prepare(point["model"], dataset_name, config_dict=config_dict)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    common = {"hash": key, "attempt": attempt, "point": point, "machine": machine,
              "parameters": trainer.n_parameters, "non_embedding_parameters": trainer.n_non_embedding_parameters,
              "training_interactions": train.sample_size}

    def after_epoch(epoch, valid_score):
        result = trainer.last_valid_result or {}
        append_record(results_path, {**common, "epoch": epoch, "valid_ndcg@5": result.get("ndcg@5"),
                                     "valid_hit@5": result.get("hit@5"), "train_flops": trainer.train_flops,
                                     "seen_interactions": trainer.seen_interactions,
                                     "wall_s": time.perf_counter() - start})

    _, best_valid = trainer.fit(train, valid, saved=True, show_progress=False, callback_fn=after_epoch)
    test_result = trainer.evaluate(test, load_best_model=True)
    final = {**common, "final": True, "best_valid_ndcg@5": best_valid.get("ndcg@5"),
             "test_ndcg@5": test_result["ndcg@5"], "test_hit@5": test_result["hit@5"],
             "epochs_run": trainer.seen_interactions // max(1, train.sample_size),
             "wall_s": time.perf_counter() - start}
    append_record(results_path, final)
    os.remove(trainer.saved_model_file)  # the record is the result; checkpoints of every point would fill disks
    return final


def done_hashes(results_path):
    return {r["hash"] for r in read_records(results_path) if r.get("final")}


def run(sweep_path, results_path, address=None, use_ray=True, cpus_per_point=1, log=print):
    """Run every grid point not done yet; returns the final records of this call's points."""
    sweep = load_sweep(sweep_path)
    data_dir = sweep["data_dir"] or os.path.join(sweep["dataset"]["data_path"], "scaling-samples")
    os.makedirs(data_dir, exist_ok=True)
    points = grid(sweep)
    done = done_hashes(results_path)
    todo = [p for p in points if settings_hash(p) not in done]
    log(f"sweep {sweep_path}: {len(points)} points, {len(points) - len(todo)} done, {len(todo)} to run")
    dataset_settings = {k: v for k, v in sweep["dataset"].items() if k not in ("data_path", "dataset")}
    jobs = []
    for point in todo:  # samples are built here, once, before any point runs
        data_path, name = sample_dataset(sweep, point["sample_users"], data_dir)
        jobs.append((point, data_path, name, dataset_settings, os.path.abspath(results_path)))
    if not use_ray:
        finals = []
        for index, job in enumerate(jobs):
            log(_progress(len(points) - len(todo) + index, 1, len(todo) - index - 1, finals))
            finals.append(run_point(*job, machine()))
        log(_progress(len(points), 0, 0, finals))
        return finals
    return _run_on_ray(jobs, address, cpus_per_point, len(points) - len(todo), log)


def _progress(done, running, left, finals, parallel=1):
    eta = ""
    if finals and (running or left):
        mean = sum(f["wall_s"] for f in finals) / len(finals)
        eta = f", ETA {mean * (running / 2 + left) / parallel / 60:.1f} min"
    return f"points: {done} done, {running} running, {left} left{eta}"


def _run_on_ray(jobs, address, cpus_per_point, already_done, log):
    """Points as Ray tasks: on an existing cluster (`address`) or an embedded local Ray over this machine's CPUs
    and GPUs; one point per GPU when there are GPUs, else `cpus_per_point` cores (and threads) each."""
    import ray
    import torch

    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), num_gpus=torch.cuda.device_count(), include_dashboard=False,
                 log_to_driver=False)
    try:
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        if gpus:
            per_point, parallel = {"num_gpus": 1, "num_cpus": max(1, cpus // gpus)}, gpus
        else:
            per_point = {"num_cpus": min(cpus_per_point, cpus)}
            parallel = max(1, cpus // per_point["num_cpus"])
        task = ray.remote(**per_point)(_ray_point)
        pending = [task.remote(*job, per_point["num_cpus"], bool(gpus)) for job in jobs]
        finals = []
        while pending:
            running = min(parallel, len(pending))
            log(_progress(already_done + len(finals), running, len(pending) - running, finals, parallel))
            ready, pending = ray.wait(pending, num_returns=1)
            finals.append(ray.get(ready[0]))
        log(_progress(already_done + len(finals), 0, 0, finals))
        return finals
    finally:
        ray.shutdown()


def _ray_point(point, data_path, name, dataset_settings, results_path, threads, on_gpu):
    """A Ray task: the point on this worker's share of the machine (its GPU, as Ray assigned it)."""
    import ray
    import torch

    torch.set_num_threads(threads)
    gpu_id = ",".join(str(int(g)) for g in ray.get_gpu_ids()) if on_gpu else ""
    return run_point(point, data_path, name, dataset_settings, results_path, machine(), gpu_id=gpu_id)
