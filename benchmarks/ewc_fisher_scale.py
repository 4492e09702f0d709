"""What `ewc_lambda` means: EWC's Fisher here is the mean squared gradient of the batch-mean training loss
(`recbole_srt.transfer.ewc.fisher_diagonal`), while Kirkpatrick et al.'s, whose lambda the paper sets to 100, is the
mean squared gradient of one example's loss. On the same pre-training examples this measures both, their ratio (the
factor between a lambda here and the paper's), and the penalty each puts on fine-tuned checkpoints' distance from
the pre-trained weights.

    python benchmarks/ewc_fisher_scale.py --pretrained saved/PRETRAINED.pth --finetuned saved/FINETUNED.pth ... \\
        [--batches 2]

Writes results/ewc_fisher_scale_<device>.json.
"""

import argparse
import glob
import itertools
import os

import torch

from common import RESULTS_DIR, machine_line, markdown_table, write_results
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.quick_start import pretraining_data
from recbole_srt.scaling.records import read_records
from recbole_srt.transfer.ewc import UNANCHORED, fisher_diagonal


def per_example_fisher(model, batches):
    """({parameter name: mean squared gradient of one example's loss}, examples) over the examples of `batches`."""
    examples = [batch[row:row + 1] for batch in batches for row in range(len(batch))]
    return fisher_diagonal(model, examples, len(examples)), len(examples)


def weighted_distance(fisher, anchor, weights, path):
    """sum_i F_i (theta_i - theta*_i)^2 over the parameters EWC anchors: the penalty is lambda / 2 times this."""
    total = 0.0
    for name, value in fisher.items():
        if name in UNANCHORED:
            continue
        if name not in weights or weights[name].shape != anchor[name].shape:
            raise SystemExit(f"--finetuned {path}: its {name} is missing or has another shape than the pre-trained "
                             f"model's {tuple(anchor[name].shape)}: not fine-tuned from --pretrained")
        total += (value.cpu() * (weights[name] - anchor[name]) ** 2).sum().item()
    return total


def table4_runs():
    """{checkpoint: its Table 4 record}: a fine-tuned checkpoint is shown by its row's label and EWC strength."""
    files = sorted(glob.glob(os.path.join(RESULTS_DIR, "transfer_table4*.jsonl")))
    return {record["checkpoint"]: record for path in files for record in read_records(path)}


def table(payload):
    rows = [["batch Fisher (EWC here)", f"{payload['batch_fisher_sum']:.4g}", "1"],
            ["per-example Fisher (Kirkpatrick et al.)", f"{payload['example_fisher_sum']:.4g}",
             f"{payload['ratio']:.0f}"]]
    penalties = [[run["label"] or os.path.basename(run["checkpoint"]), f"{run['batch_distance']:.4g}",
                  f"{run['ewc_lambda'] / 2 * run['batch_distance']:.4g}", f"{50 * run['batch_distance']:.4g}",
                  f"{50 * run['example_distance']:.4g}"]
                 for run in payload["finetuned"]]
    return (f"Fisher information of `{os.path.basename(payload['pretrained'])}` over {payload['examples']:,} "
            f"pre-training examples ({payload['batches']} batches of {payload['batch_size']}):\n\n"
            + markdown_table(["Fisher", "sum over parameters", "x batch Fisher"], rows)
            + "\n\nAt the end of each fine-tuning: its distance from the pre-trained weights weighted by the batch "
              "Fisher, the EWC penalty it trained under (its own lambda), and the penalty at lambda 100 with each "
              "Fisher:\n\n"
            + markdown_table(["fine-tuned run", "sum F (theta - theta*)^2, batch Fisher", "penalty at its lambda",
                              "at lambda 100, batch Fisher", "at lambda 100, per-example Fisher"], penalties)
            + f"\n\n{machine_line(payload['machine'])}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True, help="a pre-training checkpoint (not a release: its data)")
    parser.add_argument("--finetuned", nargs="*", default=[], help="checkpoints fine-tuned from it")
    parser.add_argument("--batches", type=int, default=2, help="pre-training batches to estimate both Fishers on")
    args = parser.parse_args()
    torch.manual_seed(0)
    model, train_data = pretraining_data(args.pretrained)
    batches = list(itertools.islice(train_data, args.batches))  # one draw of the shuffled data for both
    batch_fisher = fisher_diagonal(model, batches, args.batches)
    example_fisher, examples = per_example_fisher(model, batches)
    anchor = load_checkpoint(args.pretrained, "cpu")["state_dict"]
    finetuned, runs = [], table4_runs()
    for path in args.finetuned:
        weights = load_checkpoint(path, "cpu")["state_dict"]
        run = runs.get(path, {})
        finetuned.append({"checkpoint": path, "label": run.get("label"),
                          "ewc_lambda": run.get("settings", {}).get("ewc_lambda") or 0,
                          "batch_distance": weighted_distance(batch_fisher, anchor, weights, path),
                          "example_distance": weighted_distance(example_fisher, anchor, weights, path)})
    batch_sum = sum(v.sum().item() for v in batch_fisher.values())
    example_sum = sum(v.sum().item() for v in example_fisher.values())
    device = next(model.parameters()).device.type
    write_results(f"ewc_fisher_scale_{device}", {
        "pretrained": args.pretrained, "batches": args.batches, "batch_size": train_data.config["train_batch_size"],
        "examples": examples, "batch_fisher_sum": batch_sum, "example_fisher_sum": example_sum,
        "ratio": example_sum / batch_sum, "finetuned": finetuned}, table)


if __name__ == "__main__":
    main()
