import pytest
import sentencepiece as spm
import torch
from recbole.data.interaction import Interaction

from helpers import build
from recbole_srt.hashing import hash32


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("hashed_ids", [{}, {"item_id_hash_buckets": 64},
                                        {"lexical_match_dim": 64, "repeat_match": True, "transformer_gate_init": 0.0}])
def test_parameter_count_does_not_depend_on_catalog_size(fast_config, tmp_path, hashed_ids):
    _, small, _ = build("SRT", "ml40", fast_config, **hashed_ids)
    shared = tmp_path / "shared.model"
    shared.write_bytes(small.tokenizer_proto)
    _, large, _ = build("SRT", "ml80", fast_config, tokenizer_model=str(shared), **hashed_ids)
    assert large.n_items > small.n_items + 100
    assert count_parameters(large) == count_parameters(small)
    assert not any(p.dim() and p.shape[0] in (small.n_items, large.n_items) for p in large.parameters())
    large.load_state_dict(small.state_dict())  # a model trained on one catalog scores another
    large.eval()
    scores = large.full_sort_predict(next(iter(build("SRT", "ml80", fast_config, tokenizer_model=str(shared),
                                                     **hashed_ids)[2][2]))[0])
    assert scores.shape[1] == large.n_items and torch.isfinite(scores[:, 1:]).all()


def test_items_without_text_get_a_finite_learned_representation(fast_config):
    _, model, _ = build("SRT", "beauty_toy", fast_config)
    model.eval()
    no_text = (model.item_tokens == 0).all(-1).all(-1)
    assert int(no_text[1:].sum()) == 2
    emb = model.embed_items(torch.nonzero(no_text[1:]).flatten() + 1)
    assert torch.isfinite(emb).all()
    expected = model.item_encoder.adapter(model.item_encoder.empty_field.flatten())
    torch.testing.assert_close(emb[0], expected)
    emb.sum().backward()
    assert model.item_encoder.empty_field.grad.abs().sum() > 0


def test_html_entities_are_decoded_before_tokenizing(fast_config):
    _, model, (train, _, _) = build("SRT", "beauty_toy", fast_config)
    sp = spm.SentencePieceProcessor(model_proto=model.tokenizer_proto)
    item = train._dataset.token2id("item_id", "1")  # brand "L&#39;Oreal"
    brand = sp.decode([int(i) - 1 for i in model.item_tokens[item, 1] if i > 0])
    assert brand == "l'oreal"


def _padded(sequences, width, junk):
    seq = torch.full((len(sequences), width), junk, dtype=torch.long)
    for row, items in enumerate(sequences):
        seq[row, : len(items)] = torch.tensor(items)
    return seq


@pytest.mark.parametrize("position_encoding", ["absolute", "reverse"])
def test_padding_slots_contribute_nothing(fast_config, position_encoding):
    _, model, _ = build("SRT", "ml40", fast_config, position_encoding=position_encoding)
    model.eval()
    sequences = [[5, 9, 3], [12, 4, 4, 8, 30, 2], [17]]
    lengths = torch.tensor([len(s) for s in sequences])
    reference = model.forward(_padded(sequences, 6, 0), lengths)
    for width, junk in ((10, 0), (10, 21), (7, 1)):
        out = model.forward(_padded(sequences, width, junk), lengths)
        torch.testing.assert_close(out, reference, rtol=0, atol=1e-6)


def test_reverse_positions_count_back_from_the_prediction_point(fast_config):
    _, model, _ = build("SRT", "ml40", fast_config, position_encoding="reverse")
    ids = model.position_ids(torch.tensor([3, 1]), 5)
    assert ids[0, :3].tolist() == [2, 1, 0] and ids[1, 0] == 0
    model.position_encoding = "absolute"
    assert model.position_ids(torch.tensor([3, 1]), 5)[0].tolist() == [0, 1, 2, 3, 4]


def test_position_modes_give_different_outputs(fast_config):
    _, model, _ = build("SRT", "ml40", fast_config, position_encoding="absolute")
    model.eval()
    seq, lengths = _padded([[5, 9, 3], [12, 4]], 5, 0), torch.tensor([3, 2])
    absolute = model.forward(seq, lengths)
    model.position_encoding = "reverse"
    reverse = model.forward(seq, lengths)
    assert not torch.allclose(absolute, reverse)


def test_scores_agree_across_predict_full_sort_and_sampled(fast_config):
    _, model, (_, _, test) = build("SRT", "ml40", fast_config)
    model.eval()
    batch = next(iter(test))[0]
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        candidates = torch.stack([batch["item_id"], torch.ones_like(batch["item_id"])], dim=1)
        sampled = model.sampled_predict(batch, candidates)
        single = model.predict(Interaction({**batch.interaction}))
    rows = torch.arange(len(full))
    torch.testing.assert_close(sampled[:, 0], full[rows, batch["item_id"]])
    torch.testing.assert_close(sampled[:, 1], full[:, 1])
    torch.testing.assert_close(single, full[rows, batch["item_id"]])


def test_missing_text_field_error_names_the_field_and_file(fast_config):
    with pytest.raises(ValueError, match=r"'subtitle'.*beauty_toy\.item"):
        build("SRT", "beauty_toy", fast_config, text_fields=["title", "subtitle"])


def test_item_table_is_a_device_buffer_not_a_parameter(fast_config):
    _, model, _ = build("SRT", "ml40", fast_config)
    buffers = dict(model.named_buffers())
    assert "item_tokens" in buffers and "item_tokens" not in model.state_dict()
    assert buffers["item_tokens"].device.type == torch.device(fast_config.get("device", "cpu")).type


def test_hashed_item_ids_add_a_vector_of_their_own_to_the_text_and_none_to_padding(fast_config):
    _, model, _ = build("SRT", "ml40", fast_config, item_id_hash_buckets=32, item_id_hashes=2)
    table = model.item_id_embedding
    assert table.table.weight.shape == (32, fast_config["hidden_size"])
    ids = torch.arange(model.n_items)
    rows = [set(r) for r in (hash32((ids.unsqueeze(-1) & 0xFFFFFFFF) ^ table.salts) % 32).tolist()]
    assert sum(len(r) == 2 for r in rows) > 0.8 * len(rows)  # two hashes: mostly two distinct rows per item
    model.eval()
    text_only = model.item_encoder(model.item_tokens[ids])
    expected = text_only + table.table.weight[torch.tensor([sorted(r) if len(r) == 2 else [next(iter(r))] * 2
                                                             for r in rows])].sum(1)
    expected[0] = text_only[0]  # padding gets no id vector
    torch.testing.assert_close(model.all_item_embeddings(), expected)
    model.train()
    model.embed_items(torch.tensor([[3, 5], [1, 0]])).sum().backward()
    assert table.table.weight.grad.abs().sum(1).gt(0).sum() <= 6  # only the rows of items 3, 5 and 1
    with pytest.raises(ValueError, match="setting item_id_hash_buckets: expected an integer >= 0, got -1"):
        build("SRT", "ml40", fast_config, item_id_hash_buckets=-1)


def test_distinct_item_path_matches_the_catalog_table(fast_config):
    _, model, _ = build("SRT", "ml40", fast_config)
    ids = torch.tensor([[3, 5, 3], [1, 0, 7]])
    model.train()
    distinct = model.embed_items(ids)  # fewer ids than items: encoded per id (distinct ids once on the CPU)
    model.eval()
    torch.testing.assert_close(distinct, model.embed_items(ids))


@pytest.mark.parametrize("per_field_tables", [False, True])
@pytest.mark.parametrize("pooling", ["mean", "sum", "max"])
def test_text_pooling_leaves_padding_out(pooling, per_field_tables):
    from recbole_srt.model.item_text_encoder import ItemTextEncoder

    torch.manual_seed(0)
    encoder = ItemTextEncoder(vocab_size=20, n_fields=2, token_embedding_size=4, hidden_size=3, pooling=pooling,
                              per_field_tables=per_field_tables)
    tokens = torch.tensor([[[3, 5, 0, 0], [7, 0, 0, 0]], [[2, 2, 9, 1], [0, 0, 0, 0]]])
    weight = encoder.token_embedding.weight
    # Per-field tables: the same piece id in two fields has two independent vectors.
    tables = weight.view(2, 21, 4) if per_field_tables else weight.unsqueeze(0).expand(2, -1, -1)
    assert len(weight) == (42 if per_field_tables else 21)
    expected = []
    for item in tokens:
        fields = []
        for field, ids in enumerate(item):
            vectors = tables[field][ids[ids > 0]]
            if len(vectors) == 0:
                fields.append(encoder.empty_field[field])
            else:
                fields.append({"mean": vectors.mean(0), "sum": vectors.sum(0), "max": vectors.max(0).values}[pooling])
        expected.append(encoder.adapter(torch.cat(fields)))
    torch.testing.assert_close(encoder(tokens), torch.stack(expected))


def test_popularity_prior_adds_the_training_frequency_to_every_scoring_path(fast_config):
    from recbole_srt.recommend import dataset_catalog

    torch.manual_seed(0)
    _, model, (train, _, test) = build("SRT", "ml40", fast_config)
    _, with_prior, _ = build("SRT", "ml40", fast_config, popularity_prior=0.7)
    with_prior.load_state_dict(model.state_dict())
    model.eval(), with_prior.eval()
    counts = torch.bincount(train._dataset.inter_feat["item_id"], minlength=model.n_items).double()
    log_frequency = ((counts + 1) / (counts.sum() + len(counts))).log().float()
    batch = next(iter(test))[0]
    candidates = torch.randint(1, model.n_items, (len(batch), 5))
    with torch.no_grad():
        torch.testing.assert_close(with_prior.full_sort_predict(batch),
                                   model.full_sort_predict(batch) + 0.7 * log_frequency)
        torch.testing.assert_close(with_prior.sampled_predict(batch, candidates),
                                   model.sampled_predict(batch, candidates) + 0.7 * log_frequency[candidates])
        torch.testing.assert_close(dataset_catalog(with_prior, train._dataset).prior, 0.7 * log_frequency)
    assert dataset_catalog(model, train._dataset).prior is None
