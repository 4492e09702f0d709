"""Rewrite a checkpoint that holds pickled objects (RecBole's own, or ours from before checkpoints held data only)
as a data-only one, which then opens without trust_checkpoint.

    python -m recbole_srt.upgrade_checkpoint OLD.pth [--output NEW.pth]

Running it says that you trust OLD.pth: it is opened as trust_checkpoint opens files (classes of RecBole,
recbole-srt and torch.nn rebuilt, never a function called). Without --output the file is replaced, atomically.
"""

import argparse
import sys

from recbole_srt.checkpoint import (CheckpointError, data_only_other_parameter, load_checkpoint,
                                    pickled_globals, save_checkpoint)
from recbole_srt.config import Config, checkpoint_settings, plain_value


def upgrade(path, output=None):
    """Write the data-only form of checkpoint `path` to `output` (default: over `path`); returns the path written."""
    checkpoint = load_checkpoint(path, "cpu", trust=True)
    settings, meta = checkpoint_settings(Config.from_checkpoint(checkpoint, path))
    upgraded = {**checkpoint, "config": settings, "config_meta": meta,
                "other_parameter": data_only_other_parameter(checkpoint.get("other_parameter"))}
    if upgraded.get("best_valid_result") is not None:
        upgraded["best_valid_result"] = plain_value(dict(upgraded["best_valid_result"]), "best_valid_result")
    output = output or path
    save_checkpoint(upgraded, output)
    left = pickled_globals(output)
    if left:
        raise CheckpointError(f"checkpoint {path}: still holds {left} after the upgrade; {output} is not data only")
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recbole_srt.upgrade_checkpoint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--output", help="where to write the data-only checkpoint (default: over CHECKPOINT)")
    args = parser.parse_args(argv)
    try:
        print(f"{upgrade(args.checkpoint, args.output)}: data only")
    except (ValueError, FileNotFoundError) as error:
        print(f"upgrade_checkpoint: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
