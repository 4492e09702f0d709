"""Table 4's results as pages: Table 4 itself, and for a sweep's results file each row per value of the sweep (the
target's size, the epoch budget), by pre-training corpus, by model size and by peak learning rate; each fine-tuned
row against from scratch. `benchmarks/report.py` renders every transfer_table4 results file with `page_body`."""

import json
import os
import re

from common import markdown_table
from recbole_srt import figure_provenance
from recbole_srt.scaling.records import read_records
from transfer_table4_design import CORPORA, PRETRAINING, SWEEPS, VARIANTS, full_target_results, target_of

# The paper's Table 4 (Beauty): its fine-tuned model is progressive + EWC after pre-training on other categories.
PAPER = {"SRT-1K from scratch": (0.0360, 0.0611), "SRT-1K fine-tuned (progressive + EWC 100)": (0.0405, 0.0645)}


def latest(records):
    """The latest run of every label and seed, pre-training runs left out."""
    return list({(r["label"], r["seed"]): r for r in records if not r["label"].startswith(PRETRAINING)}.values())


def summary(records):
    """(label, seeds, NDCG@5 values, HIT@5 values) per label, in the order they first ran."""
    import numpy as np

    rows = []
    for label in dict.fromkeys(r["label"] for r in records):
        runs = [r for r in records if r["label"] == label]
        rows.append((label, len(runs), np.array([r["test_ndcg@5"] for r in runs]),
                     np.array([r["test_hit@5"] for r in runs])))
    return rows


def provenance(runs):
    """The machines the runs ran on (date left out) and the span of their dates: a table's footer."""
    machines = sorted({json.dumps({k: v for k, v in r["machine"].items() if k != "date"}) for r in runs})
    dates = sorted(r["machine"]["date"] for r in runs)
    return f"Machines: {'; '.join(machines)}; runs from {dates[0]} to {dates[-1]}"


def table(records, target="Beauty"):
    rows = []
    for label, seeds, ndcg, hit in summary(latest(records)):
        paper = PAPER.get(label) if target == "Beauty" else None
        spread = (lambda v: f"{v.mean():.4f}") if seeds == 1 else (lambda v: f"{v.mean():.4f} ± {v.std():.4f}")
        rows.append([label, seeds, spread(ndcg), spread(hit), f"{paper[0]:.4f} / {paper[1]:.4f}" if paper else "-"])
    text = markdown_table([f"{target}, sampled10000 test", "seeds", "NDCG@5", "HIT@5", "paper NDCG@5 / HIT@5"], rows)
    return f"{text}\n\n{provenance(latest(records))}\n"


def figure(records, path, sources, target="Beauty"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary(latest(records))
    # Wide enough for the longest label beside its bar; the rows top to bottom in the table's order, each with its mean.
    longest = max(len(label) for label, *_ in rows)
    fig, ax = plt.subplots(figsize=(4 + 0.065 * longest, 0.28 * len(rows) + 1.2))
    bars = ax.barh([label for label, *_ in rows], [ndcg.mean() for _, _, ndcg, _ in rows], color="tab:blue")
    ax.bar_label(bars, fmt="%.4f", fontsize=7, padding=2)
    ax.tick_params(axis="y", labelsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.12, y=0.005)
    ax.set_xlabel(f"test NDCG@5 ({target}, sampled10000)")
    fig.tight_layout()
    figure_provenance.save(fig, path, sources, dpi=110)


def sweep_of(records):
    """The sweep field of a results file's runs, or None for Table 4 itself."""
    return next((field for field in SWEEPS if any(field in r for r in records)), None)


def base_label(record):
    """A sweep run's label without its suffix (the fraction of users, the epoch budget)."""
    label = record["label"]
    return label[:label.rindex(", ")] if any(field in record for field in SWEEPS) else label


def sweep_runs(records, full_records):
    """The runs of a sweep's table: the sweep's and the full target's runs of the same rows."""
    swept = latest(records)
    labels = {base_label(r) for r in swept}
    return swept + [r for r in latest(full_records) if r["label"] in labels]


def ndcg_by(runs, row, value):
    """{row(run): {value(run): [(seed, test NDCG@5)]}}."""
    points = {}
    for r in runs:
        points.setdefault(row(r), {}).setdefault(value(r), []).append((r["seed"], r["test_ndcg@5"]))
    return points


def seed_means(scores):
    """{seed: mean test NDCG@5} of [(seed, test NDCG@5)]: a seed run under two pooled rows counts once, at its mean."""
    import numpy as np

    seeds = {}
    for seed, ndcg in scores:
        seeds.setdefault(seed, []).append(ndcg)
    return {seed: float(np.mean(values)) for seed, values in seeds.items()}


def ndcgs(scores):
    """One test NDCG@5 per seed of [(seed, test NDCG@5)], for a mean ± std over seeds."""
    import numpy as np

    return np.array(list(seed_means(scores).values()))


def ratio(finetuned, scratch):
    """Fine-tuned ÷ from scratch over the seeds both ran, as a cell: a seed draws the test candidates too, so a seed
    one row ran and the other did not would move the ratio by that seed's spread. Names the seeds when that leaves
    out some of either row's; "-" when they share none."""
    import numpy as np

    tuned, base = seed_means(finetuned), seed_means(scratch)
    common = sorted(tuned.keys() & base.keys())
    if not common:
        return "-"
    cell = f"{np.mean([tuned[s] for s in common]) / np.mean([base[s] for s in common]):.2f}x"
    if len(common) < max(len(tuned), len(base)):
        cell += f" (seed{'s' if len(common) > 1 else ''} {', '.join(map(str, common))})"
    return cell


def sweep_points(records, full_records, field):
    """{row label: {sweep value: [(seed, test NDCG@5)]}}, the full target's runs at their own value."""
    full_value = SWEEPS[field].full_value
    return ndcg_by(sweep_runs(records, full_records), base_label, lambda r: r[field] if field in r else full_value(r))


def row_name(label, field):
    """An epoch-budget table's rows name no number of epochs: its columns do."""
    return re.sub(r", \d+ epochs", "", label) if field == "target_epochs" else label


def variant_of(label):
    """The pre-training variant a row's label names ("... [variant]"), or None."""
    match = re.search(r"\[(\w+)\]$", label)
    return match and match.group(1)


# A row run with --learning-rate carries its peak rate in its label, and one run with --stopping-step its patience.
PEAK_LR = re.compile(r", peak lr [0-9.e+-]+$")
SCHEDULE = re.compile(r"(, peak lr [0-9.e+-]+)?(, patience \d+)?$")


def schedule_of(label):
    """The peak-rate and patience suffix of a row run with --learning-rate or --stopping-step, or "" for the
    budget's."""
    return SCHEDULE.search(label).group(0)


def scratch_of(label, labels):
    """The from-scratch row among `labels` that a fine-tuned row is against, at the same peak learning rate and
    patience: the one of its own variant, or else of a variant with the same model settings on the target; None if
    there is none."""
    def variant(row):
        return variant_of(SCHEDULE.sub("", row))

    own = variant(label)
    settings = VARIANTS.get(own, {}).get("target_settings", {})
    candidates = [other for other in labels if other.startswith("SRT-1K from scratch [")
                  and schedule_of(other) == schedule_of(label)
                  and VARIANTS.get(variant(other), {}).get("target_settings", {}) == settings]
    return next((other for other in candidates if variant(other) == own), candidates[0] if candidates else None)


PAIRED = "Each ÷ from scratch on this page is over the seeds both rows ran (named where that leaves some out)."


def seeds_cell(scores):
    """Mean ± std over seeds (how many seeds), or "-" for none."""
    v = ndcgs(scores)
    return (f"{v.mean():.4f}" + (f" ± {v.std():.4f}" if len(v) > 1 else "") + f" ({len(v)})") if len(v) else "-"


def sweep_table(records, full_records, field, target="Beauty"):
    """Each row's test NDCG@5 per value of the sweep; each fine-tuned row against from scratch."""
    points = sweep_points(records, full_records, field)
    values = sorted({v for by_value in points.values() for v in by_value})

    rows = [[row_name(label, field)] + [seeds_cell(points[label].get(v, [])) for v in values]
            for label in points]
    for label in points:
        scratch = scratch_of(label, points)
        if "fine-tuned" in label and scratch:
            rows.append([f"{row_name(label, field)} ÷ from scratch"] + [
                ratio(points[label][v], points[scratch][v]) if v in points[label] and v in points[scratch] else "-"
                for v in values])
    header = [f"{target}, sampled10000 test NDCG@5 (seeds)"] + [SWEEPS[field].column(v) for v in values]
    full = "100%" if field == "target_users" else "The column of the full target's own number of epochs"
    return (f"{markdown_table(header, rows)}\n\n{full} holds the full target's runs of the same rows (the results file "
            f"without `{SWEEPS[field].suffix}`). {PAIRED} {provenance(sweep_runs(records, full_records))}\n")


def sweep_figure(records, full_records, field, path, sources, target="Beauty"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    # Up to twenty rows: a colour each, from scratch dashed, so that no two rows look alike.
    for index, (label, by_value) in enumerate(sweep_points(records, full_records, field).items()):
        values = sorted(by_value)
        per_seed = [ndcgs(by_value[v]) for v in values]
        ax.errorbar(values, [v.mean() for v in per_seed], yerr=[v.std() for v in per_seed], marker="o", capsize=3,
                    color=plt.cm.tab20(index % 20), linestyle="--" if "from scratch" in label else "-",
                    label=row_name(label, field))
    if field == "target_users":
        ax.set_xscale("log")
    ax.set_xlabel(SWEEPS[field].axis.format(target=target))
    ax.set_ylabel("test NDCG@5 (sampled10000)")
    # Beside the axes: a sweep has up to a dozen rows, whose lines a legend inside would cover.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    figure_provenance.save(fig, path, sources, dpi=110)


# The corpus-size sweep: one pre-training on 1, 3 and 7 categories, each fine-tuned under the same budgets (on Toys,
# which the seven hold, 1 and 3). Their settings on the target are one, so any of their from-scratch rows is its
# from-scratch point.
CORPUS_SWEEP = ("history_match_one_category", "history_match_three_categories", "history_match")
CORPUS_SCRATCH = {f"SRT-1K from scratch [{variant}]" for variant in CORPUS_SWEEP}


def pretraining_runs(variant, records):
    """The variant's recorded pre-trainings, oldest first (a re-run appends one when a checkpoint is gone)."""
    return [r for r in records if r["label"].startswith(PRETRAINING) and variant_of(r["label"]) == variant]


def pretraining_run(variant, records):
    """The latest recorded pre-training of the variant, or None."""
    runs = pretraining_runs(variant, records)
    return runs[-1] if runs else None


def pretraining_positions(variant, records):
    """Training positions per epoch of the variant's pre-training, from its recorded runs (None if not recorded)."""
    run = pretraining_run(variant, records)
    return run["compute"]["seen_interactions"] // run["settings"]["epochs"] if run else None


def corpus_points(records, full_records):
    """{budget in epochs: [(corpus, training positions per pre-training epoch, [(seed, test NDCG@5)])]}, from scratch
    at 0 positions; the budgets at which more than from scratch ran."""
    points = {}
    for r in sweep_runs(records, full_records):
        budget = r.get("target_epochs", r["settings"]["epochs"])
        if base_label(r) in CORPUS_SCRATCH:
            points.setdefault(budget, {}).setdefault(("from scratch", 0), []).append((r["seed"], r["test_ndcg@5"]))
        for variant in CORPUS_SWEEP:
            if base_label(r).startswith("SRT-1K fine-tuned (full, ") and base_label(r).endswith(f"[{variant}]"):
                positions = pretraining_positions(variant, records + full_records)
                if positions is None:
                    raise SystemExit(f"{r['label']}: no pre-training run of [{variant}] in the results files, so "
                                     f"its corpus size is unknown")
                corpus = CORPORA[VARIANTS[variant]["corpus"]][0]
                points.setdefault(budget, {}).setdefault((corpus, positions), []).append((r["seed"], r["test_ndcg@5"]))
    return {budget: sorted(((c, p, v) for (c, p), v in by_corpus.items()), key=lambda point: point[1])
            for budget, by_corpus in sorted(points.items()) if len(by_corpus) > 2}


def corpus_table(points, target="Beauty"):
    """Fine-tuned test NDCG@5 by the pre-training corpus, per budget, against from scratch."""
    rows = []
    for budget, corpora in points.items():
        scratch = corpora[0][2]
        for corpus, positions, scores in corpora:
            rows.append([f"{budget} epochs", corpus, f"{positions:,}", seeds_cell(scores), ratio(scores, scratch)])
    return markdown_table([f"{target} budget", "pre-training corpus", "pre-training positions per epoch",
                           "test NDCG@5 (seeds)", "÷ from scratch"], rows)


def corpus_figure(points, path, sources, target="Beauty"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for budget, corpora in points.items():
        per_seed = [ndcgs(s) for *_, s in corpora]
        ax.errorbar([p for _, p, _ in corpora], [v.mean() for v in per_seed], yerr=[v.std() for v in per_seed],
                    marker="o", capsize=3, label=f"{budget} epochs on {target}")
        for (corpus, positions, _), v in zip(corpora, per_seed):
            ax.annotate(corpus, (positions, v.mean()), fontsize=7, textcoords="offset points", xytext=(4, -10))
    ax.set_xlabel("pre-training positions per epoch (0: from scratch; 2 pre-training epochs each)")
    ax.set_ylabel(f"fine-tuned test NDCG@5 on {target} (sampled10000)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figure_provenance.save(fig, path, sources, dpi=110)


# Model size and pre-training compute, per corpus: on Games 2 and 3 epochs of hidden 64 and 1 of hidden 128, on all
# seven categories 2 epochs of hidden 64 (the shipped model), 1, 2 and 4 of hidden 128, 1 and 2 of hidden 256; each
# fine-tuned and against from scratch at its own size.
SIZE_SWEEPS = {"Games": ("history_match_one_category", "history_match_one_category_3_epochs",
                         "history_match_one_category_hidden_128"),
               "7 categories": ("history_match", "history_match_hidden_128",
                                "history_match_hidden_128_2_epochs", "history_match_hidden_128_4_epochs",
                                "history_match_hidden_256",
                                "history_match_hidden_256_2_epochs")}


def size_rows(records, full_records):
    """[(budget, corpus, variant, its pre-training record, fine-tuned [(seed, test NDCG@5)], from scratch's at its
    size)] for the SIZE_SWEEPS variants that were fine-tuned, two or more sizes of one corpus at a budget."""
    runs = sweep_runs(records, full_records)
    values = {}
    for r in runs:
        values.setdefault((r.get("target_epochs", r["settings"]["epochs"]), base_label(r)), []).append(
            (r["seed"], r["test_ndcg@5"]))
    labels = {label for _, label in values}
    rows = []
    for budget in sorted({b for b, _ in values}):
        for corpus, variants in SIZE_SWEEPS.items():
            at_budget = []
            for variant in variants:
                finetuned = values.get((budget, f"SRT-1K fine-tuned (full, 20 epochs) [{variant}]"))
                if finetuned is None:
                    continue
                # The sweep's first record of it, else the full target's: its minutes were measured beside the
                # other sizes'; a later re-run (another seed's checkpoint gone) ran on whatever machine was free.
                runs = pretraining_runs(variant, records) or pretraining_runs(variant, full_records)
                if not runs:
                    raise SystemExit(f"[{variant}], {budget}-epoch budget: fine-tuned, but no pre-training run of it "
                                     f"in the results files")
                scratch = scratch_of(f"SRT-1K fine-tuned [{variant}]", labels)
                at_budget.append((budget, corpus, variant, runs[0], finetuned, values.get((budget, scratch), [])))
            sizes = {pretraining["settings"].get("hidden_size", 64) for _, _, _, pretraining, _, _ in at_budget}
            rows += at_budget if len(sizes) > 1 else []
    return rows


def size_table(rows, target="Beauty"):
    """Fine-tuned test NDCG@5 by the pre-trained model's corpus, size and pre-training compute, against from scratch
    at the same size."""
    table_rows = []
    for budget, corpus, variant, pretraining, finetuned, scratch in rows:
        settings = pretraining["settings"]
        table_rows.append([f"{budget} epochs", corpus, f"`{variant}`", str(settings.get("hidden_size", 64)),
                           f"{pretraining['compute']['non_embedding_parameters']:,}", str(settings["epochs"]),
                           f"{pretraining['compute']['train_flops'] / 1e12:.1f}", f"{pretraining['wall_s'] / 60:.1f}",
                           seeds_cell(finetuned), seeds_cell(scratch), ratio(finetuned, scratch)])
    return markdown_table([f"{target} budget", "pre-training corpus", "variant", "hidden size",
                           "non-embedding parameters", "pre-training epochs", "pre-training TFLOPs",
                           "pre-training minutes", "fine-tuned test NDCG@5 (seeds)", "from scratch, same size (seeds)",
                           "÷ from scratch"], table_rows)


def learning_rate_points(records):
    """{row label: {peak learning rate: [(seed, test NDCG@5)]}} for the rows run at other peak rates (--learning-rate),
    with their runs at the budget's own rate."""
    def row(run):
        return PEAK_LR.sub("", run["label"])

    runs = latest(records)
    swept = {row(r) for r in runs if PEAK_LR.search(r["label"])}
    return ndcg_by([r for r in runs if row(r) in swept], row, lambda r: r["settings"]["learning_rate"])


def learning_rate_table(points, target="Beauty"):
    """Each row's test NDCG@5 per peak learning rate; each fine-tuned row against from scratch at the same rate."""
    labels = list(points)
    pairs = [(label, scratch_of(label, labels)) for label in labels if "fine-tuned" in label]
    pairs = [(finetuned, scratch) for finetuned, scratch in pairs if scratch]
    rates = sorted({rate for by_rate in points.values() for rate in by_rate})
    rows = [[f"{rate:g}"] + [seeds_cell(points[label].get(rate, [])) for label in labels] +
            [ratio(points[f][rate], points[s][rate]) if rate in points[f] and rate in points[s] else "-"
             for f, s in pairs]
            for rate in rates]
    return markdown_table([f"{target}, peak learning rate"] + [f"{label} (seeds)" for label in labels] +
                          [f"{f} ÷ from scratch" for f, _ in pairs], rows)


def page_body(results_path):
    """The table of a results file: Table 4, or for a sweep's file each row per value of the sweep."""
    records = read_records(results_path)
    target = target_of(os.path.basename(results_path))
    field = sweep_of(records)
    if not field:
        points = learning_rate_points(records)
        lr_part = (f"\n### By peak learning rate\n\nThe rows run at other peak learning rates of the one-cycle "
                   f"schedule (`--learning-rate`), with their runs at the budget's own, each fine-tuned row against "
                   f"from scratch at the same rate. {PAIRED}\n\n"
                   f"{learning_rate_table(points, target)}\n") if points else ""
        return table(records, target) + lr_part
    full_records = read_records(full_target_results(results_path))
    body = sweep_table(records, full_records, field, target)
    points = corpus_points(records, full_records) if field == "target_epochs" else {}
    if points:
        corpora = {corpus for budget_points in points.values() for corpus, _, _ in budget_points}
        swept = [v for v in CORPUS_SWEEP if CORPORA[VARIANTS[v]["corpus"]][0] in corpora]
        counts = [str(len(CORPORA[VARIANTS[v]["corpus"]][1])) for v in swept]
        body += (f"\n### By pre-training corpus\n\nThe fine-tuned rows above by the corpus they were pre-trained on "
                 f"({', '.join(f'`{v}`' for v in swept)}: the same settings and 2 pre-training epochs on "
                 f"{', '.join(counts[:-1])} and {counts[-1]} categories).\n\n{corpus_table(points, target)}\n")
    sizes = size_rows(records, full_records) if field == "target_epochs" else []
    if sizes:
        body += ("\n### By model size and pre-training compute\n\nThe fine-tuned rows pre-trained at two or three "
                 "sizes on one corpus (on Games hidden 64 for 2 and 3 epochs, hidden 128 for 1, whose training FLOPs "
                 "lie between theirs; on the seven categories hidden 64 for 2 epochs and hidden 128 for 1, 1.7x their "
                 "FLOPs, and for 2 and 4; hidden 256 for 1, 3.0x hidden 128's, and for 2), each against from scratch "
                 "at its own size. Minutes: the pre-training's wall clock, evaluation included, on its run's machine "
                 "and threads (see its record).\n\n"
                 f"{size_table(sizes, target)}\n")
    return body


def draw_figures(results_path):
    """The figures of a results file, beside it: Table 4's bars, or a sweep's lines (and, for an epoch-budget sweep
    with the corpus-size variants, the fine-tuned rows by pre-training corpus)."""
    records = read_records(results_path)
    target = target_of(os.path.basename(results_path))
    stem = os.path.splitext(results_path)[0]
    field = sweep_of(records)
    if not field:
        figure(records, f"{stem}.png", [results_path], target)
        return
    full_results = full_target_results(results_path)
    full_records = read_records(full_results)
    sweep_figure(records, full_records, field, f"{stem}.png", [results_path, full_results], target)
    points = corpus_points(records, full_records) if field == "target_epochs" else {}
    if points:
        corpus_figure(points, f"{stem}_corpus.png", [results_path, full_results], target)
