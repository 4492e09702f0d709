"""What every format reader returns: interactions plus item text, before filtering and writing."""

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class RawDataset:
    """interactions: DataFrame with user_id, item_id (str), timestamp (float), optionally rating (float).
    items: item_id -> {text field: raw text or None}. text_fields: the item text fields, in order.
    extra_inter_columns: other interaction columns to keep, as RecBole `name:type` headers by column name."""

    interactions: pd.DataFrame
    items: dict
    text_fields: list
    extra_inter_columns: dict = field(default_factory=dict)


def ordinal_interactions(sequences):
    """Rows for users' time-ordered item lists without timestamps: position in the list is the timestamp."""
    users, items, times = [], [], []
    for user, sequence in sequences:
        users.extend([user] * len(sequence))
        items.extend(sequence)
        times.extend(range(len(sequence)))
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": pd.Series(times, dtype="float64")})
