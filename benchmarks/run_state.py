"""A benchmark run's state between epochs, so that a run killed mid-way (a session's end) or stopped at a time or
epoch limit goes on later from its last validated epoch instead of starting over.

The state is a small JSON file beside the checkpoints (`saved/benchmark_runs/`): the trainer's `-last` checkpoint
(`resume_from`'s input) and what the run's record sums over its epochs. It is local to the machine that holds the
checkpoint; only the finished records are committed.
"""

import hashlib
import json
import os

STATE_DIR = os.path.join("saved", "benchmark_runs")


class Progress:
    """What a run's record sums over its epochs: the best validation score and its epoch, epochs and training
    seconds so far."""

    def __init__(self, best_valid=None, epochs_to_best=0, epochs_run=0, train_seconds=0.0):
        self.best_valid, self.epochs_to_best = best_valid, epochs_to_best
        self.epochs_run, self.train_seconds = epochs_run, train_seconds

    @classmethod
    def from_dict(cls, state):
        return cls(state["best_valid"], state["epochs_to_best"], state["epochs_run"], state["train_seconds"])

    def as_dict(self):
        return {"best_valid": self.best_valid, "epochs_to_best": self.epochs_to_best, "epochs_run": self.epochs_run,
                "train_seconds": self.train_seconds}

    def epoch_trained(self, seconds):
        self.epochs_run += 1
        self.train_seconds += seconds

    def validated(self, score):
        """The score of the epoch just trained (RecBole's early stopping keeps the first of equal bests)."""
        if self.best_valid is None or score > self.best_valid:
            self.best_valid, self.epochs_to_best = score, self.epochs_run


class RunState:
    """The saved progress of one (results file, run) pair."""

    def __init__(self, results_path, key):
        results = os.path.abspath(results_path)
        tag = hashlib.sha1(f"{results}\n{json.dumps(key)}".encode()).hexdigest()[:12]
        name = "_".join(str(part) for part in key).replace(os.sep, "-").replace(" ", "-")
        self.path = os.path.join(STATE_DIR, f"{os.path.basename(results)}.{name}.{tag}.json")
        self.key = key

    def load(self):
        """The saved progress, or None; an error when the checkpoint it continues from is gone."""
        if not os.path.isfile(self.path):
            return None
        with open(self.path) as f:
            state = json.load(f)
        if not os.path.isfile(state["last_checkpoint"]):
            raise FileNotFoundError(f"run {self.key}: its saved progress {self.path} continues from "
                                    f"{state['last_checkpoint']}, which does not exist (delete the progress file "
                                    f"to run it from the start)")
        return state

    def check_resumed(self, state, resumed_epoch):
        """A kill between the trainer's checkpoint and this file leaves them an epoch apart: an error, not a record
        that miscounts."""
        if resumed_epoch != state["epoch"]:
            raise RuntimeError(f"run {self.key}: {state['last_checkpoint']} holds epoch {resumed_epoch}, its saved "
                               f"progress {self.path} epoch {state['epoch']} (killed between the two writes): delete "
                               f"both to run it from the start")

    def save(self, last_checkpoint, epoch, progress):
        """After each validated epoch, once the trainer has written `last_checkpoint` (of `epoch`): `progress` is
        the run's `Progress` so far."""
        os.makedirs(STATE_DIR, exist_ok=True)
        state = {"key": list(self.key), "last_checkpoint": last_checkpoint, "epoch": epoch, **progress.as_dict()}
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.path)

    def clear(self):
        """The run finished by early stopping or its last epoch: nothing is left to continue."""
        if os.path.isfile(self.path):
            os.remove(self.path)
