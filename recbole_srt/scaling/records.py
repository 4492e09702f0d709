"""JSON-lines results that survive being killed: each record is appended in one write, and a torn last line
(the process died inside that write) is cut off before anything is appended after it."""

import json
import os


def append_record(path, record):
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    _cut_torn_tail(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"{path}: short write ({written} of {len(line)} bytes); the record is incomplete")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(path):
    """Every complete record of `path` (none if it does not exist); a torn last line is ignored."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break  # torn by a kill: never a record
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not a JSON record ({error})") from None
    return records


def _cut_torn_tail(path):
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)
