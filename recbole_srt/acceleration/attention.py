"""RecBole's self-attention through torch's scaled_dot_product_attention (fused kernels on GPUs).

Same mathematics as RecBole's MultiHeadAttention (softmax(q k^T / sqrt(d) + additive mask) v, dropout on the
attention weights, output projection, dropout, residual LayerNorm) and the same parameters, so checkpoints are
interchangeable; tests compare the outputs to 1e-5 in fp32.
"""

import torch.nn.functional as F
from recbole.model.layers import MultiHeadAttention

from recbole_srt.acceleration.dropout import CPUMaskDropout

ATTENTIONS = ("sdpa", "recbole")


class FusedMultiHeadAttention(MultiHeadAttention):
    def forward(self, input_tensor, attention_mask):
        if self.training and self.attn_dropout.p > 0 and isinstance(self.attn_dropout, CPUMaskDropout) \
                and input_tensor.device.type == "cpu":
            # torch's CPU attention has no fused kernel with dropout: it computes what RecBole's does, but draws
            # the mask with bernoulli_. RecBole's computation uses the module's own (faster) dropout.
            return super().forward(input_tensor, attention_mask)
        batch, length, _ = input_tensor.shape

        def heads(x):
            return x.view(batch, length, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

        query = heads(self.query(input_tensor))
        key = heads(self.key(input_tensor))
        value = heads(self.value(input_tensor))
        context = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask.to(query.dtype),
            dropout_p=self.attn_dropout.p if self.training else 0.0,
        )
        context = context.transpose(1, 2).reshape(batch, length, self.all_head_size)
        return self.LayerNorm(self.out_dropout(self.dense(context)) + input_tensor)


def use_attention(model, implementation):
    """Give every RecBole MultiHeadAttention of `model` the chosen implementation (in place, parameters kept)."""
    if implementation not in ATTENTIONS:
        raise ValueError(f"attention: '{implementation}' is not one of {ATTENTIONS}")
    target = FusedMultiHeadAttention if implementation == "sdpa" else MultiHeadAttention
    for module in model.modules():
        if type(module) in (MultiHeadAttention, FusedMultiHeadAttention):
            module.__class__ = target
