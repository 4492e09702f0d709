"""A released SRT: any SRT checkpoint reduced to what another catalog needs, to share it.

    python -m recbole_srt.transfer.release saved/SRT-....pth --name NAME [--output-dir pretrained]

writes `pretrained/NAME/NAME.pth` (the one file `pretrained_model:` takes): the weights, the SentencePiece model and
the settings that decide the parameters, as plain values (a hashed item-id table is left out: it belongs to the
checkpoint's catalog). No optimizer state, scheduler or pickled objects: it loads
with torch's weights-only unpickler and nothing else, and it holds no training data (so EWC, which needs the
pre-training data, cannot start from it). Beside it, `NAME.json` records where it came from (the checkpoint's
file name: a path would name a folder on the machine that wrote it).
"""

import argparse
import hashlib
import json
import os
import sys

from recbole_srt.checkpoint import load_checkpoint, save_checkpoint
from recbole_srt.transfer.pretrained import ADOPTED, CATALOG_PARAMETERS, read

# Settings recorded besides ADOPTED: how the text was read and how the model was trained.
RECORDED = ("model", "dataset", "text_fields", "max_text_tokens", "train_neg_count", "neg_sampling_distribution",
            "neg_sampling_scope", "logq_correction", "shared_negatives", "in_batch_negatives", "transformer_gate_init",
            "temperature", "learning_rate", "epochs", "train_batch_size", "seed")
LIMIT_BYTES = 25 * 2**20


def plain(value):
    """A config value as JSON-able plain data (lists for tuples, str for enums and the like)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def export(checkpoint_path, name, output_dir="pretrained", trust_checkpoint=False):
    """Write output_dir/name/name.pth and name.json; returns the .pth path. A checkpoint that holds pickled objects
    (written before checkpoints held data only) is read only with `trust_checkpoint`; its release holds data only."""
    checkpoint = read(checkpoint_path, trust_checkpoint)
    config = checkpoint["config"]
    settings = {key: plain(config[key]) for key in (*RECORDED, *ADOPTED) if key in config}
    # A hashed id table is left out: another catalog never loads it (its ids are this one's items).
    release = {"config": settings, "state_dict": {k: v.detach().cpu().contiguous() for k, v in
                                                  checkpoint["state_dict"].items()
                                                  if not k.startswith(CATALOG_PARAMETERS)},
               "other_parameter": {"tokenizer_proto": checkpoint["other_parameter"]["tokenizer_proto"]},
               "compute": plain(checkpoint.get("compute") or {})}
    folder = os.path.join(output_dir, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.pth")
    tmp = f"{path}.{os.getpid()}.tmp"
    save_checkpoint(release, tmp)
    size = os.path.getsize(tmp)
    if size > LIMIT_BYTES:
        os.remove(tmp)
        raise ValueError(f"{checkpoint_path}: the release would be {size / 2**20:.1f} MB, over the "
                         f"{LIMIT_BYTES // 2**20} MB a released model may take")
    os.replace(tmp, path)
    load_checkpoint(path, "cpu")  # it must load with the safe loader alone
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    record = {"file": f"{name}.pth", "sha256": digest, "bytes": size, "from": os.path.basename(checkpoint_path),
              "settings": settings, "compute": release["compute"],
              "parameters": sum(v.numel() for v in release["state_dict"].values())}
    with open(os.path.join(folder, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recbole_srt.transfer.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="an SRT checkpoint written by run_recbole")
    parser.add_argument("--name", required=True, help="the release's name: files are OUTPUT_DIR/NAME/NAME.*")
    parser.add_argument("--output-dir", default="pretrained")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="open a checkpoint that holds pickled objects (RecBole's, or ours before data-only ones)")
    args = parser.parse_args(argv)
    try:
        path = export(args.checkpoint, args.name, args.output_dir, args.trust_checkpoint)
    except (ValueError, OSError) as error:
        print(f"release: error: {error}", file=sys.stderr)
        return 2
    print(f"{path}: fine-tune with run_recbole --model=SRT --config_files=YOUR_DATASET.yaml --pretrained_model={path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
