"""Resuming an interrupted streamed conversion (`sequences --store`): its work folder beside the output keeps every
stage that finished, so running the same command again continues after the last one instead of starting over.

The folder is `DIR/.NAME.partial`; `progress.json` in it names the finished stages and what each left besides its
files, under a fingerprint of the inputs and options. Different inputs or options (a file's size or modification
time, a setting) start over. A lock keeps two conversions out of one folder.
"""

import fcntl
import json
import logging
import os
import shutil

from dataset_scripts.sources import InputError

logger = logging.getLogger("dataset_scripts")
PROGRESS = "progress.json"
LOCK = "lock"


def file_fingerprint(path):
    """What changes when a file's content does, without reading it: its absolute path, size and mtime."""
    status = os.stat(path)
    return {"path": os.path.abspath(path), "size": status.st_size, "mtime_ns": status.st_mtime_ns}


class WorkFolder:
    """DIR/.NAME.partial, locked for this process; `stages` holds what an earlier, interrupted run finished."""

    def __init__(self, output_dir, name):
        self.folder = os.path.join(os.path.abspath(output_dir), f".{name}.partial")
        os.makedirs(self.folder, exist_ok=True)
        self._lock = open(os.path.join(self.folder, LOCK), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise InputError(f"another conversion is writing {self.folder}; wait for it to end or stop it") from None
        self.fingerprint, self.stages = None, {}

    def start(self, fingerprint):
        """Keep the finished stages of an earlier run with the same fingerprint; otherwise empty the folder."""
        self.fingerprint = fingerprint
        path = os.path.join(self.folder, PROGRESS)
        previous = None
        if os.path.isfile(path):
            with open(path) as f:
                try:
                    previous = json.load(f)
                except json.JSONDecodeError:
                    previous = None
        if previous is not None and previous.get("fingerprint") == fingerprint:
            self.stages = previous["stages"]
            logger.info(f"resuming the conversion in {self.folder}: finished stages {list(self.stages)} are kept")
            return
        if previous is not None:
            logger.info(f"{self.folder} holds a conversion of other inputs or options: starting over")
        for entry in os.listdir(self.folder):
            if entry != LOCK:
                target = os.path.join(self.folder, entry)
                if os.path.isdir(target):
                    shutil.rmtree(target)
                else:
                    os.remove(target)
        self.stages = {}
        self._write()

    def finished(self, stage, state=None):
        """Record `stage` as done, with the small state (JSON) a later run needs besides the stage's files."""
        self.stages[stage] = state or {}
        self._write()

    def _write(self):
        path = os.path.join(self.folder, PROGRESS)
        with open(path + ".tmp", "w") as f:
            json.dump({"fingerprint": self.fingerprint, "stages": self.stages}, f, indent=1)
        os.replace(path + ".tmp", path)

    def complete(self):
        """The conversion finished: drop the progress record and the lock, leaving the folder as the dataset."""
        os.remove(os.path.join(self.folder, PROGRESS))
        os.remove(os.path.join(self.folder, LOCK))
        self._lock.close()

    def keep(self):
        """Interrupted: release the lock and keep the finished stages for the next run."""
        self._lock.close()
        logger.warning(f"conversion stopped; {self.folder} keeps its finished stages {list(self.stages)}: run the same "
                       "command again to continue")

    def discard(self):
        """Bad input: nothing of this run is worth keeping."""
        self._lock.close()
        shutil.rmtree(self.folder, ignore_errors=True)
