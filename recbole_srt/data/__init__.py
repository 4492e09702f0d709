"""What SRT reads of a dataset: item text, its tokenizer, and the source of each item in a combined dataset."""
