"""`python -m dataset_scripts`: the conversion command (dataset_scripts.cli)."""

import sys

from dataset_scripts.cli import main

sys.exit(main())
