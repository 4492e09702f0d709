"""Compute accounting as the scaling study needs it: parameters (all, and without embedding tables) and training
FLOPs per optimizer step computed from the shapes, for SRT and RecBole's SASRec.

A multiply-add counts 2 FLOPs; the backward pass counts twice the forward (gradients of inputs and of weights).
Counted: every matrix product (the transformer's projections, attention scores and mixing, feed-forward, the text
adapter, the logits) and the text encoder's pooling sums. Not counted: element-wise work (norms, activations,
softmax, dropout), which is a few percent at these sizes. The transformer runs over the padded length, as the model
does. `torch.utils.flop_counter.FlopCounterMode` agrees on real steps (tests/test_scaling.py).
"""

from torch import nn


def parameter_counts(model):
    """(all parameters, non-embedding parameters): the latter leaves out every nn.Embedding table (items, tokens,
    positions), as the paper's N does."""
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    return total, total - embedding


def transformer_forward(n_layers, hidden, inner, length):
    """Forward FLOPs of the transformer blocks over one sequence of `length` positions."""
    per_position = 2 * (4 * hidden * hidden + 2 * hidden * inner)  # q, k, v, output projections; feed-forward
    attention = 2 * 2 * length * length * hidden  # scores q.k and the weighted sum of values, all heads together
    return n_layers * (length * per_position + attention)


def text_encoder_forward(n_fields, max_tokens, token_size, hidden):
    """Forward FLOPs of encoding one item's text: pooling its (padded) pieces per field, then the adapter."""
    return n_fields * max_tokens * token_size + 2 * n_fields * token_size * hidden


def srt_items_encoded(batch, length, negatives_per_step, n_items):
    """Items the text encoder runs over in one step: those referenced (sequences, positives, negatives), or the
    whole catalog once they are as many (SRT.item_parts). Repeats are encoded once in the model, so this is an
    upper bound; on real batches padding and popular items repeat (the test measures the difference)."""
    return min(n_items, batch * length + batch + negatives_per_step)


def srt_train_step(batch, length, n_layers, hidden, inner, n_fields, max_tokens, token_size, neg_count,
                   shared_negatives, n_items, negative_sets=1, lexical_size=0, in_batch_negatives=False):
    """`negative_sets`: shared sets drawn per step (one per item source when negatives stay within sources); every
    sequence is scored against all of them and keeps its own source's. `lexical_size`: the lexical-match coordinates
    (fields x lexical_match_dim) the logits' dot products and the history's weighted sum add. `in_batch_negatives`:
    every sequence is also scored against the batch's positives (encoded anyway)."""
    negatives_per_step = neg_count * negative_sets if shared_negatives else batch * neg_count
    scored = (neg_count * negative_sets if shared_negatives else neg_count) + (batch if in_batch_negatives else 0)
    items = srt_items_encoded(batch, length, negatives_per_step, n_items)
    forward = (batch * transformer_forward(n_layers, hidden, inner, length)
               + items * text_encoder_forward(n_fields, max_tokens, token_size, hidden)
               + 2 * hidden * batch * (scored + 1))  # logits: the positive and the negatives
    # Nothing learns the lexical-match coordinates: backward computes the gradient of the query's side only.
    lexical = 2 * lexical_size * batch * (scored + 1) + 2 * lexical_size * batch * length
    return 3 * forward + 2 * lexical


def sasrec_train_step(batch, length, n_layers, hidden, inner, n_items, loss_type):
    """RecBole's SASRec: CE scores every catalog item per sequence; BPR one positive and one negative."""
    scored = n_items if loss_type == "CE" else 2
    return 3 * (batch * transformer_forward(n_layers, hidden, inner, length) + 2 * hidden * batch * scored)


def train_step_flops(model, config, batch):
    """Training FLOPs of one optimizer step of `batch` sequences, or None for a model this module does not know."""
    name = type(model).__name__
    shape = dict(batch=batch, length=model.max_seq_length, n_layers=config["n_layers"],
                 hidden=config["hidden_size"], inner=config["inner_size"])
    if name == "SRT":
        encoder = model.item_encoder
        return srt_train_step(**shape, n_fields=encoder.n_fields, max_tokens=model.item_tokens.size(-1),
                              token_size=encoder.token_embedding.embedding_dim, neg_count=model.train_neg_count,
                              shared_negatives=model.shared_negatives, n_items=model.n_items,
                              negative_sets=model.negative_sampler.n_sources,
                              lexical_size=model.lexical_match.size if model.lexical_match is not None else 0,
                              in_batch_negatives=model.in_batch_negatives)
    if name == "SASRec":
        return sasrec_train_step(**shape, n_items=model.n_items, loss_type=config["loss_type"])
    return None


def epoch_flops(model, config, train_data):
    """Training FLOPs of one epoch over `train_data` (its last batch may be smaller), or None."""
    full, last = divmod(train_data.sample_size, train_data.step)
    per_step = train_step_flops(model, config, train_data.step)
    if per_step is None:
        return None
    return full * per_step + (train_step_flops(model, config, last) if last else 0)
