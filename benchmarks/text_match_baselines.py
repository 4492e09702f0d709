"""How far item text alone goes on a catalog, with no training: rank each user's candidates by the TF-IDF cosine
between their SentencePiece pieces and those of the user's most recent items (SRT's `lexical_match` with fixed
weights), optionally leaving out the items already in the history (`repeat_match`), against popularity and against
a pre-trained SRT zero-shot. Same evaluation as every run (the dataset's eval_args, e.g. sampled10000, test split).

    python benchmarks/text_match_baselines.py --dataset data/Amazon_Beauty/Amazon_Beauty.yaml \\
        --pretrained pretrained/srt-1k-amazon7/srt-1k-amazon7.pth

Writes results/text_match_baselines_<dataset>.json. Where text alone beats a trained model, a model whose scores
cannot express "shares pieces with the last items" misses most of what carries over to a new catalog.
"""

import argparse
import os
import time

import torch
from torch import nn

from common import machine_line, markdown_table, write_results
from recbole_srt.quick_start import prepare
from recbole_srt.trainer import get_trainer

# Buckets per text field of the hashed TF-IDF vectors: enough that collisions matter little; one row at the 256 the
# transfer table's models use.
DIM = 1024
EXCLUDED = -1e9


class FixedScorer(nn.Module):
    """Scores of an SRT model's catalog from its history-match modules with fixed weights, its popularity, or its
    item vectors' cosine to the last item: what the trainer's evaluation calls (full_sort_predict)."""

    def __init__(self, srt, kind, recent=1, exclude_history=False):
        super().__init__()
        self.srt, self.kind, self.exclude_history = srt, kind, exclude_history
        self.ITEM_SEQ, self.ITEM_SEQ_LEN = srt.ITEM_SEQ, srt.ITEM_SEQ_LEN
        with torch.no_grad():
            if kind == "lexical":
                decay = 0.5 ** torch.arange(srt.max_seq_length, dtype=torch.float)
                srt.lexical_match.weight.copy_((decay * (torch.arange(srt.max_seq_length) < recent)).repeat(
                    srt.lexical_match.n_fields, 1))
                self.vectors = srt.lexical_match.item_vectors(srt.item_tokens)
            elif kind == "model_item_cosine":
                self.vectors = nn.functional.normalize(srt.all_item_embeddings()[:, : srt.hidden_size], dim=-1)
            if srt.repeat_match is not None and kind in ("popularity", "lexical"):
                srt.repeat_match.weight.fill_(EXCLUDED if exclude_history else 0.0)

    @torch.no_grad()
    def full_sort_predict(self, interaction):
        seq, lengths = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        if self.kind == "model":
            return self.srt.full_sort_predict(interaction)
        if self.kind == "model_item_cosine":
            last = seq.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
            return self.vectors[last] @ self.vectors.T
        if self.kind == "popularity":
            scores = self.srt.log_popularity.expand(len(seq), -1).clone()
        else:
            scores = self.srt.lexical_match.query(self.vectors[seq], lengths) @ self.vectors.T
        return self.srt.with_repeats(scores, seq, lengths)


def rows(pretrained):
    """(label, model settings, scorer kind, recent items, history excluded)."""
    text = {"lexical_match_dim": DIM, "repeat_match": True}
    found = [("popularity (training counts)", text, "popularity", 0, False),
             ("text: TF-IDF cosine to the last item", text, "lexical", 1, False),
             ("text: TF-IDF cosine to the last 3 items (weights 1, 0.5, 0.25)", text, "lexical", 3, False),
             ("text: cosine to the last item, history items left out", text, "lexical", 1, True),
             ("text: cosine to the last 3 items, history items left out", text, "lexical", 3, True),
             ("text: the same, hashed to 256 buckets per field", {**text, "lexical_match_dim": 256}, "lexical", 3,
              True)]
    if pretrained:
        model = {"pretrained_model": pretrained}
        found += [("pre-trained SRT zero-shot", model, "model", 0, False),
                  ("pre-trained SRT: its item vectors' cosine to the last item", model, "model_item_cosine", 0, False)]
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="data/Amazon_Beauty/Amazon_Beauty.yaml", help="a converted dataset's yaml")
    parser.add_argument("--pretrained", default=None, help="an SRT checkpoint or release to score zero-shot beside")
    parser.add_argument("--length", type=int, default=20, help="MAX_ITEM_LIST_LENGTH (the transfer table's)")
    args = parser.parse_args()
    runs = []
    for label, settings, kind, recent, exclude in rows(args.pretrained):
        start = time.perf_counter()
        config, _, (_, _, test), srt = prepare("SRT", config_file_list=[args.dataset], config_dict={
            **settings, "epochs": 0, "MAX_ITEM_LIST_LENGTH": args.length, "eval_batch_size": 4096,
            "show_progress": False, "state": "WARNING"})
        srt.eval()
        scorer = FixedScorer(srt, kind, recent, exclude)
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, srt)
        trainer.model = scorer
        result = trainer.evaluate(test, load_best_model=False)
        runs.append({"label": label, "test_ndcg@5": result["ndcg@5"], "test_hit@5": result["hit@5"],
                     "seconds": time.perf_counter() - start})
        print(runs[-1], flush=True)
    name = os.path.splitext(os.path.basename(args.dataset))[0]
    write_results(f"text_match_baselines_{name}", {"dataset": name, "pretrained": args.pretrained,
                                                   "eval_args": dict(config["eval_args"]), "runs": runs}, table)


def table(payload):
    rows_ = [[r["label"], f"{r['test_ndcg@5']:.4f}", f"{r['test_hit@5']:.4f}"] for r in payload["runs"]]
    header = [f"{payload['dataset']}, no training on it", "test NDCG@5", "test HIT@5"]
    source = f"pre-trained model: `{payload['pretrained']}`" if payload["pretrained"] else "no pre-trained model"
    return f"{markdown_table(header, rows_)}\n\n{source}; {machine_line(payload['machine'])}\n"


if __name__ == "__main__":
    main()
