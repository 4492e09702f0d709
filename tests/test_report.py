"""The documentation's results pages are generated from the committed results and must match them."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def report(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "benchmarks.report", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_generated_pages_match_the_committed_results():
    done = report("--check")
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_page_edited_by_hand_is_reported(tmp_path):
    import shutil

    for path in ("benchmarks", "docs"):
        shutil.copytree(os.path.join(REPO, path), tmp_path / path)
    shutil.copy(os.path.join(REPO, "README.md"), tmp_path)
    page = tmp_path / "docs" / "benchmarks" / "quality.md"
    page.write_text(page.read_text().replace("Amazon_Office", "Amazon_Offices", 1))
    done = report("--check", cwd=tmp_path)
    assert done.returncode == 1 and "quality.md" in done.stderr


def drawn(path, sources):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recbole_srt import figure_provenance

    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    figure_provenance.save(fig, str(path), [str(s) for s in sources], dpi=30)


def test_a_figure_knows_whether_it_shows_its_results_as_they_are(tmp_path):
    from recbole_srt.figure_provenance import lag

    (tmp_path / "runs").mkdir()
    results, other = tmp_path / "runs" / "a.jsonl", tmp_path / "runs" / "b.jsonl"
    results.write_text('{"ndcg@5": 0.04}\n')
    other.write_text('{"ndcg@5": 0.03}\n')
    figure = tmp_path / "a.png"
    drawn(figure, [results, other])
    assert lag(str(figure)) is None
    other.write_text('{"ndcg@5": 0.03}\n{"ndcg@5": 0.05}\n')
    assert lag(str(figure)) == "drawn from an earlier runs/a.jsonl, runs/b.jsonl"
    drawn(figure, [results, other])
    assert lag(str(figure)) is None
    results.unlink()
    assert lag(str(figure)) == "drawn from runs/a.jsonl, which is gone"


def test_a_figure_drawn_without_the_stamp_is_reported(tmp_path):
    import shutil

    from PIL import Image

    for path in ("benchmarks", "docs"):
        shutil.copytree(os.path.join(REPO, path), tmp_path / path)
    shutil.copy(os.path.join(REPO, "README.md"), tmp_path)
    figure = tmp_path / "benchmarks" / "results" / "transfer_table4_toys_cpu.png"
    Image.open(figure).save(figure)  # the same pixels, the text chunks dropped
    done = report("--check", cwd=tmp_path)
    assert done.returncode == 1
    assert "benchmarks/results/transfer_table4_toys_cpu.png (no stamp of the results it was drawn from)" in done.stderr


@pytest.mark.slow
def test_only_the_figures_of_changed_results_are_drawn_again(tmp_path):
    """Drawn again on another machine, a figure's fit can move in its sixth digit: results that did not change keep
    their figures and derived files as they are; a changed results file gets its figures drawn again."""
    import json
    import shutil

    for path in ("benchmarks", "docs"):
        shutil.copytree(os.path.join(REPO, path), tmp_path / path)
    shutil.copy(os.path.join(REPO, "README.md"), tmp_path)
    results = tmp_path / "benchmarks" / "results"

    def written():
        return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}

    before = written()
    assert report(cwd=tmp_path).returncode == 0
    assert written() == before
    horizon = results / "horizon_ml-100k_cpu.json"
    horizon.write_text(json.dumps(json.loads(horizon.read_text()), indent=1))  # the same results, other bytes
    assert report(cwd=tmp_path).returncode == 0
    changed = {name for name, mtime in written().items() if before.get(name) != mtime}
    assert changed == {"horizon_ml-100k_cpu.json", "horizon_ml-100k_cpu.png"}
    done = report("--check", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
