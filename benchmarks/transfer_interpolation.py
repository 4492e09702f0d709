"""Does a weight-space ensemble of a fine-tuned SRT and the pre-trained model it started from beat the fine-tuned
model (WiSE-FT, recbole_srt.transfer.interpolate)? Fine-tuning for a full budget ends level with training from
scratch; if it gets there by overwriting what pre-training learned across catalogs, a point between the two weights
keeps some of it, with no extra training.

    python benchmarks/transfer_interpolation.py --name beauty \\
        --runs "hidden 64, seed 1=saved/SRT-A.pth" "hidden 128, seed 1=saved/SRT-B.pth" [--alphas 0 0.5 0.9 1]

Each checkpoint (a run fine-tuned from a `pretrained_model`) is evaluated at every alpha on its validation and test
splits with its run's candidates (alpha 1 reproduces the run's test result); alpha is chosen on validation, as a
user would choose it. Writes results/transfer_interpolation_<name>.json.
"""

import argparse

from common import labelled_checkpoint, machine_line, markdown_table, trainer_for, write_results
from recbole_srt.quick_start import load_data_and_model
from recbole_srt.transfer.interpolate import interpolated_state, pretrained_start

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
METRIC = "ndcg@5"


def interpolation_curve(checkpoint, alphas):
    """The run's dataset, seed and pre-trained model, and per alpha its valid and test NDCG@5 and test HIT@5."""
    config, model, _, train, valid, test = load_data_and_model(checkpoint)
    trainer = trainer_for(config, model, train)
    finetuned = {key: value.clone() for key, value in model.state_dict().items()}
    start = pretrained_start(config)
    points = []
    for alpha in alphas:
        model.load_state_dict(interpolated_state(finetuned, start, alpha))
        valid_result = trainer.evaluate(valid, load_best_model=False)
        test_result = trainer.evaluate(test, load_best_model=False)
        points.append({"alpha": alpha, "valid_ndcg": valid_result[METRIC], "test_ndcg": test_result[METRIC],
                       "test_hit": test_result["hit@5"]})
        print(f"{checkpoint} alpha {alpha}: valid {valid_result[METRIC]:.4f} test {test_result[METRIC]:.4f}",
              flush=True)
    return {"dataset": config["dataset"], "seed": config["seed"], "pretrained_model": config["pretrained_model"],
            "points": points}


def chosen(points):
    """The point with the best validation NDCG@5 (the largest alpha among ties: the least change)."""
    return max(points, key=lambda point: (point["valid_ndcg"], point["alpha"]))


def parse_alpha(text):
    alpha = float(text)
    if not 0.0 <= alpha <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a weight in [0, 1], got {text}")
    return alpha


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="results/transfer_interpolation_<name>.json")
    parser.add_argument("--runs", nargs="+", required=True, type=labelled_checkpoint, help="LABEL=CHECKPOINT")
    parser.add_argument("--alphas", nargs="+", type=parse_alpha, default=list(DEFAULT_ALPHAS),
                        help="weights of the fine-tuned model (1: as fine-tuned, 0: the pre-trained start)")
    args = parser.parse_args()
    alphas = sorted(set(args.alphas))
    if 1.0 not in alphas:
        raise SystemExit("--alphas: include 1, the fine-tuned model itself, which every other alpha is compared with")
    runs = [{"label": label, "checkpoint": checkpoint, **interpolation_curve(checkpoint, alphas)}
            for label, checkpoint in args.runs]
    write_results(f"transfer_interpolation_{args.name}", {"alphas": alphas, "runs": runs}, table)


def table(payload):
    runs = payload["runs"]
    summary = []
    for run in runs:
        finetuned, best = run["points"][-1], chosen(run["points"])
        summary.append([run["label"], run["dataset"], run["seed"], f"{finetuned['test_ndcg']:.4f}",
                        f"{best['alpha']:g}", f"{best['valid_ndcg']:.4f} ({finetuned['valid_ndcg']:.4f})",
                        f"{best['test_ndcg']:.4f}", f"{best['test_ndcg'] / finetuned['test_ndcg']:.3f}x"])
    header = ["run", "dataset", "seed", f"fine-tuned test {METRIC.upper()}", "alpha chosen on valid",
              "its valid (alpha 1)", f"its test {METRIC.upper()}", "against fine-tuned"]
    curve = [[f"{alpha:g}", *(f"{run['points'][index]['test_ndcg']:.4f} ({run['points'][index]['valid_ndcg']:.4f})"
                              for run in runs)]
             for index, alpha in enumerate(payload["alphas"])]
    pretrained = ", ".join(f"{run['label']} `{run['checkpoint']}` from `{run['pretrained_model']}`" for run in runs)
    curve_header = ["alpha", *(run["label"] for run in runs)]
    return (f"Weight-space ensembles (1 - alpha) x pre-trained + alpha x fine-tuned, alpha chosen on validation "
            f"(checkpoints: {pretrained})\n\n{markdown_table(header, summary)}\n\n"
            f"Test {METRIC.upper()} (valid) by alpha:\n\n{markdown_table(curve_header, curve)}"
            f"\n\n{machine_line(payload['machine'])}\n")


if __name__ == "__main__":
    main()
