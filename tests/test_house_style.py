"""House style that a reader notices: every Python file's lines fit the width setup.cfg declares for editors and
linters (the package, the benchmarks, the dataset scripts, the properties and these tests), and so does the prose of
the markdown written by hand (README, docs, model cards), so that a diff or a terminal shows it whole."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("recbole_srt", "benchmarks", "dataset_scripts", "properties", "tests")


def max_line_length():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config.getint("flake8", "max-line-length")


def python_files():
    return sorted(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))


def test_the_house_style_covers_every_python_folder():
    """A new top-level folder of Python code (not a virtual environment or a build) is checked too, or named here."""
    outside = [entry.name for entry in ROOT.iterdir()
               if entry.is_dir() and entry.name not in FOLDERS and not entry.name.startswith(".")
               and entry.name != "build" and not (entry / "pyvenv.cfg").exists() and any(entry.rglob("*.py"))]
    assert not outside, f"folders with Python files that tests/test_house_style.py does not check: {outside}"


def test_python_lines_fit_the_declared_width():
    limit = max_line_length()
    long_lines = [f"{path.relative_to(ROOT)}:{number} ({len(line)} characters)"
                  for path in python_files()
                  for number, line in enumerate(path.read_text().splitlines(), 1) if len(line) > limit]
    assert not long_lines, f"lines over {limit} characters:\n" + "\n".join(long_lines)


def handwritten_markdown():
    """README, the docs pages and the model cards; docs/benchmarks/ is generated from results, its tables unwrapped."""
    return sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "pretrained").glob("*/README.md")])


def prose_lines(text):
    """(number, line) of a markdown text's lines that can be wrapped: outside code blocks, and not a table row,
    image, heading, HTML or snippet include, which a line break would change or break."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and not stripped.startswith(("|", "![", "#", "<", "--8<--")):
            yield number, line


def test_markdown_prose_fits_the_declared_width():
    limit = max_line_length()
    long_lines = [f"{path.relative_to(ROOT)}:{number} ({len(line)} characters)"
                  for path in handwritten_markdown()
                  for number, line in prose_lines(path.read_text()) if len(line) > limit]
    assert not long_lines, f"prose lines over {limit} characters:\n" + "\n".join(long_lines)


def test_prose_lines_leave_out_code_tables_and_images():
    text = "a\n```bash\ncode\n```\n| table |\n![figure](f.png)\n# heading\n  - item\n"
    assert [number for number, _ in prose_lines(text)] == [1, 8]
