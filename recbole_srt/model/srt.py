"""Scalable Recommendation Transformer (Zivic, Vazquez, Sánchez, SIGIR'24).

SASRec whose items are encoded from their text instead of looked up in an ID table, trained with a sampled softmax
against popularity-drawn negatives with logQ correction.
"""

import functools
from logging import getLogger

import sentencepiece as spm
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.model.layers import TransformerEncoder
from recbole.utils import InputType
from torch import nn

from recbole_srt.data.item_sources import item_sources
from recbole_srt.data.item_text import item_texts, token_table
from recbole_srt.data.store_dataset import StoreDataset, training_item_counts
from recbole_srt.data.tokenizer import load_tokenizer
from recbole_srt.model.hashed_item_embedding import HashedItemEmbedding
from recbole_srt.model.history_match import LexicalMatch, RepeatMatch, inverse_document_frequency
from recbole_srt.model.item_text_encoder import ItemTextEncoder
from recbole_srt.model.negative_sampler import SCOPES, NegativeSampler, mixture_log_q, sampling_probabilities
from recbole_srt.model.sampled_softmax import candidate_logits, sampled_softmax_loss, with_in_batch
from recbole_srt.transfer import pretrained as transfer

POSITION_ENCODINGS = ("absolute", "reverse")
# Floats of the [users, candidates, hidden] or [users, catalog] intermediates of one evaluation step (1 GiB).
EVAL_SCORE_BUDGET = 2**28


class SRT(SequentialRecommender):
    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        logger = getLogger()
        self.hidden_size = config["hidden_size"]
        self.position_encoding = config["position_encoding"]
        if self.position_encoding not in POSITION_ENCODINGS:
            raise ValueError(f"position_encoding must be one of {POSITION_ENCODINGS}, got '{self.position_encoding}'")
        self.temperature = config["temperature"]
        self.train_neg_count = config["train_neg_count"]
        if not isinstance(self.train_neg_count, int) or self.train_neg_count < 1:
            raise ValueError(f"train_neg_count must be a positive integer, got {self.train_neg_count!r}")
        self.shared_negatives = config["shared_negatives"]
        self.in_batch_negatives = bool(config["in_batch_negatives"])
        self.logq_correction = config["logq_correction"]
        self.item_chunk_size = config["item_chunk_size"]

        text_fields = config["text_fields"]
        if isinstance(text_fields, str):
            text_fields = [text_fields]
        self.text_fields, self.text_normalization = list(text_fields), config["text_normalization"]
        pretrained = None
        if config["pretrained_model"]:
            pretrained = transfer.read(config["pretrained_model"], bool(config["trust_checkpoint"]))
            transfer.check_compatible(config, pretrained, config["pretrained_model"], text_fields)
        tokenizer, tokens, truncated, without_text = self.item_text(config, dataset, pretrained)
        logger.info(
            f"SRT item text: fields {text_fields}, {self.n_items - 1} items, {without_text} without any text "
            f"(they use the learned empty-field vectors), {truncated} field values cut to "
            f"{config['max_text_tokens']} tokens"
        )
        self.register_buffer("item_tokens", tokens, persistent=False)
        self.other_parameter_name = ["tokenizer_proto"]

        self.item_encoder = ItemTextEncoder(
            vocab_size=tokenizer.get_piece_size(),
            n_fields=len(text_fields),
            token_embedding_size=config["token_embedding_size"] or self.hidden_size,
            hidden_size=self.hidden_size,
            pooling=config["text_pooling"],
            per_field_tables=config["per_field_token_tables"],
        )
        # Off by default (0 buckets): items are their text only.
        buckets = config["item_id_hash_buckets"] or 0
        self.item_id_embedding = (HashedItemEmbedding(buckets, config["item_id_hashes"] or 2, self.hidden_size)
                                  if buckets else None)
        # Off by default: scores from the candidate's text overlap with, and identity to, the recent history items.
        lexical_dim = config["lexical_match_dim"] or 0
        self.lexical_match = (LexicalMatch(inverse_document_frequency(tokens, tokenizer.get_piece_size()),
                                           self.max_seq_length, lexical_dim) if lexical_dim else None)
        self.repeat_match = RepeatMatch(self.max_seq_length) if config["repeat_match"] else None
        # Zero-shot on a catalog the model never saw: what it learned about which items follow which is another
        # catalog's, while the history-match weights carry over.
        self.history_match_only = bool(config["history_match_only"])
        if self.history_match_only and self.lexical_match is None and self.repeat_match is None:
            raise ValueError("history_match_only: scores would be history-match terms only, but neither "
                             "lexical_match_dim nor repeat_match is set")
        # Off by default: a learned scale on the transformer's part of every score. Started at 0 when fine-tuning a
        # model with history match, the scores start as its zero-shot ones and the transformer, which learned another
        # catalog, comes in only as far as the new catalog's data supports it.
        gate = config["transformer_gate_init"]
        self.transformer_gate = None if gate is None else nn.Parameter(torch.tensor(float(gate)))
        self.position_embedding = nn.Embedding(self.max_seq_length, self.hidden_size)
        self.trm_encoder = TransformerEncoder(
            n_layers=config["n_layers"],
            n_heads=config["n_heads"],
            hidden_size=self.hidden_size,
            inner_size=config["inner_size"],
            hidden_dropout_prob=config["hidden_dropout_prob"],
            attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"],
            layer_norm_eps=config["layer_norm_eps"],
        )
        self.LayerNorm = nn.LayerNorm(self.hidden_size, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])

        # Training-split popularity: the model is built on train_data's dataset, whose rows' targets are the
        # training positives only (no valid/test leakage).
        counts = training_item_counts(dataset, self.ITEM_ID)
        sources = self.negative_sources(config, dataset, logger)
        self.negative_sampler = NegativeSampler(
            sampling_probabilities(
                counts,
                distribution=config["neg_sampling_distribution"],
                smoothing=config["popularity_smoothing"],
                alpha=config["popularity_alpha"],
                item_sources=sources,
            ),
            item_sources=sources,
        )
        if self.in_batch_negatives:
            if sources is not None:
                raise ValueError("in_batch_negatives: the batch's positives come from every source, but "
                                 "neg_sampling_scope 'source' keeps each positive's negatives within its own")
            log_target = torch.full(counts.shape, float("-inf"))
            seen = counts > 0
            log_target[seen] = (counts[seen].double() / counts.sum()).log().float()
            self.register_buffer("log_target", log_target, persistent=False)
        # Scores may add the catalog's own popularity: a model trained on other catalogs has not learned this one's.
        self.popularity_prior = float(config["popularity_prior"] or 0.0)
        frequency = (counts.double() + 1.0) / (counts.sum() + len(counts))
        self.register_buffer("log_popularity", frequency.log().float(), persistent=False)
        self._item_cache = None
        self.initializer_range = config["initializer_range"]
        self.apply(self._init_weights)
        nn.init.normal_(self.item_encoder.empty_field, std=self.initializer_range)
        if pretrained is not None:
            loaded = self.pretrained_state(pretrained["state_dict"], config["pretrained_model"],
                                           config["pretrained_parameters"])
            self.load_state_dict({**self.state_dict(), **loaded})
            part = ("" if config["pretrained_parameters"] is None else
                    f" ({len(loaded)} of {len(self.state_dict())} tensors, pretrained_parameters "
                    f"{config['pretrained_parameters']}; the rest from random weights)")
            logger.info(f"SRT weights{part} and tokenizer from pretrained_model {config['pretrained_model']} "
                        f"(trained on {pretrained['config']['dataset']})")

    def pretrained_state(self, state, path, prefixes=None):
        """A checkpoint's weights to load (those `prefixes` name, or all): the transformer gate, if this run has one,
        starts at its own `transformer_gate_init` (the checkpoint may have none); the hashed id table, if this run
        has one, at zero whatever the checkpoint had, since the checkpoint's ids are another catalog's items."""
        state = {k: v for k, v in state.items() if not k.startswith(transfer.CATALOG_PARAMETERS)}
        state = transfer.selected(state, prefixes, path)
        if self.item_id_embedding is not None:
            state["item_id_embedding.table.weight"] = torch.zeros_like(self.item_id_embedding.table.weight)
        if self.transformer_gate is None:
            if "transformer_gate" in state:
                raise ValueError(f"pretrained_model {path}: it has a transformer gate (trained with "
                                 "transformer_gate_init); set transformer_gate_init to start it from a value")
            return state
        return {**state, "transformer_gate": self.transformer_gate.detach().clone()}

    def item_text(self, config, dataset, pretrained):
        """(tokenizer, token table [n_items, fields, width], values cut, items without text). The tokenizer is the
        pre-trained model's, else the dataset's (a store's own, or `tokenizer_model`, or one trained here)."""
        if isinstance(dataset, StoreDataset):
            self.tokenizer_proto = dataset.store.tokenizer_proto
            if pretrained is not None and transfer.tokenizer_proto(pretrained) != self.tokenizer_proto:
                raise ValueError(f"pretrained_model {config['pretrained_model']}: its tokenizer is not the one the "
                                 f"store {dataset.store.path} was encoded with; convert the data again with "
                                 "--tokenizer set to the pre-trained model's SentencePiece model")
            tokens, truncated = dataset.item_token_table(self.text_fields, config["max_text_tokens"],
                                                         self.text_normalization)
            tokenizer = spm.SentencePieceProcessor(model_proto=self.tokenizer_proto)
            return tokenizer, tokens, truncated, dataset.store.meta["items_without_text"]
        texts = item_texts(dataset, self.text_fields, self.text_normalization)
        if pretrained is not None:
            self.tokenizer_proto = transfer.tokenizer_proto(pretrained)
            tokenizer = spm.SentencePieceProcessor(model_proto=self.tokenizer_proto)
        else:
            tokenizer, self.tokenizer_proto = load_tokenizer(config, [t for item in texts[1:] for t in item])
        tokens, truncated = token_table(tokenizer, texts, config["max_text_tokens"])
        without_text = int((tokens[1:] == 0).all(dim=-1).all(dim=-1).sum())
        return tokenizer, tokens, truncated, without_text

    def negative_sources(self, config, dataset, logger):
        """Per-item source indices when negatives are drawn within each item's source, else None (one catalog)."""
        scope = config["neg_sampling_scope"]
        if scope not in SCOPES:
            raise ValueError(f"neg_sampling_scope must be one of {SCOPES}, got '{scope}'")
        if scope == "catalog":
            return None
        sources, names = item_sources(dataset, self.ITEM_ID)
        if len(names) == 1:
            logger.info("neg_sampling_scope: source, but the catalog has one source: negatives come from all items")
            return None
        counts = torch.bincount(sources[1:], minlength=len(names)).tolist()
        logger.info("SRT negatives drawn within each item's source: "
                    + ", ".join(f"{name} ({count} items)" for name, count in zip(names, counts)))
        return sources

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.initializer_range)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def train(self, mode=True):
        self._item_cache = None
        return super().train(mode)

    def embed_items(self, item_ids):
        """Representations of `item_ids` (any shape): rows of the whole catalog table in eval mode, else encoded."""
        if not self.training:
            return self.all_item_embeddings()[item_ids]
        return self.joined(*self.item_parts(item_ids))

    def item_parts(self, item_ids):
        """Training's representations of `item_ids` (any shape) in two parts: the learned one [..., hidden_size] and
        the lexical-match coordinates [..., fields x dim] (None without lexical match). Nothing learns the latter,
        so kept apart no gradient of their width is ever made (joined, it was half the step time on ML-1M).

        When a batch references at least as many ids as the catalog has, the whole catalog is encoded once.
        Otherwise, on the CPU each distinct id is encoded once (14% less step time, SRT-1K on Beauty at length 20,
        2-core EPYC); on an accelerator, and under torch.compile, every id is encoded as it comes, because
        torch.unique's data-dependent size would make the host wait for the device at every step and break the
        compiled graph.
        """
        if item_ids.numel() >= self.n_items:
            encode, index = torch.arange(self.n_items, device=item_ids.device), item_ids
        elif item_ids.device.type != "cpu" or torch.compiler.is_compiling():
            encode, index = item_ids, None
        else:
            encode, index = torch.unique(item_ids, return_inverse=True)
        parts = self.encode_item_parts(encode)
        return parts if index is None else tuple(None if part is None else part[index] for part in parts)

    def encode_items(self, item_ids):
        """[..., hidden_size (+ fields x dim)]: the two parts of `encode_item_parts` joined."""
        return self.joined(*self.encode_item_parts(item_ids))

    def encode_item_parts(self, item_ids):
        """Each item's text through the encoder, plus its hashed id vector when `item_id_hash_buckets` is set; and
        its lexical-match coordinates when `lexical_match_dim` is set (else None)."""
        tokens = self.item_tokens[item_ids].long()
        encoded = self.item_encoder(tokens)
        if self.item_id_embedding is not None:
            encoded = encoded + self.item_id_embedding(item_ids)
        lexical = self.lexical_match.item_vectors(tokens) if self.lexical_match is not None else None
        return encoded, lexical

    @staticmethod
    def joined(learned, lexical):
        """One vector per item or sequence, so that every score is a single dot product."""
        return learned if lexical is None else torch.cat([learned, lexical], dim=-1)

    def all_item_embeddings(self):
        """[n_items, H]; cached in eval mode (train() drops it, so new weights are always used). Chunks are written
        into one table as they are encoded, so the catalog's vectors are held once, not twice as concatenating
        them would (2.5 GB at 9.9M items, hidden 64)."""
        if self._item_cache is not None:
            return self._item_cache
        table = None
        for start in range(0, self.n_items, self.item_chunk_size):
            ids = torch.arange(start, min(start + self.item_chunk_size, self.n_items), device=self.item_tokens.device)
            encoded = self.encode_items(ids)
            if table is None:
                table = encoded.new_empty(self.n_items, encoded.size(-1))
            table[start : start + len(ids)] = encoded
        if not self.training:
            self._item_cache = table
        return table

    def position_ids(self, item_seq_len, length):
        steps = torch.arange(length, device=item_seq_len.device).unsqueeze(0)
        if self.position_encoding == "absolute":
            return steps.expand(len(item_seq_len), -1)
        # Counted back from the prediction point: the most recent item always gets position 0.
        return (item_seq_len.unsqueeze(1) - 1 - steps).clamp(min=0)

    def forward(self, item_seq, item_seq_len):
        return self.encode_sequence(self.embed_items(item_seq), item_seq_len)

    def encode_sequence(self, item_emb, item_seq_len):
        """item_emb [B, L, H (+ lexical)] of a right-padded sequence -> the transformer's output at its last real
        position [B, H] (`transformer_output`), followed by the lexical-match query when `lexical_match_dim` is
        set."""
        output = self.transformer_output(item_emb[..., : self.hidden_size], item_seq_len)
        if self.lexical_match is None:
            return output
        return torch.cat([output, self.lexical_match.query(item_emb[..., self.hidden_size :], item_seq_len)], dim=-1)

    def transformer_output(self, item_emb, item_seq_len):
        """[B, H]: the transformer's output, zeros with `history_match_only`, times the gate with
        `transformer_gate_init`."""
        if self.history_match_only:
            return item_emb.new_zeros(len(item_seq_len), self.hidden_size)
        output = self.attend(item_emb, item_seq_len)
        return output if self.transformer_gate is None else output * self.transformer_gate

    def attend(self, item_emb, item_seq_len):
        """The causal transformer over item_emb [B, L, H]; its output at each sequence's last real position."""
        length = item_emb.size(1)
        valid = torch.arange(length, device=item_emb.device).unsqueeze(0) < item_seq_len.unsqueeze(1)
        x = item_emb + self.position_embedding(self.position_ids(item_seq_len, length))
        # Padding slots carry exact zeros and are masked as keys: they contribute nothing.
        x = self.dropout(self.LayerNorm(x)) * valid.unsqueeze(-1)
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=item_emb.device))
        allowed = causal.unsqueeze(0) & valid.unsqueeze(1)
        attention_mask = torch.where(allowed, 0.0, -10000.0).unsqueeze(1)
        output = self.trm_encoder(x, attention_mask, output_all_encoded_layers=False)[-1]
        return self.gather_indexes(output, item_seq_len - 1)

    def calculate_loss(self, interaction):
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        pos_ids = interaction[self.POS_ITEM_ID]
        batch = len(pos_ids)
        neg_ids, neg_group = self.negative_sampler.draw(pos_ids, self.train_neg_count, self.shared_negatives)
        shape = neg_ids.shape
        # One encoding pass for the sequences' items, the positives and the negatives. Split, not sliced: each
        # slice's backward would fill a zero gradient the size of the whole pass.
        learned, lexical = self.item_parts(torch.cat([item_seq.flatten(), pos_ids, neg_ids.flatten()]))
        sizes = [item_seq.numel(), batch, neg_ids.numel()]
        seq_emb, pos_emb, neg_emb = torch.split(learned, sizes)
        seq_output = self.transformer_output(seq_emb.view(*item_seq.shape, -1), item_seq_len)
        neg_emb = neg_emb.view(*shape, -1)
        if lexical is not None:
            seq_lexical, pos_lexical, neg_lexical = torch.split(lexical, sizes)
            query = self.lexical_match.query(seq_lexical.view(*item_seq.shape, -1), item_seq_len)
            neg_lexical = neg_lexical.view(*shape, -1)
        log_q = self.negative_sampler.log_q if self.logq_correction else None
        if self.in_batch_negatives:
            # Mixed negative sampling: the batch's positives, already encoded, join every sequence's negatives (its
            # own is masked as an accidental hit), and logQ becomes the mixture's.
            neg_ids, neg_emb = with_in_batch(neg_ids, pos_ids), with_in_batch(neg_emb, pos_emb)
            if lexical is not None:
                neg_lexical = with_in_batch(neg_lexical, pos_lexical)
            if log_q is not None:
                log_q = functools.partial(mixture_log_q, log_q=log_q, log_target=self.log_target,
                                          neg_count=self.train_neg_count, batch=batch)
        pos_extra = neg_extra = None
        if lexical is not None:
            # The same dot product as joined vectors would give, with gradients for the query only.
            pos_extra, neg_extra = candidate_logits(query, pos_lexical, neg_lexical, neg_group)
        if self.repeat_match is not None:
            pos_repeat = self.repeat_match(pos_ids.unsqueeze(1), item_seq, item_seq_len)
            neg_repeat = self.repeat_match(neg_ids if neg_group is None else neg_ids[neg_group], item_seq, item_seq_len)
            pos_extra, neg_extra = ((pos_repeat, neg_repeat) if pos_extra is None
                                    else (pos_extra + pos_repeat, neg_extra + neg_repeat))
        return sampled_softmax_loss(
            seq_output,
            pos_emb,
            neg_emb,
            pos_ids,
            neg_ids,
            log_q=log_q,
            temperature=self.temperature,
            neg_group=neg_group,
            pos_extra=pos_extra,
            neg_extra=neg_extra,
        )

    def with_prior(self, scores, item_ids=None):
        """Scores plus `popularity_prior` x log of the items' training-split frequency (add-one smoothed)."""
        if not self.popularity_prior:
            return scores
        prior = self.log_popularity if item_ids is None else self.log_popularity[item_ids]
        return scores + self.popularity_prior * prior

    def with_repeats(self, scores, item_seq, item_seq_len, item_ids=None):
        """Scores [B, C] of candidates item_ids [B, C] (None: [B, n_items], the catalog) plus the learned weights of
        the recencies at which each candidate is in the history, when `repeat_match` is set."""
        if self.repeat_match is None:
            return scores
        if item_ids is None:
            return self.repeat_match.catalog_scores(scores, item_seq, item_seq_len)
        return scores + self.repeat_match(item_ids, item_seq, item_seq_len)

    def predict(self, interaction):
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        item_ids = interaction[self.ITEM_ID]
        scores = (self.forward(item_seq, item_seq_len) * self.embed_items(item_ids)).sum(-1)
        scores = self.with_repeats(scores.unsqueeze(1), item_seq, item_seq_len, item_ids.unsqueeze(1)).squeeze(1)
        return self.with_prior(scores, item_ids)

    def full_sort_predict(self, interaction):
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        scores = self.forward(item_seq, item_seq_len) @ self.all_item_embeddings().T
        return self.with_prior(self.with_repeats(scores, item_seq, item_seq_len))

    def sampled_predict(self, interaction, candidates):
        """Scores [B, C] of candidate item ids [B, C], encoding each sequence once.

        With many candidates (C * hidden >= catalog size) a [users, n_items] product and a gather is cheaper than
        gathering [users, C, hidden] candidate vectors. Users are taken in groups that keep either within
        EVAL_SCORE_BUDGET floats, whatever the batch and catalog size.
        """
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        seq_output = self.forward(item_seq, item_seq_len)
        width = seq_output.size(-1)
        whole_catalog = not self.training and candidates.size(1) * width >= self.n_items
        per_user = self.n_items if whole_catalog else candidates.size(1) * width
        rows = max(1, EVAL_SCORE_BUDGET // per_user)
        scores = []
        for seq, cand in zip(seq_output.split(rows), candidates.split(rows)):
            if whole_catalog:
                scores.append((seq @ self.all_item_embeddings().T).gather(1, cand))
            else:
                scores.append(torch.bmm(self.embed_items(cand), seq.unsqueeze(-1)).squeeze(-1))
        return self.with_prior(self.with_repeats(torch.cat(scores), item_seq, item_seq_len, candidates), candidates)
