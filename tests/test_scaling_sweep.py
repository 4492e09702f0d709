"""The scaling sweep on real data: grid, nested user samples, per-epoch records, resuming, fits, bad input."""

import json
import os
import re

import pytest
import yaml

from recbole_srt.scaling import records, report, sweep
from recbole_srt.scaling.__main__ import main as scaling_main

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.fixture(scope="module")
def beauty_sample(tmp_path_factory):
    """The committed 300-user Amazon Beauty sample, converted as a user would (titles, brands, a tokenizer)."""
    from dataset_scripts.convert import convert

    out = tmp_path_factory.mktemp("sweep_data")
    convert("sequences", [os.path.join(FIXTURES, "amazon-beauty-sample")], "beauty_fx", str(out), vocab_size=2000)
    return str(out / "beauty_fx" / "beauty_fx.yaml")


def write_sweep(folder, **spec_keys):
    spec = {"sample_users": [0.5, 1.0], "archs": ["L1-H2-D16", "L2-H2-D16"],
            "train_neg_count": [20], "epochs": 2,
            "settings": {"MAX_ITEM_LIST_LENGTH": 10, "train_batch_size": 128, "learning_rate": 0.005,
                         "eval_batch_size": 512, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO",
                                                                "mode": {"valid": "sampled200", "test": "sampled200"}}},
            **spec_keys}
    path = os.path.join(folder, "sweep.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(spec, f)
    return path


def test_sweep_runs_every_point_resumes_and_fits(beauty_sample, tmp_path):
    path = write_sweep(tmp_path, dataset_config=beauty_sample)
    results = str(tmp_path / "results.jsonl")
    finals = sweep.run(path, results, use_ray=False, log=lambda _: None)
    assert len(finals) == 4
    written = records.read_records(results)
    epochs = [r for r in written if not r.get("final")]
    assert len(epochs) == 8 and all(r["train_flops"] > 0 and r["valid_ndcg@5"] is not None for r in epochs)
    by_point = {}
    for r in epochs:
        by_point.setdefault(r["hash"], []).append(r)
    for rows in by_point.values():  # cumulative: FLOPs and seen interactions double from epoch 0 to 1
        assert rows[1]["train_flops"] == 2 * rows[0]["train_flops"]
        assert rows[1]["seen_interactions"] == 2 * rows[0]["seen_interactions"]
    half, full = sorted({r["training_interactions"] for r in epochs})
    assert half < full
    # A smaller sample's users are inside the larger one's (nested, one seed).
    sample_dir = os.path.join(os.path.dirname(os.path.dirname(beauty_sample)), "scaling-samples")
    sample_inter = next(os.path.join(root, f) for root, _, files in os.walk(sample_dir) for f in files
                        if f.endswith(".inter"))
    users = lambda p: {line.split("\t")[0] for line in open(p, encoding="utf-8").readlines()[1:]}  # noqa: E731
    assert users(sample_inter) < users(beauty_sample.replace(".yaml", ".inter"))
    # Resuming: nothing left to run; a torn last line (a kill inside a write) is ignored and cut before appending.
    assert sweep.run(path, results, use_ray=False, log=lambda _: None) == []
    with open(results, "a") as f:
        f.write('{"hash": "torn')
    assert len(records.read_records(results)) == len(written)
    records.append_record(results, {"hash": "x", "point": written[0]["point"], "attempt": "interrupted", "epoch": 0})
    assert len(records.read_records(results)) == len(written) + 1
    key, runs, interrupted = report.load_runs(results)
    assert len(runs) == 4 and interrupted == 1
    out = tmp_path / "report"
    assert scaling_main(["fit", results, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "sigmoid" not in text or "ceiling" in text
    assert {"figure4_ndcg_vs_flops.png", "figure5_envelope_scaling.png", "figure6_ndcg_vs_log_flops.png"} <= set(
        os.listdir(out))
    fits = json.loads((out / "fits.json").read_text())
    assert fits["runs"] == 4 and fits["interrupted"] == 1
    # Nine significant digits, so another machine's BLAS does not rewrite a committed fits.json in its last digits.
    numbers = [value for fit in fits["fits"].values() if fit for value in fit.values() if isinstance(value, float)]
    assert numbers and all(float(f"{value:.9g}") == value for value in numbers)


def test_records_of_another_sweep_are_never_mixed_silently(tmp_path):
    results = str(tmp_path / "r.jsonl")
    for epochs in (2, 3):
        point = {"model": "SRT", "dataset": "d", "sample_users": 1.0, "architecture": "L1-H2-D16",
                 "train_neg_count": 20, "epochs": epochs, "seed": 1, "sample_seed": 1, "settings": {}}
        records.append_record(results, {"hash": str(epochs), "attempt": str(epochs), "point": point, "final": True})
    with pytest.raises(ValueError, match="2 different sweeps"):
        report.load_runs(results)


def test_too_few_points_to_fit_is_a_clear_error(tmp_path, capsys):
    results = str(tmp_path / "r.jsonl")
    point = {"model": "SRT", "dataset": "d", "sample_users": 1.0, "architecture": "L1-H2-D16", "train_neg_count": 20,
             "epochs": 1, "seed": 1, "sample_seed": 1, "settings": {}}
    # Two runs of one epoch; the one with more compute scores lower: one point on the envelope.
    for run, (flops, ndcg) in enumerate(((1e9, 0.02), (2e9, 0.01))):
        epoch = {"train_flops": flops, "valid_ndcg@5": ndcg, "seen_interactions": 100, "non_embedding_parameters": 10,
                 "parameters": 20, "training_interactions": 100}
        records.append_record(results, {"hash": f"{run}e", "attempt": str(run), "point": point, "epoch": 0, **epoch})
        records.append_record(results, {"hash": str(run), "attempt": str(run), "point": point, "final": True})
    assert scaling_main(["fit", results, "--out", str(tmp_path / "fit")]) == 2
    assert re.search(r"r.jsonl, sweep .*: 2 epoch points of 2 runs leave 1 on the compute-efficient envelope; the "
                     r"power-law fits need at least 2", capsys.readouterr().err)


@pytest.mark.parametrize("change, message", [
    ({"archs": ["L2-X2-D16"]}, "not of the form"),
    ({"sample_users": [0.5, 1.5]}, r"outside \(0, 1\]"),
    ({"learning_rate": 0.1}, "unknown key"),
    ({"dataset_config": "missing.yaml"}, "not found"),
    ({"settings": {"hidden_size": 32}}, "clash with archs"),
])
def test_bad_sweeps_are_clear_errors_before_anything_runs(beauty_sample, tmp_path, change, message, capsys):
    path = write_sweep(tmp_path, **{"dataset_config": beauty_sample, **change})
    assert scaling_main(["run", path, "--results", str(tmp_path / "r.jsonl"), "--no-ray"]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "r.jsonl").exists()
