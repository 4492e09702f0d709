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
