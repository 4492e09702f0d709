"""`run_recbole`: RecBole's run script for SRT and every built-in model, with clear errors and exit codes."""

import argparse
import sys

USAGE_EXAMPLES = """examples:
  run_recbole --model=SRT --dataset=ml-100k
  run_recbole --model=SASRec --dataset=ml-100k --epochs=5
  run_recbole --model=SRT --dataset=Amazon_Beauty --config_files="base.yaml srt.yaml" --train_neg_count=1000

Any other --key=value overrides a RecBole / SRT property (values are parsed as Python literals)."""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="run_recbole",
        description="Train, validate and test a RecBole model (SRT included) on a dataset.",
        epilog=USAGE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", "-m", default=None,
                        help="model name, e.g. SRT, SASRec, BERT4Rec (or `model:` in a yaml)")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name, e.g. ml-100k (or `dataset:` in a yaml)")
    parser.add_argument("--config_files", default=None, help="space-separated yaml property files")
    parser.add_argument("--no-save", action="store_true", help="do not save checkpoints (test the last model)")
    return parser.parse_known_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args, overrides = parse_args(argv)
    malformed = [a for a in overrides if not (a.startswith("--") and a.count("=") == 1)]
    if malformed:
        print(f"run_recbole: error: overrides must be --key=value, got: {' '.join(malformed)}", file=sys.stderr)
        return 2
    keys = [a[2:].split("=")[0] for a in overrides]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        print(f"run_recbole: error: {', '.join('--' + k for k in repeated)} given more than once; give each key once",
              file=sys.stderr)
        return 2
    # RecBole's Config reads --key=value overrides from sys.argv itself.
    sys.argv = [sys.argv[0] if sys.argv else "run_recbole", *overrides]
    config_files = args.config_files.split() if args.config_files else None

    from recbole_srt.config import Config
    from recbole_srt.distributed import PeerTimeout
    from recbole_srt.quick_start import run_recbole

    try:
        config = Config(model=args.model, dataset=args.dataset, config_file_list=config_files)
        unknown = config.unknown_keys(config.cmd_config_dict)
        if unknown:
            raise KeyError(
                f"unknown property {', '.join('--' + k for k in unknown)} for model {config['model']} "
                f"on {config['dataset']} (not in any default yaml; check the spelling)"
            )
        result = run_recbole(
            model=args.model, dataset=args.dataset, config_file_list=config_files, saved=not args.no_save
        )
    except (ValueError, KeyError, FileNotFoundError, PeerTimeout) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"run_recbole: error: {message}", file=sys.stderr)
        return 2
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:  # under torchrun, process 0 reports
        print(f"test result: {dict(result['test_result'])}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
