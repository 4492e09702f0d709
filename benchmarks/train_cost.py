"""Training cost: seconds per optimizer step of SRT-{10,100,1000} and SASRec-CE at equal sizes and batch.

    python benchmarks/train_cost.py [--dataset ml-100k] [--batch 512] [--length 50] [--hidden 64] [--steps 10]

Each step is what the trainer does: forward, loss, backward, clipping, Adam step (anomaly mode off, fused GELU).
Target (issue 3): SRT-1K step <= 1.5x SASRec-CE step.
"""

import argparse

from common import first_batches, machine_line, markdown_table, prepare, seconds_per_step, trainer_for, write_results

VARIANTS = [
    ("SASRec-CE", "SASRec", {"loss_type": "CE", "train_neg_sample_args": None}),
    ("SRT-10", "SRT", {"train_neg_count": 10}),
    ("SRT-100", "SRT", {"train_neg_count": 100}),
    ("SRT-1000", "SRT", {"train_neg_count": 1000}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--config_files", nargs="*", default=None, help="dataset yaml (load_col, text_fields, ...)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--gpu", action="store_true", help="run on cuda (default: CPU)")
    args = parser.parse_args()

    shared = {
        "train_batch_size": args.batch,
        "MAX_ITEM_LIST_LENGTH": args.length,
        "hidden_size": args.hidden,
        "inner_size": 4 * args.hidden,
        "n_layers": args.layers,
        "n_heads": 2,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "gpu_id": "0" if args.gpu else "",
        "state": "WARNING",
        "show_progress": False,
        "shuffle": False,
        "max_grad_norm": 1.0,
    }
    if args.config_files:
        import yaml

        for path in args.config_files:
            with open(path) as f:
                shared.update(yaml.safe_load(f))
    records = []
    for label, model_name, extra in VARIANTS:
        config, model, train, _, _ = prepare(model_name, args.dataset, {**shared, **extra})
        trainer = trainer_for(config, model, train)
        seconds = seconds_per_step(trainer, first_batches(train, args.steps + 1, trainer.device))
        records.append({"label": label, "seconds_per_step": seconds, "n_items": model.n_items})
        print(f"{label}: {seconds:.3f} s/step", flush=True)
    device = "gpu" if args.gpu else "cpu"
    write_results(f"train_cost_{args.dataset}_{device}", {"args": vars(args), "runs": records}, table)


def table(payload):
    settings, records = payload["args"], payload["runs"]
    base = next(r["seconds_per_step"] for r in records if r["label"] == "SASRec-CE")
    rows = [[r["label"], f"{r['seconds_per_step']:.3f}", f"{r['seconds_per_step'] / base:.2f}"] for r in records]
    title = (f"{settings['dataset']}, batch {settings['batch']}x{settings['length']}, hidden {settings['hidden']}, "
             f"{settings['layers']} layers")
    return f"{markdown_table([title, 's/step', 'vs SASRec-CE'], rows)}\n\n{machine_line(payload['machine'])}\n"

if __name__ == "__main__":
    main()
