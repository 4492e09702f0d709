"""SRT's item representation: pooled token embeddings of each text field, combined and adapted to the hidden size.

Its parameters depend on the token vocabulary, the number of text fields and the sizes, never on the catalog.
"""

import torch
import torch.nn.functional as F
from torch import nn

POOLINGS = ("mean", "sum", "max")


class ItemTextEncoder(nn.Module):
    def __init__(self, vocab_size, n_fields, token_embedding_size, hidden_size, pooling="mean", per_field_tables=False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"text_pooling must be one of {POOLINGS}, got '{pooling}'")
        self.pooling = pooling
        self.n_fields = n_fields
        # Index 0 is padding: table ids are SentencePiece ids + 1. With per-field tables (as RecBole's
        # FeatureSeqEmbLayer embeds each feature), field f's rows sit at offset f * (vocab_size + 1) of one table.
        self.field_offset = vocab_size + 1 if per_field_tables else 0
        n_tables = n_fields if per_field_tables else 1
        self.token_embedding = nn.Embedding(n_tables * (vocab_size + 1), token_embedding_size, padding_idx=0)
        # Stands in for a field with no tokens, so items without text still get a learned representation.
        self.empty_field = nn.Parameter(torch.zeros(n_fields, token_embedding_size))
        self.adapter = nn.Linear(n_fields * token_embedding_size, hidden_size)

    def forward(self, tokens):
        """tokens [..., n_fields, max_tokens] (0 = padding) -> [..., hidden_size]."""
        has_text = (tokens > 0).any(dim=-1, keepdim=True)
        if self.field_offset:
            offsets = torch.arange(self.n_fields, device=tokens.device).unsqueeze(-1) * self.field_offset
            tokens = torch.where(tokens > 0, tokens + offsets, tokens)
        # embedding_bag pools without materialising a vector per token; padding is left out of the reduction.
        pooled = F.embedding_bag(tokens.reshape(-1, tokens.size(-1)), self.token_embedding.weight,
                                 mode=self.pooling, padding_idx=0)
        pooled = pooled.view(*tokens.shape[:-1], -1)
        pooled = torch.where(has_text, pooled, self.empty_field)
        return self.adapter(pooled.flatten(-2))
