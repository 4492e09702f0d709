"""Weight-space ensembles of a fine-tuned SRT and the pre-trained model it started from (WiSE-FT, Wortsman et al.,
CVPR 2022): every weight the two share becomes (1 - alpha) x pre-trained + alpha x fine-tuned. Fine-tuning on one
catalog moves the weights away from what pre-training learned on many; a point between the two may keep some of
both, at no training cost. alpha 1 is the fine-tuned model; 0 the pre-trained one, but for the parameters that
fine-tuning added (a hashed id table, a transformer gate), which keep their fine-tuned values at every alpha.

    python -m recbole_srt.transfer.interpolate saved/SRT-....pth --alpha 0.9 --output saved/SRT-...-alpha0.9.pth

writes the run's checkpoint with interpolated weights; `load_data_and_model`, `recommend` and evaluation take it
as the run's own. Choose alpha on validation (`benchmarks/transfer_interpolation.py`).
"""

import argparse
import os
import sys

import torch

from recbole_srt.checkpoint import load_checkpoint, save_checkpoint
from recbole_srt.transfer import pretrained


def pretrained_start(config):
    """The weights a run fine-tuned from `config['pretrained_model']` took from it (`pretrained_parameters`), but the
    catalog's own."""
    path = config["pretrained_model"]
    if not path:
        raise ValueError(f"interpolation: the run on {config['dataset']} was not fine-tuned from a pretrained_model")
    state = pretrained.read(path, bool(config["trust_checkpoint"]))["state_dict"]
    state = {key: value for key, value in state.items() if not key.startswith(pretrained.CATALOG_PARAMETERS)}
    return pretrained.selected(state, config["pretrained_parameters"], path)


def interpolated_state(finetuned, start, alpha):
    """`finetuned` (a state dict) with every floating-point tensor that `start` holds moved to
    (1 - alpha) x start + alpha x finetuned."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"interpolation: alpha is a weight in [0, 1], got {alpha}")
    unmatched = [key for key, value in start.items()
                 if key not in finetuned or finetuned[key].shape != value.shape]
    if unmatched:
        raise ValueError(f"interpolation: the pre-trained weights {unmatched[:3]} have no counterpart of their shape "
                         "in the fine-tuned model (another architecture?)")
    return {key: torch.lerp(start[key].to(value), value, alpha)
            if key in start and value.is_floating_point() else value
            for key, value in finetuned.items()}


# What a model is rebuilt from (load_data_and_model, recommend). The run's training state (optimizer, epoch, best
# validation result) describes the fine-tuned weights, not these, and is left out.
MODEL_KEYS = ("config", "config_meta", "state_dict", "other_parameter", "compute")


def write_interpolated(checkpoint_path, alpha, output, trust=False):
    """The run checkpoint at `checkpoint_path`, its weights at `alpha` from its pretrained_model's to its own, as
    `output`, with a record of both."""
    if os.path.abspath(output) == os.path.abspath(checkpoint_path):
        raise ValueError(f"--output {output} is the fine-tuned checkpoint itself: write the interpolation beside it")
    checkpoint = load_checkpoint(checkpoint_path, "cpu", trust=trust)
    if pretrained.is_release(checkpoint):
        raise ValueError(f"{checkpoint_path}: a released model; interpolate a run fine-tuned from one")
    state = interpolated_state(checkpoint["state_dict"], pretrained_start(checkpoint["config"]), alpha)
    interpolated = {key: checkpoint[key] for key in MODEL_KEYS if key in checkpoint}
    interpolated["interpolation"] = {"fine_tuned": checkpoint_path, "alpha": alpha,
                                     "pretrained_model": checkpoint["config"]["pretrained_model"]}
    save_checkpoint({**interpolated, "state_dict": state}, output)
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recbole_srt.transfer.interpolate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a run fine-tuned from a pretrained_model, written by run_recbole")
    parser.add_argument("--alpha", type=float, required=True, help="the fine-tuned weights' share, in [0, 1]")
    parser.add_argument("--output", required=True, help="the interpolated checkpoint's path")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="open a checkpoint that holds pickled objects (RecBole's, or ours before data-only ones)")
    args = parser.parse_args(argv)
    try:
        path = write_interpolated(args.checkpoint, args.alpha, args.output, args.trust_checkpoint)
    except (ValueError, OSError) as error:
        print(f"interpolate: error: {error}", file=sys.stderr)
        return 2
    print(f"{path}: alpha {args.alpha:g} between {args.checkpoint} and its pretrained_model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
