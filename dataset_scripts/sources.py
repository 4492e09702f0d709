"""Finding input files, reading them line by line with a progress bar, and accounting for malformed lines."""

import contextlib
import glob
import gzip
import os
import sys
import zlib

from tqdm import tqdm


class InputError(ValueError):
    """Bad input: the message names the file, field or option and what was expected."""


_FOUND = []  # stack of sets recording the files find_file returned (recording_found_files)


@contextlib.contextmanager
def recording_found_files():
    """The absolute paths find_file returns while inside: which inputs a reader actually used."""
    _FOUND.append(set())
    try:
        yield _FOUND[-1]
    finally:
        _FOUND.pop()


def find_file(inputs, patterns, what):
    """The first file among `inputs` (files, or folders searched for `patterns`) that matches a pattern."""
    for path in inputs:
        if os.path.isfile(path) and any(glob.fnmatch.fnmatch(os.path.basename(path), p) for p in patterns):
            return _found(path)
    for path in inputs:
        if os.path.isdir(path):
            for pattern in patterns:
                found = sorted(glob.glob(os.path.join(path, pattern)))
                if found:
                    return _found(found[0])
    missing = [p for p in inputs if not os.path.exists(p)]
    hint = f"; these inputs do not exist: {missing}" if missing else ""
    raise InputError(f"no {what} file ({' or '.join(patterns)}) found in --input {list(inputs)}{hint}")


def _found(path):
    for recorded in _FOUND:
        recorded.add(os.path.abspath(path))
    return path


def open_text(path, encoding="utf-8"):
    """Bytes that are not `encoding` are kept as surrogates (`is_text` finds them), so one bad byte costs one line
    (counted against --max-bad-fraction), not the whole conversion."""
    opener = gzip.open if path.endswith(".gz") else open
    return opener(path, "rt", encoding=encoding, errors="surrogateescape", newline="")


def is_text(value):
    """False when `value` holds bytes that did not decode (see open_text)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def reading(path, where):
    """A compressed file that ends early or is corrupt: an error naming it and how far it was read (`where()`)."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputError(f"{path}: truncated or corrupt compressed file, read up to line {where()} ({error}); "
                         "nothing was written") from error


def lines(path, encoding="utf-8", desc=None):
    """(line number, line without its newline), with a progress bar over the file's (compressed) bytes."""
    number = 0
    with open_text(path, encoding) as f, tqdm(total=os.path.getsize(path), unit="B", unit_scale=True,
                                               desc=desc or os.path.basename(path), leave=False,
                                               disable=not sys.stderr.isatty()) as bar, reading(path, lambda: number):
        raw = f.buffer.fileobj if path.endswith(".gz") else f.buffer
        for number, line in enumerate(f, start=1):
            if number % 4096 == 0:
                bar.update(raw.tell() - bar.n)
            yield number, line.rstrip("\r\n")


class BadLines:
    """Skipped input lines per file: counted, the first few line numbers kept, and a limit on their share. Also
    counts item rows whose id an earlier row of the file already gave (the first row is kept)."""

    def __init__(self, max_fraction):
        self.max_fraction = max_fraction
        self.files = {}
        self.duplicate_items = {}

    def duplicate_item(self, path, number):
        entry = self.duplicate_items.setdefault(path, {"rows": 0, "first": []})
        entry["rows"] += 1
        if len(entry["first"]) < 5:
            entry["first"].append(number)

    def skip(self, path, number, reason):
        entry = self.files.setdefault(path, {"bad": 0, "total": 0, "first": [], "reasons": {}})
        entry["bad"] += 1
        entry["reasons"][reason] = entry["reasons"].get(reason, 0) + 1
        if len(entry["first"]) < 5:
            entry["first"].append(number)

    def seen(self, path, total):
        entry = self.files.setdefault(path, {"bad": 0, "total": 0, "first": [], "reasons": {}})
        entry["total"] = total
        if total and entry["bad"] / total > self.max_fraction:
            raise InputError(
                f"{path}: {entry['bad']} of {total} lines are malformed (more than --max-bad-fraction "
                f"{self.max_fraction}); first at lines {entry['first']}; reasons: {entry['reasons']}"
            )

    def report(self):
        return {path: e for path, e in self.files.items() if e["bad"]}
