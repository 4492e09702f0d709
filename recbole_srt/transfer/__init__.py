"""SRT on catalogs it was not trained on: pre-trained checkpoints on new datasets, zero-shot evaluation."""
