"""Every hand-written documentation page can be reached the three ways a reader arrives: README's documentation
table (on the repository's front page), the home page's list of pages and the site's navigation. A page added to one
of them and not the others is otherwise found only by a reader who misses it."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def handwritten_pages():
    """docs/*.md but the home page; docs/benchmarks/ is generated from results and listed by the report."""
    return {path.name for path in DOCS.glob("*.md") if path.name != "index.md"}


def linked_pages(markdown, prefix=""):
    return set(re.findall(r"\]\(" + re.escape(prefix) + r"([\w-]+\.md)", markdown))


def navigation_pages(entries):
    for entry in entries:
        for value in (entry.values() if isinstance(entry, dict) else [entry]):
            if isinstance(value, list):
                yield from navigation_pages(value)
            else:
                yield value


WAYS_IN = {
    "README.md's documentation table": lambda: linked_pages((ROOT / "README.md").read_text(), "docs/"),
    "docs/index.md's pages": lambda: linked_pages((DOCS / "index.md").read_text()),
    "mkdocs.yml's nav": lambda: set(navigation_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])),
}


@pytest.mark.parametrize("way_in", sorted(WAYS_IN))
def test_every_page_is_linked(way_in):
    missing = sorted(handwritten_pages() - WAYS_IN[way_in]())
    assert not missing, f"{way_in} does not link {missing}"


def test_linked_pages_reads_links_with_anchors_and_leaves_out_other_folders():
    text = "[a](docs/srt.md), [b](docs/transfer.md#the-shipped-model), [c](docs/benchmarks/quality.md), [d](srt.md)"
    assert linked_pages(text, "docs/") == {"srt.md", "transfer.md"}
