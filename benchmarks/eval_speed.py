"""Evaluation speed: one test pass of the same model over the same users, RecBole's modes vs our sampled ones.

    python benchmarks/eval_speed.py [--model SASRec] [--dataset ml-100k] [--long]
    python benchmarks/eval_speed.py --model SRT --dataset Amazon_Beauty \\
        --config_files data/Amazon_Beauty/Amazon_Beauty.yaml --no_uni

Targets (issue 3): our 10K-sampled pass >= 20x faster than RecBole's uni100, and within 1.5x of RecBole's full sort.
"""

import argparse
import time

import torch
import yaml

from common import machine_line, markdown_table, prepare, trainer_for, write_results

BASE = {
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
    "metrics": ["NDCG", "Hit"],
    "topk": [5, 10],
    "valid_metric": "NDCG@5",
    "eval_batch_size": 4096,
    "show_progress": False,
    "state": "WARNING",
    "gpu_id": "",
}


def time_test_pass(model_name, dataset, mode, extra, state_dict, dataset_settings):
    config, model, train, _, test = prepare(model_name, dataset, {
        **dataset_settings, **BASE, **extra,
        "eval_args": {**BASE["eval_args"], "mode": {"valid": "full", "test": mode}}})
    if state_dict is not None:
        model.load_state_dict(state_dict)
    trainer = trainer_for(config, model, train)
    start = time.perf_counter()
    result = trainer.evaluate(test, load_best_model=False)
    return time.perf_counter() - start, result, model.state_dict()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SASRec")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--long", action="store_true", help="also time RecBole's uni1000 (about 12 minutes on 2 cores)")
    parser.add_argument("--no_uni", action="store_true", help="skip RecBole's uniN modes (hours on large datasets)")
    parser.add_argument("--config_files", nargs="*", default=[], help="dataset yaml files (load_col, text_fields)")
    args = parser.parse_args()
    dataset_settings = {}
    for path in args.config_files:
        with open(path) as f:
            dataset_settings.update(yaml.safe_load(f))
    dataset_settings.pop("eval_args", None)

    modes = [("RecBole full", "full", {})]
    if not args.no_uni:
        modes.append(("RecBole uni100", "uni100", {}))
    if args.long:
        modes.append(("RecBole uni1000", "uni1000", {}))
    modes += [
        ("ours sampled100", "sampled100", {}),
        ("ours sampled1000", "sampled1000", {}),
        ("ours sampled10000", "sampled10000", {}),
        ("ours sampled10000, with replacement", "sampled10000", {"sampled_eval_args": {"replacement": True}}),
    ]
    state_dict, records = None, []
    for label, mode, extra in modes:
        seconds, result, state_dict = time_test_pass(args.model, args.dataset, mode, extra, state_dict,
                                                     dataset_settings)
        records.append({"label": label, "mode": mode, "extra": extra, "seconds": seconds, "result": dict(result)})
        print(f"{label}: {seconds:.2f}s {dict(result)}", flush=True)
    by_label = {r["label"]: r["seconds"] for r in records}
    ours = by_label["ours sampled10000"]
    ratios = {"ours sampled10000 / full": ours / by_label["RecBole full"]}
    if "RecBole uni100" in by_label:
        ratios["uni100 / ours sampled10000"] = by_label["RecBole uni100"] / ours
    write_results(f"eval_speed_{args.model}_{args.dataset}", {"model": args.model, "dataset": args.dataset,
                  "runs": records, "ratios": ratios, "torch_threads": torch.get_num_threads()}, table)


def table(payload, name=None):
    """`name` (the results file's, eval_speed_<model>_<dataset>) names the model and dataset of files written before
    the payload held them."""
    model, dataset = payload.get("model"), payload.get("dataset")
    if model is None:
        model, dataset = name.removeprefix("eval_speed_").split("_", 1)
    rows = [[r["label"], f"{r['seconds']:.2f}", f"{r['result'].get('ndcg@5', float('nan')):.4f}",
             f"{r['result'].get('hit@5', float('nan')):.4f}"] for r in payload["runs"]]
    text = markdown_table([f"{model} on {dataset}, test pass", "seconds", "ndcg@5", "hit@5"], rows)
    ratios = "\n".join(f"- {k}: {v:.1f}x" for k, v in payload["ratios"].items())
    return f"{text}\n\n{ratios}\n\n{machine_line(payload['machine'])}\n"


if __name__ == "__main__":
    main()
