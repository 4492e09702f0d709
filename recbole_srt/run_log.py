"""One log file per run, also when one process runs several (benchmarks, sweeps, tests).

RecBole's `init_logger` installs its handlers with `logging.basicConfig`, which does nothing once the root logger
has any handler: a second run in the same process kept writing to the first run's file, and under pytest (whose
capture handler is on the root logger) no run got a file at all.
"""

import logging

from recbole.utils import init_logger

_current_run_handlers = []


def start_run_log(config):
    """Close the previous run's handlers, then let RecBole install this run's (console and log file) beside any
    handlers that are not RecBole's."""
    root = logging.getLogger()
    for handler in _current_run_handlers:
        root.removeHandler(handler)
        handler.close()
    others = list(root.handlers)
    for handler in others:
        root.removeHandler(handler)
    try:
        init_logger(config)
        _current_run_handlers[:] = list(root.handlers)
    finally:
        for handler in others:
            root.addHandler(handler)
