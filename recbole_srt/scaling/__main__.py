"""python -m recbole_srt.scaling run SWEEP.yaml --results RESULTS.jsonl [--address ADDR | --no-ray]
python -m recbole_srt.scaling fit RESULTS.jsonl --out DIR [--sweep KEY] [--params non_embedding|total]"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recbole_srt.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) a sweep's grid, appending records to RESULTS.jsonl")
    run.add_argument("sweep",
                     help="sweep yaml (dataset_config, sample_users, archs, train_neg_count, epochs, settings)")
    run.add_argument("--results", required=True, help="JSONL file; finished points in it are skipped")
    run.add_argument("--address", help="an existing Ray cluster (default: an embedded local Ray)")
    run.add_argument("--no-ray", action="store_true", help="run the points in this process, one after another")
    run.add_argument("--cpus-per-point", type=int, default=1, help="CPU cores (and threads) per point without GPUs")
    fit = commands.add_parser("fit", help="fit the paper's laws and draw figures 4-7 from RESULTS.jsonl")
    fit.add_argument("results")
    fit.add_argument("--out", required=True, help="folder for report.md, fits.json and the PNG figures")
    fit.add_argument("--sweep", help="which sweep of the file (its key), when it holds several")
    fit.add_argument("--params", choices=["non_embedding", "total"], default="non_embedding",
                     help="N of the fits: non-embedding parameters (default) or all parameters (the paper's eq. 4)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "run":
            from recbole_srt.scaling.sweep import run as run_sweep

            run_sweep(args.sweep, args.results, address=args.address, use_ray=not args.no_ray,
                      cpus_per_point=args.cpus_per_point)
        else:
            from recbole_srt.scaling.report import write_report

            params_key = {"non_embedding": "non_embedding_parameters", "total": "parameters"}[args.params]
            path, _ = write_report(args.results, args.out, args.sweep, params_key)
            print(f"report: {path}")
    except (ValueError, FileNotFoundError) as error:
        print(f"recbole_srt.scaling: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
