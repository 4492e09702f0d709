"""What a model's history-match weights score on their own, and what they are. A pre-trained SRT with history match
fine-tunes ahead of training from scratch at a low learning rate, and most of that lead is its 60 history-match
weights; at the rate where either side does best the lead is gone. Does a run trained from scratch on the target
learn those weights too, and how fast? This scores each model's history-match terms alone (`history_match_only`)
beside the whole model, on one target's test users and candidates, and lists the weights.

    python benchmarks/history_match_weights.py --name beauty --target data/Amazon_Beauty/Amazon_Beauty.yaml --seed 1 \\
        --runs "release=pretrained/srt-1k-amazon7-text-match/srt-1k-amazon7-text-match.pth" \\
        "from scratch=saved/SRT-A.pth"

A run is any SRT checkpoint or release with history match, built on the target as `pretrained_model` with no
training step (every weight and the tokenizer are the checkpoint's; a run trained on the target is so its own
model again). The first run is the reference of the weights' cosine. Writes results/history_match_weights_<name>.json.
"""

import argparse
import sys

import torch

from common import labelled_checkpoint, machine_line, markdown_table, trainer_for, write_results
from recbole_srt.evaluation.ranking import rank_metrics
from recbole_srt.quick_start import prepare

K = 5


def history_match_weights(model):
    """{"lexical": [fields][recency], "repeat": [recency]}, recency 0 the last item; a part the model lacks is None."""
    lexical = None if model.lexical_match is None else model.lexical_match.weight.detach().cpu().tolist()
    repeat = None if model.repeat_match is None else model.repeat_match.weight.detach().cpu().tolist()
    return {"lexical": lexical, "repeat": repeat}


def evaluate(label, path, target, seed):
    """A run's test NDCG@5 and HIT@5, whole and history-match terms alone, and its weights."""
    config, _, (train, _, test), model = prepare("SRT", config_file_list=[target], config_dict={
        "pretrained_model": path, "epochs": 0, "seed": seed, "eval_batch_size": 4096})
    if model.lexical_match is None and model.repeat_match is None:
        raise SystemExit(f"--runs {label}: {path} has no history match (lexical_match_dim, repeat_match): nothing "
                         f"to score alone")
    trainer = trainer_for(config, model, train)
    scores = {}
    for part, alone in (("whole", False), ("history_match", True)):
        model.history_match_only = alone
        _, ranks = trainer.sampled_positive_ranks(test)
        values = rank_metrics(ranks, [K], ["ndcg", "hit"])
        scores[part] = {name: values[f"{name}@{K}"].mean().item() for name in ("ndcg", "hit")}
    return {"label": label, "checkpoint": path, "fields": list(model.text_fields), **scores,
            "weights": history_match_weights(model), "negatives": config["sampled_eval"]["test"]}


def flat(weights):
    return torch.tensor([w for row in (weights["lexical"] or []) for w in row] + (weights["repeat"] or []))


def table(payload):
    runs = payload["runs"]
    reference = flat(runs[0]["weights"])
    fields = runs[0]["fields"]
    header = ["run", f"whole model NDCG@{K}", f"history-match terms alone NDCG@{K}", f"alone HIT@{K}",
              *(f"lexical weight, last item ({field})" for field in fields),
              *(f"lexical weights, sum over recencies ({field})" for field in fields),
              "repeat weight, last item", "repeat weights, sum", f"cosine to {runs[0]['label']}"]
    rows = []
    for run in runs:
        lexical, repeat = run["weights"]["lexical"], run["weights"]["repeat"]
        weights = flat(run["weights"])
        cosine = torch.nn.functional.cosine_similarity(weights, reference, dim=0).item() \
            if weights.shape == reference.shape else None
        rows.append([run["label"], f"{run['whole']['ndcg']:.4f}", f"{run['history_match']['ndcg']:.4f}",
                     f"{run['history_match']['hit']:.4f}",
                     *((f"{row[0]:.2f}" for row in lexical) if lexical else ["-"] * len(fields)),
                     *((f"{sum(row):.2f}" for row in lexical) if lexical else ["-"] * len(fields)),
                     f"{repeat[0]:.2f}" if repeat else "-", f"{sum(repeat):.2f}" if repeat else "-",
                     "-" if cosine is None else f"{cosine:.2f}"])
    title = (f"{payload['dataset']}, test NDCG@{K} against {payload['negatives']:,} sampled negatives (seed "
             f"{payload['seed']}), whole model and history-match terms alone; checkpoints: "
             + ", ".join(f"{r['label']} `{r['checkpoint']}`" for r in runs))
    return f"{title}\n\n{markdown_table(header, rows)}\n\n{machine_line(payload['machine'])}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="results/history_match_weights_<name>.json")
    parser.add_argument("--target", required=True, help="the target dataset's yaml (dataset_scripts' output)")
    parser.add_argument("--seed", type=int, default=1, help="the seed whose test candidates every run is scored on")
    parser.add_argument("--runs", nargs="+", required=True, type=labelled_checkpoint,
                        help="LABEL=CHECKPOINT (or release), reference first")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config reads the command line too
    runs = []
    for label, path in args.runs:
        runs.append(evaluate(label, path, args.target, args.seed))
        print(label, {part: runs[-1][part] for part in ("whole", "history_match")}, flush=True)
    negatives = {run.pop("negatives") for run in runs}.pop()
    write_results(f"history_match_weights_{args.name}",
                  {"dataset": args.target, "seed": args.seed, "negatives": negatives, "runs": runs}, table)


if __name__ == "__main__":
    main()
