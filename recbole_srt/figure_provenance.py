"""A figure names the result files it was drawn from and carries their digest (PNG text chunks), so a check can
tell that a figure lags its results without drawing it again: matplotlib's bytes differ across its versions, the
digest of the results does not."""

import hashlib
import os

SOURCES_KEY = "Source"
DIGEST_KEY = "Source SHA-256"


def digest(paths, relative_to):
    """sha256 over each source's path (relative to the figure's folder) and bytes."""
    hasher = hashlib.sha256()
    for path in paths:
        hasher.update(os.path.relpath(path, relative_to).encode() + b"\0")
        with open(path, "rb") as f:
            hasher.update(f.read())
    return hasher.hexdigest()


def save(fig, path, sources, dpi):
    """`fig.savefig(path)`, stamped with the results in `sources`; the figure is closed."""
    import matplotlib.pyplot as plt

    folder = os.path.dirname(os.path.abspath(path))
    names = "\n".join(os.path.relpath(source, folder) for source in sources)
    fig.savefig(path, dpi=dpi, metadata={SOURCES_KEY: names, DIGEST_KEY: digest(sources, folder)})
    plt.close(fig)


def stamp(path):
    """The figure's text chunks: its sources and their digest, where it was stamped."""
    from PIL import Image

    with Image.open(path) as image:
        return dict(getattr(image, "text", {}))


def sources(path, text=None):
    """The result files the figure at `path` was stamped with (absolute paths; none without a stamp)."""
    names = (stamp(path) if text is None else text).get(SOURCES_KEY)
    folder = os.path.dirname(os.path.abspath(path))
    return [os.path.join(folder, name) for name in names.split("\n")] if names else []


def lag(path):
    """Why the figure at `path` does not show its results as they are now, or None if it does."""
    text = stamp(path)
    if DIGEST_KEY not in text or SOURCES_KEY not in text:
        return "no stamp of the results it was drawn from"
    folder = os.path.dirname(os.path.abspath(path))
    drawn_from = sources(path, text)
    missing = [os.path.relpath(s, folder) for s in drawn_from if not os.path.isfile(s)]
    if missing:
        return f"drawn from {', '.join(missing)}, which is gone"
    if digest(drawn_from, folder) != text[DIGEST_KEY]:
        return f"drawn from an earlier {', '.join(os.path.relpath(s, folder) for s in drawn_from)}"
    return None
