"""Table 4's sweeps (the target's size, the epoch budget) put each row's runs side by side with the full target's
runs of the same rows, and each fine-tuned row against from scratch at every value."""

import argparse
import json
import os

import pytest

from conftest import REPO

MACHINE = {"cpu": "test", "cpu_count": 2, "date": "2026-12-01 12:00 UTC"}
SCRATCH = "SRT-1K from scratch [history_match]"
FINETUNED = "SRT-1K fine-tuned (full, 20 epochs) [history_match]"


@pytest.fixture
def table4(monkeypatch):
    """The runner (`benchmarks/transfer_table4.py`)."""
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import transfer_table4

    return transfer_table4


@pytest.fixture
def pages(monkeypatch):
    """Its tables and figures (`benchmarks/transfer_table4_pages.py`)."""
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import transfer_table4_pages

    return transfer_table4_pages


@pytest.fixture
def design(monkeypatch):
    """What it compares (`benchmarks/transfer_table4_design.py`)."""
    monkeypatch.syspath_prepend(os.path.join(REPO, "benchmarks"))
    import transfer_table4_design

    return transfer_table4_design


def record(label, seed, ndcg, epochs, **fields):
    return {"label": label, "seed": seed, "test_ndcg@5": ndcg, "settings": {"epochs": epochs},
            "machine": MACHINE, **fields}


def full_target_runs():
    return [record(SCRATCH, 1, 0.050, 20), record(SCRATCH, 2, 0.052, 20),
            record(FINETUNED, 1, 0.051, 20), record(FINETUNED, 2, 0.051, 20),
            record("SRT-1K zero-shot [history_match]", 1, 0.02, 0)]


def test_an_epoch_budget_table_has_a_column_per_budget_and_the_ratio_at_each(pages):
    budget = [record(f"{SCRATCH}, 5-epoch budget", 1, 0.030, 5, target_epochs=5),
              record(f"{FINETUNED}, 5-epoch budget", 1, 0.045, 5, target_epochs=5)]
    assert pages.sweep_of(budget) == "target_epochs"
    text = pages.sweep_table(budget, full_target_runs(), "target_epochs")
    lines = text.splitlines()
    assert lines[0] == "| Beauty, sampled10000 test NDCG@5 (seeds) | 5 epochs | 20 epochs |"
    assert "| SRT-1K from scratch [history_match] | 0.0300 (1) | 0.0510 ± 0.0010 (2) |" in lines
    # The row names no number of epochs (its columns do); the zero-shot row, not in the sweep, is left out.
    assert "| SRT-1K fine-tuned (full) [history_match] | 0.0450 (1) | 0.0510 ± 0.0000 (2) |" in lines
    assert "| SRT-1K fine-tuned (full) [history_match] ÷ from scratch | 1.50x | 1.00x |" in lines
    assert "zero-shot" not in text


def test_a_budget_tables_fine_tuned_row_at_another_learning_rate_is_against_from_scratch_at_that_rate(pages):
    low = ", peak lr 0.0005"
    budget = [record(f"{SCRATCH}, 50-epoch budget", 1, 0.060, 50, target_epochs=50),
              record(f"{FINETUNED}, 50-epoch budget", 1, 0.060, 50, target_epochs=50),
              record(f"{SCRATCH}{low}, 50-epoch budget", 1, 0.050, 50, target_epochs=50),
              record(f"{FINETUNED}{low}, 50-epoch budget", 1, 0.055, 50, target_epochs=50)]
    full = full_target_runs() + [record(f"{SCRATCH}{low}", 1, 0.040, 20), record(f"{FINETUNED}{low}", 1, 0.048, 20)]
    assert pages.scratch_of(f"{FINETUNED}{low}", [SCRATCH, f"{SCRATCH}{low}"]) == f"{SCRATCH}{low}"
    assert pages.scratch_of(FINETUNED, [f"{SCRATCH}{low}", SCRATCH]) == SCRATCH
    assert pages.scratch_of(f"{FINETUNED}, peak lr 0.004", [SCRATCH, f"{SCRATCH}{low}"]) is None
    lines = pages.sweep_table(budget, full, "target_epochs").splitlines()
    assert lines[0] == "| Beauty, sampled10000 test NDCG@5 (seeds) | 20 epochs | 50 epochs |"
    assert f"| SRT-1K fine-tuned (full) [history_match]{low} | 0.0480 (1) | 0.0550 (1) |" in lines
    assert f"| SRT-1K fine-tuned (full) [history_match]{low} ÷ from scratch | 1.20x | 1.10x |" in lines
    assert "| SRT-1K fine-tuned (full) [history_match] ÷ from scratch | 1.00x | 1.00x |" in lines


def test_a_data_size_table_keeps_its_columns_by_fraction(pages):
    sample = [record(f"{SCRATCH}, 10% of users", 1, 0.025, 20, target_users=0.1),
              record(f"{FINETUNED}, 10% of users", 1, 0.030, 20, target_users=0.1)]
    text = pages.sweep_table(sample, full_target_runs(), pages.sweep_of(sample))
    assert text.splitlines()[0] == "| Beauty, sampled10000 test NDCG@5 (seeds) | 10% of users | 100% of users |"
    assert f"| {FINETUNED} ÷ from scratch | 1.20x | 1.00x |" in text


def test_a_fine_tuned_row_is_against_from_scratch_over_the_seeds_both_ran(pages):
    # Seeds 3 and 4 of from scratch drew other test candidates and scored higher: the fine-tuned row, which ran
    # seeds 1 and 2 only, is against from scratch's seeds 1 and 2 (0.033 / 0.030), not its four (0.033 / 0.031).
    sample = [record(f"{SCRATCH}, 30% of users", seed, ndcg, 20, target_users=0.3)
              for seed, ndcg in ((1, 0.029), (2, 0.031), (3, 0.032), (4, 0.032))]
    sample += [record(f"{FINETUNED}, 30% of users", seed, ndcg, 20, target_users=0.3)
               for seed, ndcg in ((1, 0.032), (2, 0.034))]
    text = pages.sweep_table(sample, full_target_runs(), "target_users")
    assert f"| {SCRATCH} | 0.0310 ± 0.0012 (4) | 0.0510 ± 0.0010 (2) |" in text
    assert f"| {FINETUNED} ÷ from scratch | 1.10x (seeds 1, 2) | 1.00x |" in text
    assert pages.ratio([(1, 0.032), (2, 0.034)], [(3, 0.030)]) == "-"
    # A seed run twice (two from-scratch rows pooled) counts once, at its mean.
    assert pages.ratio([(1, 0.033)], [(1, 0.029), (1, 0.031)]) == "1.10x"
    assert pages.seeds_cell([(1, 0.029), (1, 0.031), (2, 0.034)]) == "0.0320 ± 0.0020 (2)"


def test_a_sweeps_results_file_finds_the_full_targets(design):
    assert design.full_target_results("r/transfer_table4_toys_budget_cpu.jsonl") == "r/transfer_table4_toys_cpu.jsonl"
    assert design.full_target_results("r/transfer_table4_data_size_cpu.jsonl") == "r/transfer_table4_cpu.jsonl"


def pretraining(variant, corpus, positions, epochs=2):
    return {"label": f"SRT-1K pre-trained ({corpus}) [{variant}]", "seed": 1, "test_ndcg@5": 0.07,
            "settings": {"epochs": epochs}, "compute": {"seen_interactions": positions * epochs}, "machine": MACHINE}


def test_the_budget_sweep_puts_fine_tuned_runs_by_their_pre_training_corpus(pages):
    one = "SRT-1K fine-tuned (full, 20 epochs) [history_match_one_category]"
    budget = [record(f"{SCRATCH}, 5-epoch budget", 1, 0.040, 5, target_epochs=5),
              record(f"{FINETUNED}, 5-epoch budget", 1, 0.050, 5, target_epochs=5),
              record(f"{one}, 5-epoch budget", 1, 0.042, 5, target_epochs=5),
              record(f"{one}, 5-epoch budget", 2, 0.044, 5, target_epochs=5),
              pretraining("history_match_one_category", "Games", 300_000)]
    full = full_target_runs() + [pretraining("history_match", "7 categories", 900_000)]
    points = pages.corpus_points(budget, full)
    # At 20 epochs only one corpus ran: no corpus comparison there.
    assert list(points) == [5]
    assert points[5] == [("from scratch", 0, [(1, 0.040)]), ("Games", 300_000, [(1, 0.042), (2, 0.044)]),
                         ("7 categories", 900_000, [(1, 0.050)])]
    lines = pages.corpus_table(points).splitlines()
    # Against from scratch over the one seed both ran: 0.042 / 0.040.
    assert "| 5 epochs | Games | 300,000 | 0.0430 ± 0.0010 (2) | 1.05x (seed 1) |" in lines
    assert "| 5 epochs | 7 categories | 900,000 | 0.0500 (1) | 1.25x |" in lines


def test_the_corpus_sweep_variants_share_their_target_settings_so_any_from_scratch_row_is_theirs(pages, design):
    # The corpus-size table pools their from-scratch rows (CORPUS_SCRATCH): that holds only while they train alike.
    settings = [design.VARIANTS[variant]["target_settings"] for variant in pages.CORPUS_SWEEP]
    assert all(s == settings[0] for s in settings)


def test_on_toys_the_corpus_sweep_is_against_its_own_from_scratch_row_and_names_only_its_corpora(pages, tmp_path):
    scratch = "SRT-1K from scratch [history_match_one_category]"
    one = "SRT-1K fine-tuned (full, 20 epochs) [history_match_one_category]"
    three = "SRT-1K fine-tuned (full, 20 epochs) [history_match_three_categories]"
    budget = [record(f"{scratch}, 5-epoch budget", 1, 0.040, 5, target_epochs=5),
              record(f"{one}, 5-epoch budget", 1, 0.044, 5, target_epochs=5),
              record(f"{three}, 5-epoch budget", 1, 0.046, 5, target_epochs=5),
              pretraining("history_match_one_category", "Games", 300_000),
              pretraining("history_match_three_categories", "3 categories", 600_000)]
    points = pages.corpus_points(budget, [])
    assert points[5][0] == ("from scratch", 0, [(1, 0.040)])
    for name, runs in (("transfer_table4_toys_budget_cpu.jsonl", budget), ("transfer_table4_toys_cpu.jsonl", [])):
        with open(tmp_path / name, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in runs)
    page = pages.page_body(str(tmp_path / "transfer_table4_toys_budget_cpu.jsonl"))
    assert ("(`history_match_one_category`, `history_match_three_categories`: the same settings and 2 pre-training "
            "epochs on 1 and 3 categories)") in page
    assert "| 5 epochs | 3 categories | 600,000 | 0.0460 (1) | 1.15x |" in page


def test_a_fine_tuned_run_whose_pre_training_is_not_recorded_is_an_error(pages):
    budget = [record(f"{SCRATCH}, 5-epoch budget", 1, 0.040, 5, target_epochs=5),
              record("SRT-1K fine-tuned (full, 20 epochs) [history_match_three_categories], 5-epoch budget", 1,
                     0.045, 5, target_epochs=5)]
    with pytest.raises(SystemExit, match=r"5-epoch budget: no pre-training run of \[history_match_three_categories\]"):
        pages.corpus_points(budget, full_target_runs())


def test_a_fine_tuned_row_is_against_from_scratch_at_its_own_model_size(pages):
    hm, one, big = "history_match", "history_match_one_category", "history_match_one_category_hidden_128"
    labels = [f"SRT-1K from scratch [{hm}]", f"SRT-1K from scratch [{big}]", "SRT-1K from scratch"]
    assert pages.scratch_of(f"SRT-1K fine-tuned (full, 20 epochs) [{big}]", labels) == labels[1]
    # No from-scratch row of its own: the one with the same settings on the target (history match, hidden 64).
    assert pages.scratch_of(f"SRT-1K fine-tuned (full, 20 epochs) [{one}]", labels) == labels[0]
    assert pages.scratch_of("SRT-1K fine-tuned (full) [seven_categories]", labels) is None


def test_the_budget_sweep_puts_the_games_pre_trainings_by_model_size(pages):
    three, big = "history_match_one_category_3_epochs", "history_match_one_category_hidden_128"

    def pre_training(variant, hidden, epochs, tflops, minutes):
        return {**pretraining(variant, "Games", 300_000, epochs),
                "settings": {"epochs": epochs, **({"hidden_size": hidden} if hidden != 64 else {})},
                "compute": {"seen_interactions": 300_000 * epochs, "train_flops": tflops * 1e12,
                            "non_embedding_parameters": 108_540 if hidden == 64 else 420_000},
                "wall_s": minutes * 60}

    budget = [record(f"{SCRATCH}, 5-epoch budget", 1, 0.040, 5, target_epochs=5),
              record(f"SRT-1K from scratch [{big}], 5-epoch budget", 1, 0.045, 5, target_epochs=5),
              record(f"SRT-1K fine-tuned (full, 20 epochs) [{three}], 5-epoch budget", 1, 0.044, 5, target_epochs=5),
              record(f"SRT-1K fine-tuned (full, 20 epochs) [{big}], 5-epoch budget", 1, 0.054, 5, target_epochs=5),
              pre_training(three, 64, 3, 14.1, 11.0), pre_training(big, 128, 1, 14.5, 10.0)]
    rows = pages.size_rows(budget, full_target_runs())
    assert [(b, c, v, f, s) for b, c, v, _, f, s in rows] == [
        (5, "Games", three, [(1, 0.044)], [(1, 0.040)]), (5, "Games", big, [(1, 0.054)], [(1, 0.045)])]
    lines = pages.size_table(rows).splitlines()
    assert (f"| 5 epochs | Games | `{three}` | 64 | 108,540 | 3 | 14.1 | 11.0 | 0.0440 (1) | 0.0400 (1) | 1.10x |"
            in lines)
    assert (f"| 5 epochs | Games | `{big}` | 128 | 420,000 | 1 | 14.5 | 10.0 | 0.0540 (1) | 0.0450 (1) | 1.20x |"
            in lines)
    # One size alone at a budget is no comparison.
    assert pages.size_rows(budget[:3] + budget[4:5], full_target_runs()) == []
    # A later pre-training of the same variant in the full target's file (a re-run on another machine) does not
    # replace the minutes measured beside the other sizes.
    rerun = pages.size_rows(budget, full_target_runs() + [pre_training(three, 64, 3, 14.1, 30.0)])
    assert [pretraining["wall_s"] for _, _, _, pretraining, _, _ in rerun] == [11.0 * 60, 10.0 * 60]
    # Nor does one appended to the sweep's own file (another seed's fine-tuning found the checkpoint gone).
    rerun = pages.size_rows(budget + [pre_training(big, 128, 1, 14.5, 25.0)], full_target_runs())
    assert [pretraining["wall_s"] for _, _, _, pretraining, _, _ in rerun] == [11.0 * 60, 10.0 * 60]


def test_the_seven_category_pre_trainings_are_compared_by_size_within_their_corpus(pages):
    seven, one = "history_match_hidden_128", "history_match_one_category"

    def pre_training(variant, corpus, hidden, epochs):
        return {**pretraining(variant, corpus, 900_000, epochs),
                "settings": {"epochs": epochs, **({"hidden_size": hidden} if hidden != 64 else {})},
                "compute": {"seen_interactions": 900_000 * epochs, "train_flops": 1e14,
                            "non_embedding_parameters": 108_540 if hidden == 64 else 420_000},
                "wall_s": 3600}

    big_scratch = "SRT-1K from scratch [history_match_one_category_hidden_128]"
    tuned = {variant: f"SRT-1K fine-tuned (full, 20 epochs) [{variant}]" for variant in (one, seven)}
    full = full_target_runs() + [record(big_scratch, 1, 0.060, 20),
                                 pre_training("history_match", "7 categories", 64, 2),
                                 record(tuned[one], 1, 0.052, 20), pre_training(one, "Games", 64, 2)]
    budget = [record(f"{label}, 5-epoch budget", 1, 0.040, 5, target_epochs=5)
              for label in (SCRATCH, FINETUNED, big_scratch, tuned[one])]
    # Hidden 64 on two corpora is no size comparison.
    assert pages.size_rows(budget, full) == []
    full += [record(tuned[seven], 1, 0.063, 20), pre_training(seven, "7 categories", 128, 1)]
    budget += [record(f"{tuned[seven]}, 5-epoch budget", 1, 0.050, 5, target_epochs=5)]
    rows = pages.size_rows(budget, full)
    assert [(b, c, v, f, s) for b, c, v, _, f, s in rows] == [
        (5, "7 categories", "history_match", [(1, 0.040)], [(1, 0.040)]),
        (5, "7 categories", seven, [(1, 0.050)], [(1, 0.040)]),
        (20, "7 categories", "history_match", [(1, 0.051), (2, 0.051)], [(1, 0.050), (2, 0.052)]),
        (20, "7 categories", seven, [(1, 0.063)], [(1, 0.060)])]


def test_the_ewc_strength_flag_keeps_the_runs_recorded_before_it(table4):
    assert table4.settings_hash({"ewc_lambda": table4.strength("100")}) == table4.settings_hash({"ewc_lambda": 100})
    assert table4.strength("1e4") == 10000 and table4.strength("0.5") == 0.5


def test_the_learning_rate_flag_sets_every_target_row_and_names_it(table4, monkeypatch):
    runs = []
    monkeypatch.setattr(table4, "convert", lambda raw_dir, data_dir, name, folders, text=(): f"{data_dir}/{name}.yaml")
    monkeypatch.setattr(table4, "run_one", lambda label, model, yaml_path, settings, results, seed, **kw:
                        runs.append((label, settings["learning_rate"])))
    args = argparse.Namespace(budget="cpu", target="beauty", variant="history_match", pretrained="release.pth",
                              rows=["scratch_variant", "finetune_full_scratch_epochs"], seeds=[1], pretrain_seed=None,
                              target_users=None, target_epochs=None, ewc_lambda=100, learning_rate=0.001,
                              stopping_step=None, raw_dir="raw", data_dir="data", results="results.jsonl")
    table4.run(args)
    assert runs == [(f"{SCRATCH}, peak lr 0.001", 0.001), (f"{FINETUNED}, peak lr 0.001", 0.001)]
    with pytest.raises(SystemExit, match="zero_shot"):
        table4.run(argparse.Namespace(**{**vars(args), "rows": ["zero_shot", "finetune_full_scratch_epochs"]}))


def test_the_stopping_step_flag_sets_every_target_row_and_names_it(table4, monkeypatch):
    runs = []
    monkeypatch.setattr(table4, "convert", lambda raw_dir, data_dir, name, folders, text=(): f"{data_dir}/{name}.yaml")
    monkeypatch.setattr(table4, "run_one", lambda label, model, yaml_path, settings, results, seed, **kw:
                        runs.append((label, settings["stopping_step"], settings["epochs"])))
    args = argparse.Namespace(budget="cpu", target="beauty", variant="history_match", pretrained="release.pth",
                              rows=["scratch_variant", "finetune_full_scratch_epochs"], seeds=[1], pretrain_seed=None,
                              target_users=None, target_epochs=50, ewc_lambda=100, learning_rate=None,
                              stopping_step=50, raw_dir="raw", data_dir="data", results="results.jsonl")
    table4.run(args)
    assert runs == [(f"{SCRATCH}, patience 50, 50-epoch budget", 50, 50),
                    (f"{FINETUNED}, patience 50, 50-epoch budget", 50, 50)]
    with pytest.raises(SystemExit, match="zero_shot"):
        table4.run(argparse.Namespace(**{**vars(args), "target_epochs": None,
                                         "rows": ["zero_shot", "finetune_full_scratch_epochs"]}))


def test_a_budget_tables_fine_tuned_row_with_another_patience_is_against_from_scratch_with_that_patience(pages):
    long = ", patience 50"
    budget = [record(f"{SCRATCH}, 50-epoch budget", 1, 0.059, 50, target_epochs=50),
              record(f"{FINETUNED}, 50-epoch budget", 1, 0.057, 50, target_epochs=50),
              record(f"{SCRATCH}{long}, 50-epoch budget", 1, 0.060, 50, target_epochs=50),
              record(f"{FINETUNED}{long}, 50-epoch budget", 1, 0.066, 50, target_epochs=50)]
    assert pages.scratch_of(f"{FINETUNED}{long}", [SCRATCH, f"{SCRATCH}{long}"]) == f"{SCRATCH}{long}"
    assert pages.scratch_of(FINETUNED, [f"{SCRATCH}{long}", SCRATCH]) == SCRATCH
    low = f", peak lr 0.0005{long}"
    assert pages.scratch_of(f"{FINETUNED}{low}", [SCRATCH, f"{SCRATCH}{long}", f"{SCRATCH}{low}"]) == f"{SCRATCH}{low}"
    lines = pages.sweep_table(budget, full_target_runs(), "target_epochs").splitlines()
    assert f"| SRT-1K fine-tuned (full) [history_match]{long} ÷ from scratch | - | 1.10x |" in lines
    assert "| SRT-1K fine-tuned (full) [history_match] ÷ from scratch | 1.00x | 0.97x |" in lines


def test_the_table4_page_puts_the_rows_run_at_other_learning_rates_side_by_side(pages, tmp_path):
    def at(label, seed, ndcg, lr):
        return {**record(label, seed, ndcg, 20), "settings": {"epochs": 20, "learning_rate": lr}, "test_hit@5": 0.1}

    def page(runs):
        path = tmp_path / "transfer_table4_cpu.jsonl"
        path.write_text("".join(json.dumps({"hash": str(i), **r}) + "\n" for i, r in enumerate(runs)))
        return pages.page_body(str(path))

    at_budget_rate = [at(SCRATCH, 1, 0.058, 0.002), at(FINETUNED, 1, 0.058, 0.002),
                      at("SRT-1K zero-shot [history_match]", 1, 0.02, 0.002)]
    assert "By peak learning rate" not in page(at_budget_rate)
    body = page(at_budget_rate + [at(f"{SCRATCH}, peak lr 0.0005", 1, 0.045, 0.0005),
                                  at(f"{SCRATCH}, peak lr 0.0005", 2, 0.047, 0.0005),
                                  at(f"{FINETUNED}, peak lr 0.0005", 1, 0.0506, 0.0005),
                                  at(f"{FINETUNED}, peak lr 0.0005", 2, 0.0506, 0.0005)])
    part = body[body.index("### By peak learning rate"):]
    header = f"| Beauty, peak learning rate | {SCRATCH} (seeds) | {FINETUNED} (seeds) | {FINETUNED} ÷ from scratch |"
    assert header in part
    assert "| 0.0005 | 0.0460 ± 0.0010 (2) | 0.0506 ± 0.0000 (2) | 1.10x |" in part
    assert "| 0.002 | 0.0580 (1) | 0.0580 (1) | 1.00x |" in part
    assert "zero-shot" not in part  # run at the budget's rate only


def test_the_figures_are_drawn_beside_their_results_file_a_sweeps_with_the_full_targets_runs(pages, tmp_path,
                                                                                                 monkeypatch):
    def write(name, runs):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"hash": str(i), "test_hit@5": 0.1, **r}) + "\n"
                                for i, r in enumerate(runs)))
        return str(path)

    full = write("transfer_table4_cpu.jsonl", full_target_runs())
    budget = write("transfer_table4_budget_cpu.jsonl",
                   [record(f"{SCRATCH}, 5-epoch budget", 1, 0.03, 5, target_epochs=5)])
    pages.draw_figures(full)
    assert [p.name for p in tmp_path.glob("*.png")] == ["transfer_table4_cpu.png"]
    drawn = []
    monkeypatch.setattr(pages, "sweep_figure", lambda records, full_records, field, path, sources, target:
                        drawn.append((len(records), len(full_records), field, os.path.basename(path),
                                      [os.path.basename(s) for s in sources], target)))
    monkeypatch.setattr(pages, "corpus_figure", lambda *args: drawn.append("by corpus"))
    pages.draw_figures(budget)
    # No corpus-size variant ran, so no second figure by pre-training corpus.
    assert drawn == [(1, 5, "target_epochs", "transfer_table4_budget_cpu.png",
                      ["transfer_table4_budget_cpu.jsonl", "transfer_table4_cpu.jsonl"], "Beauty")]


def test_the_pre_training_tokenizer_control_converts_the_corpus_but_does_not_pre_train(table4, monkeypatch):
    converted, runs = [], []

    def convert(raw_dir, data_dir, name, folders, text=()):
        converted.append((name, tuple(text)))
        return f"{data_dir}/{name}.yaml"

    monkeypatch.setattr(table4, "convert", convert)
    monkeypatch.setattr(table4, "tokenizer_of", lambda dataset_yaml: dataset_yaml.replace(".yaml", ".spm.model"))
    monkeypatch.setattr(table4, "run_one", lambda label, model, yaml_path, settings, results, seed, **kw:
                        runs.append((label, yaml_path, settings)))
    args = argparse.Namespace(budget="cpu", target="toys", variant="history_match_games_target_text", pretrained=None,
                              rows=["scratch_variant_pretraining_tokenizer"], seeds=[1], pretrain_seed=None,
                              target_users=None, target_epochs=None, ewc_lambda=100, learning_rate=None,
                              stopping_step=None, raw_dir="raw", data_dir="data", results="results.jsonl")
    table4.run(args)
    # The corpus with the target's item text in its tokenizer, then the target itself.
    assert converted == [("pretrain_games_toys_text", ("amazon-toys-2014",)), ("Amazon_Toys", ())]
    [(label, dataset, settings)] = runs
    assert label == "SRT-1K from scratch (pre-training's tokenizer) [history_match_games_target_text]"
    assert dataset == "data/Amazon_Toys.yaml"
    assert settings["tokenizer_model"] == "data/pretrain_games_toys_text.spm.model"
    assert settings["lexical_match_dim"] == 256 and settings["repeat_match"] is True and settings["epochs"] == 20
    assert "pretrained_model" not in settings


def test_the_history_match_rows_take_that_part_of_the_checkpoint_or_all_but_it(table4, pages, monkeypatch):
    runs = []
    monkeypatch.setattr(table4, "convert", lambda raw_dir, data_dir, name, folders, text=(): f"{data_dir}/{name}.yaml")
    monkeypatch.setattr(table4, "run_one", lambda label, model, yaml_path, settings, results, seed, **kw:
                        runs.append((label, settings)))
    args = argparse.Namespace(budget="cpu", target="beauty", variant="history_match", pretrained="release.pth",
                              rows=["finetune_history_match_weights_only"], seeds=[1], pretrain_seed=None,
                              target_users=None, target_epochs=None, ewc_lambda=100, learning_rate=0.00025,
                              stopping_step=None, raw_dir="raw", data_dir="data", results="results.jsonl")
    table4.run(args)
    [(label, settings)] = runs
    assert label == ("SRT-1K fine-tuned (full, 20 epochs, only the history-match weights pre-trained) [history_match], "
                     "peak lr 0.00025")
    assert settings["pretrained_model"] == "release.pth" and settings["learning_rate"] == 0.00025
    assert settings["pretrained_parameters"] == ["lexical_match", "repeat_match"]
    assert pages.scratch_of(label, [label, f"{SCRATCH}, peak lr 0.00025", SCRATCH]) == f"{SCRATCH}, peak lr 0.00025"
    assert [r["label"] for r in pages.latest([record(label, 1, 0.045, 20)])] == [label]  # a run on the target
    runs.clear()
    table4.run(argparse.Namespace(**{**vars(args), "rows": ["finetune_without_history_match_weights"]}))
    [(label, settings)] = runs
    assert "all but the history-match weights pre-trained" in label
    assert settings["pretrained_parameters"] == ["item_encoder", "position_embedding", "trm_encoder", "LayerNorm"]
    with pytest.raises(SystemExit, match="without history match"):
        table4.run(argparse.Namespace(**{**vars(args), "variant": "seven_categories"}))


def test_a_sweep_starts_from_the_full_targets_pre_training_instead_of_running_it_again(table4, monkeypatch, tmp_path):
    trained = []

    def run_recbole(model, config_file_list, config_dict):
        trained.append((config_file_list[0], config_dict["epochs"]))
        checkpoint = tmp_path / f"run{len(trained)}.pth"
        checkpoint.write_bytes(b"weights")
        return {"test_result": {"ndcg@5": 0.05, "hit@5": 0.08}, "best_valid_result": {"ndcg@5": 0.06},
                "saved_model_file": str(checkpoint), "compute": {}}

    monkeypatch.setattr("recbole_srt.run_recbole", run_recbole)
    monkeypatch.setattr(table4, "convert", lambda raw_dir, data_dir, name, folders, text=(): f"{data_dir}/{name}.yaml")
    monkeypatch.setattr(table4, "tokenizer_of", lambda dataset_yaml: dataset_yaml.replace(".yaml", ".spm.model"))
    args = argparse.Namespace(budget="cpu", target="toys", variant="history_match_one_category", pretrained=None,
                              rows=["finetune_full_scratch_epochs"], seeds=[1], pretrain_seed=None,
                              target_users=None, target_epochs=None, ewc_lambda=100, learning_rate=None,
                              stopping_step=None, raw_dir="raw", data_dir="data",
                              results=str(tmp_path / "transfer_table4_toys_cpu.jsonl"))
    table4.run(args)
    assert [dataset for dataset, _ in trained] == ["data/pretrain_games_toys_text.yaml", "data/Amazon_Toys.yaml"]
    budget = str(tmp_path / "transfer_table4_toys_budget_cpu.jsonl")
    table4.run(argparse.Namespace(**{**vars(args), "target_epochs": 50, "results": budget}))
    assert trained[2:] == [("data/Amazon_Toys.yaml", 50)]  # the fine-tuning only, from the recorded pre-training
    [finetuned] = table4.read_records(budget)
    assert finetuned["settings"]["pretrained_model"] == str(tmp_path / "run1.pth")
    (tmp_path / "run1.pth").unlink()  # a fresh checkout: the record stays, its checkpoint is gone
    table4.run(argparse.Namespace(**{**vars(args), "target_epochs": 5, "results": budget}))
    assert [dataset for dataset, _ in trained[3:]] == ["data/pretrain_games_toys_text.yaml", "data/Amazon_Toys.yaml"]
