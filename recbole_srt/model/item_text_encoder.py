"""SRT's item representation: pooled token embeddings of each text field, combined and adapted to the hidden size.

Its parameters depend on the token vocabulary, the number of text fields and the sizes, never on the catalog.
"""

import torch
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
        mask = tokens > 0
        emb = self.token_embedding(tokens)
        if self.pooling == "max":
            pooled = emb.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=-2)
        else:
            pooled = (emb * mask.unsqueeze(-1)).sum(dim=-2)
            if self.pooling == "mean":
                pooled = pooled / mask.sum(dim=-1, keepdim=True).clamp(min=1)
        has_text = mask.any(dim=-1, keepdim=True)
        pooled = torch.where(has_text, pooled, self.empty_field)
        return self.adapter(pooled.flatten(-2))
