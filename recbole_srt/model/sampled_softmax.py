"""Sampled softmax with logQ correction and accidental-hit masking (SRT paper, eq. 2)."""

import torch
import torch.nn.functional as F


def candidate_logits(seq_output, pos_emb, neg_emb, neg_group=None):
    """Dot products (pos [B, 1], neg [B, N]) of each sequence with its positive and its negatives, for the shapes
    `sampled_softmax_loss` takes."""
    pos_logits = (seq_output * pos_emb).sum(-1, keepdim=True)
    if neg_group is not None:
        groups, count = neg_emb.shape[:2]
        every_set = (seq_output @ neg_emb.reshape(groups * count, -1).T).view(len(seq_output), groups, count)
        return pos_logits, every_set.gather(1, neg_group.view(-1, 1, 1).expand(-1, 1, count)).squeeze(1)
    if neg_emb.dim() == 2:
        return pos_logits, seq_output @ neg_emb.T
    return pos_logits, torch.bmm(neg_emb, seq_output.unsqueeze(-1)).squeeze(-1)


def with_in_batch(negatives, positives):
    """Negatives (ids or vectors), shared [N, ...] or per sequence [B, N, ...], with the batch's positives [B, ...]
    appended to every sequence's: mixed negative sampling."""
    if negatives.dim() == positives.dim():
        return torch.cat([negatives, positives])
    return torch.cat([negatives, positives.unsqueeze(0).expand(len(positives), *positives.shape)], dim=1)


def sampled_softmax_loss(seq_output, pos_emb, neg_emb, pos_ids, neg_ids, log_q=None, temperature=1.0, neg_group=None,
                         pos_extra=None, neg_extra=None):
    """Mean over the batch of -log softmax(positive | positive + negatives).

    seq_output, pos_emb: [B, H]; neg_emb: [N, H] (one set shared by the batch) or [B, N, H] (per sequence);
    pos_ids [B], neg_ids [N] or [B, N]; log_q: log sampling probability per item id (a tensor indexed by id, or a
    function of the ids), subtracted from every logit, the positive's included. A negative that is the positive
    itself is masked out.
    With `neg_group` [B], neg_emb is [G, N, H] and neg_ids [G, N]: G shared sets (one per item source), sequence b
    contrasted with set neg_group[b] only.
    pos_extra [B, 1], neg_extra [B, N]: scores added to the dot products (repeat match; lexical match's own dot
    products, kept apart so that no gradient is computed for what nothing learns).
    """
    # Logits in fp32 whatever the autocast precision: logQ corrections and the softmax need the range.
    pos_logits, neg_logits = candidate_logits(seq_output, pos_emb, neg_emb, neg_group)
    pos_logits, neg_logits = pos_logits.float() / temperature, neg_logits.float() / temperature
    if neg_group is not None:
        neg_ids = neg_ids[neg_group]
    elif neg_ids.dim() == 1:
        neg_ids = neg_ids.unsqueeze(0).expand(len(pos_ids), -1)
    if pos_extra is not None:
        pos_logits = pos_logits + pos_extra.float() / temperature
        neg_logits = neg_logits + neg_extra.float() / temperature
    if log_q is not None:
        lookup = log_q.__getitem__ if torch.is_tensor(log_q) else log_q
        pos_logits = pos_logits - lookup(pos_ids).unsqueeze(-1)
        neg_logits = neg_logits - lookup(neg_ids)
    neg_logits = neg_logits.masked_fill(neg_ids == pos_ids.unsqueeze(-1), float("-inf"))
    logits = torch.cat([pos_logits, neg_logits], dim=1)
    target = torch.zeros(len(pos_ids), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)
