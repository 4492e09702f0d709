"""Run by torchrun from test_distributed.py: the run_recbole command line, with process 1 stalled (asleep) before its
first training epoch, as a process stopped with Ctrl-Z or SIGSTOP would be."""

import sys
import time

import torch.distributed as dist

from recbole_srt import cli
from recbole_srt.trainer import SRTTrainerMixin

train_epoch = SRTTrainerMixin._train_epoch


def stalled_train_epoch(self, *args, **kwargs):
    if dist.get_rank() == 1:
        time.sleep(120)
    return train_epoch(self, *args, **kwargs)


SRTTrainerMixin._train_epoch = stalled_train_epoch
sys.exit(cli.main())
