"""House style that a reader notices: the package's lines fit the width setup.cfg declares for editors and linters."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def max_line_length():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config.getint("flake8", "max-line-length")


def test_package_lines_fit_the_declared_width():
    limit = max_line_length()
    long_lines = [f"{path.relative_to(ROOT)}:{number} ({len(line)} characters)"
                  for path in sorted((ROOT / "recbole_srt").rglob("*.py"))
                  for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > limit]
    assert not long_lines, f"lines over {limit} characters:\n" + "\n".join(long_lines)
