"""Public interaction dumps and item text -> RecBole atomic datasets for SRT: `python -m dataset_scripts --help`."""
