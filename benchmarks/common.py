"""What every benchmark script shares: building a model and its data, the machine description, output files."""

import json
import os
import sys

from recbole_srt import SRTTrainer
from recbole_srt.machine import describe as machine
from recbole_srt.quick_start import prepare as prepare_run

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def prepare(model, dataset, config_dict):
    """Config, model (seeded) and the three dataloaders, exactly as run_recbole builds them."""
    sys.argv = sys.argv[:1]
    config, _, (train, valid, test), built = prepare_run(model, dataset, config_dict=config_dict)
    return config, built, train, valid, test


def trainer_for(config, model, train):
    trainer = SRTTrainer(config, model)
    trainer.set_train_item_counts(train)
    return trainer


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name, payload, table):
    """Print the table and write results/<name>.json and results/<name>.md."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    payload = {"machine": machine(), **payload}
    with open(os.path.join(RESULTS_DIR, f"{name}.json"), "w") as f:
        json.dump(payload, f, indent=2)
    text = f"{table}\n\nMachine: {json.dumps(payload['machine'])}\n"
    with open(os.path.join(RESULTS_DIR, f"{name}.md"), "w") as f:
        f.write(text)
    print(text)
