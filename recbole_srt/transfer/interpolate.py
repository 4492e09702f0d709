"""Weight-space ensembles of a fine-tuned SRT and the pre-trained model it started from (WiSE-FT, Wortsman et al.,
CVPR 2022): every weight the two share becomes (1 - alpha) x pre-trained + alpha x fine-tuned. Fine-tuning on one
catalog moves the weights away from what pre-training learned on many; a point between the two may keep some of
both, at no training cost. alpha 1 is the fine-tuned model; 0 the pre-trained one, but for the parameters that
fine-tuning added (a hashed id table, a transformer gate), which keep their fine-tuned values at every alpha.
"""

import torch

from recbole_srt.transfer import pretrained


def pretrained_start(config):
    """The weights a run fine-tuned from `config['pretrained_model']` started from, but the catalog's own."""
    path = config["pretrained_model"]
    if not path:
        raise ValueError(f"interpolation: the run on {config['dataset']} was not fine-tuned from a pretrained_model")
    state = pretrained.read(path, bool(config["trust_checkpoint"]))["state_dict"]
    return {key: value for key, value in state.items() if not key.startswith(pretrained.CATALOG_PARAMETERS)}


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
