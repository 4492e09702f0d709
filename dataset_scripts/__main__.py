import sys

from dataset_scripts.cli import main

sys.exit(main())
