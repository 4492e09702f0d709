"""SRT on catalogs it was not trained on: pre-trained checkpoints on new datasets, fine-tuning stages, EWC, and
released models."""
