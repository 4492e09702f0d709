"""From a sweep's records to the paper's figures 4-7 (PNG) and a markdown report of every fit."""

import json
import os
from collections import defaultdict

import numpy as np

from recbole_srt import figure_provenance
from recbole_srt.scaling import laws
from recbole_srt.scaling.records import read_records
from recbole_srt.scaling.sweep import settings_hash

VARIED = ("sample_users", "architecture", "train_neg_count")


def sweep_key(point):
    """What every point of one sweep shares (model, dataset, epochs, seeds, settings)."""
    return settings_hash({k: v for k, v in point.items() if k not in VARIED})


def load_runs(results_path, sweep=None):
    """One entry per finished point: its epoch records (from the attempt that finished) and its final record.

    Records of several sweeps (different shared settings) are never mixed: an error lists them unless `sweep`
    picks one. Epoch records of interrupted attempts are left out and counted."""
    records = read_records(results_path)
    if not records:
        raise ValueError(f"{results_path}: no records")
    keys = defaultdict(int)
    for record in records:
        keys[sweep_key(record["point"])] += 1
    if sweep is None and len(keys) > 1:
        raise ValueError(f"{results_path} holds records of {len(keys)} different sweeps {dict(keys)}: choose one "
                         "with --sweep KEY")
    chosen = sweep or next(iter(keys))
    if chosen not in keys:
        raise ValueError(f"{results_path}: no sweep {chosen}; it holds {sorted(keys)}")
    records = [r for r in records if sweep_key(r["point"]) == chosen]
    finals = {r["attempt"]: r for r in records if r.get("final")}
    runs = []
    for attempt, final in finals.items():
        epochs = sorted((r for r in records if r["attempt"] == attempt and not r.get("final")),
                        key=lambda r: r["epoch"])
        runs.append({"final": final, "epochs": epochs})
    interrupted = len({r["attempt"] for r in records if r["attempt"] not in finals})
    return chosen, runs, interrupted


def analyse(runs, params_key="non_embedding_parameters"):
    """Every fit of the paper on the runs' epoch points."""
    points = [(e["train_flops"], e["valid_ndcg@5"], e["seen_interactions"], e[params_key], e["training_interactions"])
              for run in runs for e in run["epochs"] if e["train_flops"] and e["valid_ndcg@5"] is not None]
    if not points:
        raise ValueError(f"{len(runs)} finished runs but no validated epoch with counted FLOPs to fit")
    flops, ndcg, seen, params, interactions = (np.array(v, dtype=float) for v in zip(*points))
    on_envelope = laws.envelope(flops, ndcg)
    if len(on_envelope) < 2:
        raise ValueError(f"{len(points)} epoch points of {len(runs)} runs leave {len(on_envelope)} on the "
                         "compute-efficient envelope; the power-law fits need at least 2 (the sigmoid 5, the risk "
                         "decomposition 6 runs): run more points of the sweep")
    env = {name: values[on_envelope] for name, values in
           (("flops", flops), ("ndcg", ndcg), ("seen", seen), ("params", params))}
    best = [max(run["epochs"], key=lambda e: e["valid_ndcg@5"]) for run in runs]
    best_n = np.array([b[params_key] for b in best], dtype=float)
    best_t = np.array([b["seen_interactions"] for b in best], dtype=float)
    best_ndcg = np.array([b["valid_ndcg@5"] for b in best], dtype=float)
    best_flops = np.array([b["train_flops"] for b in best], dtype=float)
    fits = {
        "seen_vs_flops": laws.power_law(env["flops"], env["seen"]),
        "params_vs_flops": laws.power_law(env["flops"], env["params"]),
        "linear": laws.linear_in_log(env["flops"], env["ndcg"]),
        "sigmoid": laws.sigmoid_in_log(env["flops"], env["ndcg"]) if len(on_envelope) >= 5 else None,
        "risk": laws.risk_decomposition(best_n, best_t, best_ndcg, best_flops) if len(runs) >= 6 else None,
    }
    data = {"flops": flops, "ndcg": ndcg, "seen": seen, "params": params, "interactions": interactions,
            "envelope": env, "best": {"n": best_n, "t": best_t, "ndcg": best_ndcg}}
    return fits, data


def figures(runs, data, fits, out, params_key, params_label, results_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    paths = {}
    env = data["envelope"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    for ax, key, label in ((axes[0], "training_interactions", "training interactions"),
                           (axes[1], params_key, params_label)):
        values = [run["epochs"][0][key] for run in runs]
        norm = LogNorm(min(values), max(values)) if min(values) < max(values) else None
        cmap = plt.get_cmap("viridis")
        for run, value in zip(runs, values):
            x = [e["train_flops"] for e in run["epochs"]]
            y = [e["valid_ndcg@5"] for e in run["epochs"]]
            ax.plot(x, y, "-o", ms=2.5, lw=1, color=cmap(norm(value)) if norm else cmap(0.5))
        ax.plot(env["flops"], env["ndcg"], "-", color="tab:blue", lw=3, alpha=0.35, label="envelope")
        ax.set_xscale("log")
        ax.set_xlabel("training FLOPs")
        ax.set_title(f"colour: {label}")
        if norm:
            fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label)
    axes[0].set_ylabel("valid NDCG@5")
    axes[0].legend()
    paths["figure4"] = _save(fig, out, "figure4_ndcg_vs_flops.png", results_path)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, label, fit in ((axes[0], "seen", "seen interactions", fits["seen_vs_flops"]),
                                (axes[1], "params", params_label, fits["params_vs_flops"])):
        sc = ax.scatter(env["flops"], env[key], c=env["ndcg"], cmap="viridis")
        grid = np.geomspace(env["flops"].min(), env["flops"].max(), 50)
        ax.plot(grid, fit["coefficient"] * grid ** fit["slope"], "r:",
                label=f"{fit['coefficient']:.3g} x FLOPs^{fit['slope']:.3f} (R² {fit['r2']:.2f})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training FLOPs")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        fig.colorbar(sc, ax=ax, label="NDCG@5")
    paths["figure5"] = _save(fig, out, "figure5_envelope_scaling.png", results_path)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.log(env["flops"])
    grid = np.linspace(x.min() - 1, x.max() + 3, 100)
    ax.plot(x, env["ndcg"], "o", label="best NDCG@5 per FLOP budget")
    ax.plot(grid, fits["linear"]["slope"] * grid + fits["linear"]["intercept"], "--",
            label=f"linear (R² {fits['linear']['r2']:.2f})")
    if fits["sigmoid"]:
        s = fits["sigmoid"]
        ax.plot(grid, laws.sigmoid((s["a"], s["k"], s["x0"], s["c"]), grid), "-",
                label=f"sigmoid, ceiling {s['ceiling']:.4f} (R² {s['r2']:.2f})")
    ax.set_xlabel("log FLOPs (natural)")
    ax.set_ylabel("NDCG@5")
    ax.legend(fontsize=8)
    paths["figure6"] = _save(fig, out, "figure6_ndcg_vs_log_flops.png", results_path)

    if fits["risk"]:
        r = fits["risk"]
        best = data["best"]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        n_grid = np.geomspace(best["n"].min() / 2, best["n"].max() * 4, 60)
        cmap = plt.get_cmap("plasma")
        ts = np.unique(np.quantile(best["t"], [0, 0.5, 1]))
        for i, t in enumerate(ts):
            ax.plot(n_grid, laws.risk([r[k] for k in ("E", "A", "alpha", "B", "beta")], n_grid, t),
                    color=cmap(i / max(1, len(ts) - 1)), label=f"T = {t:.3g} seen interactions")
        ax.scatter(best["n"], best["ndcg"], c=np.log(best["t"]), cmap="plasma", edgecolor="k")
        ax.set_xscale("log")
        ax.set_xlabel(params_label + " (N)")
        ax.set_ylabel("best valid NDCG@5")
        ax.set_title(f"NDCG = {r['E']:.3f} - {r['A']:.3g}/N^{r['alpha']:.3f} - {r['B']:.3g}/T^{r['beta']:.3f}")
        ax.legend(fontsize=8)
        paths["figure7"] = _save(fig, out, "figure7_risk_decomposition.png", results_path)
    return paths


def _save(fig, out, name, results_path):
    path = os.path.join(out, name)
    fig.tight_layout()
    figure_provenance.save(fig, path, [results_path], dpi=110)
    return path


def _left_out(fit):
    left = fit and fit.get("largest_left_out")
    return f"{left['relative_error']:.1%}" if left else "n/a (too few points)"


def markdown(results_path, key, runs, interrupted, fits, data, paths, params_label):
    first = runs[0]["final"]
    lines = [f"# Scaling study: {os.path.basename(results_path)}", "",
             f"Sweep {key}: {len(runs)} finished runs ({interrupted} unfinished attempts, "
             "interrupted or still running, left out), "
             f"{len(data['flops'])} epoch points, {len(data['envelope']['flops'])} on the envelope. Model "
             f"{first['point']['model']} on {first['point']['dataset']}, {first['point']['epochs']} epochs; machine "
             f"{json.dumps(first['machine'])}. N is the number of {params_label}.", "",
             "| run | training interactions | N | best valid NDCG@5 | test NDCG@5 | test HIT@5 | FLOPs | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for run in sorted(runs, key=lambda r: (r["final"]["point"]["sample_users"], r["final"]["parameters"])):
        p, f = run["final"]["point"], run["final"]
        lines.append(f"| users {p['sample_users']:g}, {p['architecture']}, SRT-{p['train_neg_count']} | "
                     f"{f['training_interactions']:,} | {f['non_embedding_parameters']:,} | "
                     f"{f['best_valid_ndcg@5']:.4f} | {f['test_ndcg@5']:.4f} | {f['test_hit@5']:.4f} | "
                     f"{run['epochs'][-1]['train_flops']:.3g} | {f['wall_s']:.0f} |")
    s, r, lin = fits["sigmoid"], fits["risk"], fits["linear"]
    lines += ["", "## Fits (coefficient, R², relative error predicting the largest-compute point left out)", "",
              "| fit | here | paper | R² | left-out error |", "|---|---|---|---|---|",
              f"| seen interactions vs FLOPs (envelope, log-log) | slope {fits['seen_vs_flops']['slope']:.3f} | - | "
              f"{fits['seen_vs_flops']['r2']:.3f} | {_left_out(fits['seen_vs_flops'])} |",
              f"| N vs FLOPs (envelope, log-log) | slope {fits['params_vs_flops']['slope']:.3f} | - | "
              f"{fits['params_vs_flops']['r2']:.3f} | {_left_out(fits['params_vs_flops'])} |",
              f"| NDCG@5 = slope x log FLOPs + b | slope {lin['slope']:.4f}, b {lin['intercept']:.4f} | - | "
              f"{lin['r2']:.3f} | {_left_out(lin)} |"]
    if s:
        paper = laws.PAPER_SIGMOID
        lines.append(f"| sigmoid (eq. 3): a / (1 + e^(-k (log FLOPs - x0))) - c | a {s['a']:.3f}, k {s['k']:.3f}, "
                     f"x0 {s['x0']:.2f}, c {s['c']:.3f}; ceiling {s['ceiling']:.4f}; returns diminish from "
                     f"{s['diminishing_returns_flops']:.3g} FLOPs | a {paper['a']}, k {paper['k']}, x0 {paper['x0']}, "
                     f"c {paper['c']}; ceiling 0.149 | {s['r2']:.3f} | {_left_out(s)} |")
    if r:
        paper = laws.PAPER_RISK
        lines.append(f"| risk (eq. 4): E - A/N^alpha - B/T^beta | E {r['E']:.4f}, A {r['A']:.3g}, alpha "
                     f"{r['alpha']:.3f}, B {r['B']:.3g}, beta {r['beta']:.3f} | E {paper['E']}, A {paper['A']}, "
                     f"alpha {paper['alpha']}, B {paper['B']}, beta {paper['beta']} | {r['r2']:.3f} | {_left_out(r)} |")
    lines += ["", *[f"![{name}]({os.path.basename(path)})" for name, path in paths.items()], ""]
    return "\n".join(lines)


def _significant(value, digits=9):
    """Nine digits keep every count exact (under a billion) and a fit far beyond what a few dozen runs determine;
    the digits after them change with the BLAS, which made every redraw on another machine a diff of fits.json."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: _significant(item, digits) for key, item in value.items()}
    return value


def write_report(results_path, out, sweep=None, params_key="non_embedding_parameters"):
    os.makedirs(out, exist_ok=True)
    key, runs, interrupted = load_runs(results_path, sweep)
    if len(runs) < 2:
        raise ValueError(f"{results_path}: {len(runs)} finished run(s); fits need at least 2")
    params_label = "non-embedding parameters" if params_key == "non_embedding_parameters" else "parameters"
    try:
        fits, data = analyse(runs, params_key)
    except ValueError as error:
        raise ValueError(f"{results_path}, sweep {key}: {error}") from error
    paths = figures(runs, data, fits, out, params_key, params_label, results_path)
    text = markdown(results_path, key, runs, interrupted, fits, data, paths, params_label)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "fits.json"), "w") as f:
        json.dump({"sweep": key, "runs": len(runs), "interrupted": interrupted, "fits": _significant(fits)}, f,
                  indent=2)
    return os.path.join(out, "report.md"), fits
