"""Training step cost of SRT over the paper's Table 3 architectures: sequences/s, achieved FLOP/s and, on a GPU,
model FLOPs utilisation (MFU) against the device's peak, for each precision and attention implementation.

    python benchmarks/step_cost.py                                        # CPU: small architectures, fp32 and bf16
    python benchmarks/step_cost.py --gpu --batch 1024                     # GPU: all Table 3, fp32 / bf16 / fp16
    python benchmarks/step_cost.py --archs L2-H2-D64 --attention sdpa recbole --precisions fp32
    python benchmarks/step_cost.py --archs L2-H2-D64 --compile off on --warmup 3      # eager against torch.compile
    python benchmarks/step_cost.py --gpu --archs L24-H4-D256 --precisions bf16 --profile  # where the step's time goes
    python benchmarks/step_cost.py --fast_cpu_dropout on off --profile                  # CPU dropout masks

Each step is the trainer's own (its loss function with DDP/compile/autocast wiring, gradient clipping as the
optimizer steps, GradScaler for fp16), timed as the median of --steps steps after --warmup steps; FLOPs are the
analytic count of recbole_srt/scaling/flops.py (checked against torch's FlopCounterMode in the tests).
"""

import argparse
import itertools
import json

import torch

from common import first_batches, machine_line, markdown_table, prepare, seconds_per_step, top_operators, write_results
from recbole_srt import SRTTrainer
from recbole_srt.architectures import TABLE3
from recbole_srt.scaling.flops import train_step_flops

# Dense peak TFLOP/s (no sparsity) by device name fragment and precision; fp32 runs use TF32 tensor cores (the
# trainer's allow_tf32).
PEAK_TFLOPS = {
    "H200": {"fp32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100 PCIe": {"fp32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100": {"fp32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "A100": {"fp32": 156.0, "bf16": 312.0, "fp16": 312.0},
}


def peak_tflops(device_name, precision):
    for fragment, peaks in PEAK_TFLOPS.items():
        if fragment in device_name:
            return peaks[precision]
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=None, help="default: Table 3 on a GPU, the 4 smallest on CPU")
    parser.add_argument("--precisions", nargs="+", default=None, help="default: fp32 bf16 (+ fp16 on a GPU)")
    parser.add_argument("--attention", nargs="+", default=["sdpa"], choices=["sdpa", "recbole"])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--neg", type=int, default=1000, help="train_neg_count (SRT-1K)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", nargs="+", default=["off"], choices=["off", "on"],
                        help="torch.compile the loss (inductor; its first steps compile: give more --warmup)")
    parser.add_argument("--fast_cpu_dropout", nargs="+", default=["on"], choices=["on", "off"],
                        help="CPU dropout masks from torch.rand (on) or torch's bernoulli_ (off)")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="also profile 3 more steps per run: the operators that take the most time")
    parser.add_argument("--name", default=None, help="results/<name>.json (default: step_cost_cpu or _gpu)")
    args = parser.parse_args()
    archs = args.archs or (list(TABLE3) if args.gpu else ["L2-H2-D64", "L4-H2-D64", "L2-H2-D128", "L4-H2-D128"])
    precisions = args.precisions or (["fp32", "bf16", "fp16"] if args.gpu else ["fp32", "bf16"])
    records = []
    for arch in archs:
        for attention, precision, compiled, fast_dropout in itertools.product(args.attention, precisions, args.compile,
                                                                            args.fast_cpu_dropout):
            settings = {"architecture": arch, "train_batch_size": args.batch, "MAX_ITEM_LIST_LENGTH": args.length,
                        "train_neg_count": args.neg, "attention": attention, "precision": precision,
                        "compile": compiled == "on",
                        "fast_cpu_dropout": fast_dropout == "on", "gpu_id": "0" if args.gpu else "", "state": "WARNING",
                        "show_progress": False, "shuffle": False}
            config, model, train, _, _ = prepare("SRT", args.dataset, settings)
            trainer = SRTTrainer(config, model)
            batches = first_batches(train, args.warmup + args.steps, trainer.device, batch_size=args.batch)
            seconds = seconds_per_step(trainer, batches, args.warmup)
            flops = train_step_flops(model, config, args.batch)
            device_name = torch.cuda.get_device_name(0) if args.gpu else "cpu"
            peak = peak_tflops(device_name, precision) if args.gpu else None
            record = {"arch": arch, "attention": attention, "precision": precision, "compile": compiled,
                      "fast_cpu_dropout": fast_dropout, "seconds_per_step": seconds,
                      "sequences_per_second": args.batch / seconds, "flops_per_step": flops,
                      "achieved_tflops": flops / seconds / 1e12, "peak_tflops": peak,
                      "mfu": flops / seconds / 1e12 / peak if peak else None,
                      "non_embedding_parameters": trainer.n_non_embedding_parameters}
            if args.profile:
                record["top_operators"] = top_operators(trainer, batches[-3:])
            records.append(record)
            print(json.dumps(record), flush=True)
            del trainer, model, batches
            if args.gpu:
                torch.cuda.empty_cache()
    device = "gpu" if args.gpu else "cpu"
    write_results(args.name or f"step_cost_{device}", {"settings": vars(args), "runs": records}, table)


def table(payload):
    """Runs measured before the compile and fast_cpu_dropout options existed show '-' there."""
    settings, rows, profiles = payload["settings"], [], []
    for r in payload["runs"]:
        compiled, fast_dropout = r.get("compile", "-"), r.get("fast_cpu_dropout", "-")
        rows.append([r["arch"], r["attention"], r["precision"], compiled, fast_dropout,
                     f"{r['seconds_per_step'] * 1000:.1f}", f"{r['sequences_per_second']:,.0f}",
                     f"{r['flops_per_step'] / 1e9:.1f}", f"{r['achieved_tflops'] * 1000:.1f}",
                     f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"])
        if r.get("top_operators"):
            costliest = "; ".join(f"{op['operator']} {op['self_ms_per_step']:.1f} ms" for op in r["top_operators"][:8])
            profiles.append(f"**{r['arch']}, {r['attention']}, {r['precision']}, compile {compiled}, fast CPU dropout "
                            f"{fast_dropout}**: {costliest}")
    title = (f"SRT-{settings['neg']} training steps on {settings['dataset']}, batch {settings['batch']} x length "
             f"{settings['length']}")
    text = markdown_table(["architecture", "attention", "precision", "compile", "fast CPU dropout", "ms/step",
                           "sequences/s", "GFLOP/step", "achieved GFLOP/s", "MFU"], rows)
    if profiles:
        text += "\n\nSelf time per step of the costliest operators (torch.profiler):\n\n" + "\n\n".join(profiles)
    return f"{title}\n\n{text}\n\n{machine_line(payload['machine'])}\n"

if __name__ == "__main__":
    main()
