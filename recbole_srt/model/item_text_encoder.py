"""SRT's item representation: pooled token embeddings of each text field, combined and adapted to the hidden size.

Its parameters depend on the token vocabulary, the number of text fields and the sizes, never on the catalog.
"""

import torch
import torch.nn.functional as F
from torch import nn

POOLINGS = ("mean", "sum", "max")


class ItemTextEncoder(nn.Module):
    def __init__(self, vocab_size, n_fields, token_embedding_size, hidden_size, pooling="mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"text_pooling must be one of {POOLINGS}, got '{pooling}'")
        self.pooling = pooling
        # Index 0 is padding: table ids are SentencePiece ids + 1.
        self.token_embedding = nn.Embedding(vocab_size + 1, token_embedding_size, padding_idx=0)
        # Stands in for a field with no tokens, so items without text still get a learned representation.
        self.empty_field = nn.Parameter(torch.zeros(n_fields, token_embedding_size))
        self.adapter = nn.Linear(n_fields * token_embedding_size, hidden_size)

    def forward(self, tokens):
        """tokens [..., n_fields, max_tokens] (0 = padding) -> [..., hidden_size]."""
        # embedding_bag pools without materialising a vector per token; padding is left out of the reduction.
        pooled = F.embedding_bag(tokens.reshape(-1, tokens.size(-1)), self.token_embedding.weight,
                                 mode=self.pooling, padding_idx=0)
        pooled = pooled.view(*tokens.shape[:-1], -1)
        has_text = (tokens > 0).any(dim=-1, keepdim=True)
        pooled = torch.where(has_text, pooled, self.empty_field)
        return self.adapter(pooled.flatten(-2))
