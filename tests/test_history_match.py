import math

import pytest
import torch
from recbole.data.interaction import Interaction

from helpers import build
from recbole_srt import run_recbole
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.model.history_match import LexicalMatch, RepeatMatch, inverse_document_frequency
from recbole_srt.model.sampled_softmax import sampled_softmax_loss

HISTORY_MATCH = {"lexical_match_dim": 64, "repeat_match": True}


def pretraining_settings(data_root, tmp_path):
    """A small SRT with history match, pre-trained on ml40 for one epoch."""
    return {"data_path": data_root, "epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32,
            "n_layers": 1, "n_heads": 2, "train_neg_count": 20, "tokenizer_vocab_size": 300, "seed": 7,
            "state": "WARNING", "show_progress": False, "checkpoint_dir": str(tmp_path / "saved"),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "movie_title", "class"]},
            "text_fields": ["movie_title", "class"], **HISTORY_MATCH}


def token_table(items):
    """[items + 1, fields, width] from per-item lists of per-field piece ids (row 0 padding)."""
    width = max(len(field) for item in items for field in item)
    table = torch.zeros(len(items) + 1, len(items[0]), width, dtype=torch.long)
    for row, item in enumerate(items, start=1):
        for field, pieces in enumerate(item):
            table[row, field, : len(pieces)] = torch.tensor(pieces)
    return table


def test_idf_counts_each_item_once_per_field_and_ignores_padding():
    table = token_table([[[3, 3, 5], [7]], [[3], [7]], [[9], []]])
    idf = inverse_document_frequency(table, vocab_size=10)
    assert idf.shape == (2, 11)
    assert idf[0, 3] == pytest.approx(math.log(4 / 3))  # in 2 of 3 items' first field (twice in one item)
    assert idf[0, 9] == pytest.approx(math.log(4 / 2)) and idf[0, 4] == pytest.approx(math.log(4))
    assert idf[1, 7] == pytest.approx(math.log(4 / 3)) and idf[1, 3] == pytest.approx(math.log(4))


def test_lexical_vectors_are_unit_tfidf_cosines_per_field_with_no_trained_piece_vectors():
    # Pieces 101.. never need a trained embedding: any two items sharing them match.
    table = token_table([[[101, 102], [201]], [[101, 102], [202]], [[103], [201]], [[], [201]]])
    match = LexicalMatch(inverse_document_frequency(table, vocab_size=300), max_seq_length=4, dim=4096)
    vectors = match.item_vectors(table).view(5, 2, 4096)
    assert torch.allclose(vectors[1:4].norm(dim=-1), torch.ones(3, 2))
    assert vectors[4, 0].abs().sum() == 0  # a field without text matches nothing
    cosine = torch.einsum("afd,bfd->abf", vectors, vectors)
    assert cosine[1, 2, 0] == pytest.approx(1.0) and cosine[1, 2, 1] == pytest.approx(0.0, abs=1e-6)
    assert cosine[1, 3, 1] == pytest.approx(1.0) and cosine[1, 3, 0] == pytest.approx(0.0, abs=1e-6)
    assert match.weight.shape == (2, 4)  # the parameters: one weight per field and recency, nothing per piece


def test_lexical_query_weights_each_recent_item_by_field_and_recency():
    table = token_table([[[1, 2], [5]], [[2, 3], [6]], [[3, 4], [5]], [[1], [6]]])
    match = LexicalMatch(inverse_document_frequency(table, vocab_size=10), max_seq_length=3, dim=512)
    with torch.no_grad():
        match.weight.copy_(torch.tensor([[2.0, 0.5, 0.25], [1.0, 3.0, 0.0]]))
    vectors = match.item_vectors(table)
    seq, lengths = torch.tensor([[1, 2, 0], [3, 0, 0]]), torch.tensor([2, 1])
    scores = match.query(vectors[seq], lengths) @ vectors.T
    per_field = torch.einsum("afd,bfd->abf", vectors.view(5, 2, 512), vectors.view(5, 2, 512))
    expected_0 = (2.0 * per_field[2, :, 0] + 1.0 * per_field[2, :, 1]
                  + 0.5 * per_field[1, :, 0] + 3.0 * per_field[1, :, 1])
    expected_1 = 2.0 * per_field[3, :, 0] + 1.0 * per_field[3, :, 1]
    torch.testing.assert_close(scores, torch.stack([expected_0, expected_1]))


def test_repeat_scores_agree_for_candidates_and_for_the_catalog():
    repeat = RepeatMatch(max_seq_length=4)
    with torch.no_grad():
        repeat.weight.copy_(torch.tensor([-3.0, -2.0, -1.0, 5.0]))
    seq, lengths = torch.tensor([[4, 2, 4, 0], [1, 0, 0, 0]]), torch.tensor([3, 1])
    catalog = repeat.catalog_scores(torch.zeros(2, 6), seq, lengths)
    assert catalog[0].tolist() == [0.0, 0.0, -2.0, 0.0, -4.0, 0.0]  # item 4: most recent (-3) and third (-1)
    assert catalog[1].tolist() == [0.0, -3.0, 0.0, 0.0, 0.0, 0.0]  # padding slots add nothing
    candidates = torch.tensor([[4, 2, 5], [1, 4, 0]])
    torch.testing.assert_close(repeat(candidates, seq, lengths), catalog.gather(1, candidates))
    torch.testing.assert_close(repeat(torch.tensor([4, 2]), seq, lengths), catalog[:, [4, 2]])


def test_srt_with_history_match_scores_alike_on_every_path_and_stays_catalog_independent(fast_config):
    _, model, (_, _, test) = build("SRT", "ml40", fast_config, **HISTORY_MATCH)
    _, plain, _ = build("SRT", "ml40", fast_config)
    extra = 2 * fast_config["MAX_ITEM_LIST_LENGTH"] + fast_config["MAX_ITEM_LIST_LENGTH"]  # 2 fields, repeats
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters()) + extra
    with torch.no_grad():
        model.repeat_match.weight.normal_()
    model.eval()
    batch = next(iter(test))[0]
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        seq = batch["item_id_list"]
        candidates = torch.stack([batch["item_id"], seq[:, 0], torch.ones_like(batch["item_id"])], dim=1)
        sampled = model.sampled_predict(batch, candidates)
        single = model.predict(Interaction({**batch.interaction}))
    torch.testing.assert_close(sampled, full.gather(1, candidates))
    torch.testing.assert_close(single, full[torch.arange(len(full)), batch["item_id"]])
    model.train()
    loss = model.calculate_loss(next(iter(build("SRT", "ml40", fast_config, **HISTORY_MATCH)[2][0])))
    loss.backward()
    assert model.lexical_match.weight.grad.abs().sum() > 0 and model.repeat_match.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("shared", [True, False])
def test_training_keeps_the_lexical_part_apart_with_the_loss_of_joined_vectors_and_no_gradient_for_it(fast_config,
                                                                                                   shared):
    _, model, (train, _, _) = build("SRT", "ml40", fast_config, hidden_dropout_prob=0.0, attn_dropout_prob=0.0,
                                    shared_negatives=shared, **HISTORY_MATCH)
    with torch.no_grad():
        model.repeat_match.weight.normal_()
    batch = next(iter(train))
    seq, lengths, pos_ids = batch["item_id_list"], batch["item_length"], batch["item_id"]
    neg_ids = torch.randint(1, model.n_items, (20,) if shared else (len(pos_ids), 20))
    model.negative_sampler.draw = lambda *_: (neg_ids, None)
    model.train()
    loss = model.calculate_loss(batch)
    # The same loss from one vector per item and sequence, as evaluation scores them.
    joined = sampled_softmax_loss(
        model.encode_sequence(model.embed_items(seq), lengths), model.embed_items(pos_ids), model.embed_items(neg_ids),
        pos_ids, neg_ids, log_q=model.negative_sampler.log_q, pos_extra=model.repeat_match(pos_ids.unsqueeze(1), seq,
                                                                                           lengths),
        neg_extra=model.repeat_match(neg_ids, seq, lengths))
    torch.testing.assert_close(loss, joined)
    learned, lexical = model.item_parts(seq)
    assert learned.requires_grad and not lexical.requires_grad


def test_history_match_settings_come_from_a_pretrained_checkpoint(data_root, tmp_path):
    settings = pretraining_settings(data_root, tmp_path)
    checkpoint = run_recbole("SRT", "ml40", config_dict=settings)["saved_model_file"]
    trained = load_checkpoint(checkpoint, "cpu")["state_dict"]
    toy = {k: v for k, v in settings.items() if k not in ("load_col", "text_fields", *HISTORY_MATCH)}
    _, model, _ = build("SRT", "beauty_toy", {}, **toy, text_fields=["title", "brand"], pretrained_model=checkpoint)
    torch.testing.assert_close(model.lexical_match.weight, trained["lexical_match.weight"])
    torch.testing.assert_close(model.repeat_match.weight, trained["repeat_match.weight"])
    assert model.lexical_match.idf.shape[1] == model.item_encoder.token_embedding.num_embeddings  # this catalog's idf
    with pytest.raises(ValueError, match="lexical_match_dim is 32 here but 64 in the checkpoint"):
        build("SRT", "beauty_toy", {}, **toy, text_fields=["title", "brand"], pretrained_model=checkpoint,
              lexical_match_dim=32)
    with pytest.raises(ValueError, match="setting lexical_match_dim: expected an integer >= 0, got -1"):
        build("SRT", "ml40", {**toy, "text_fields": settings["text_fields"], "load_col": settings["load_col"]},
              lexical_match_dim=-1)


def test_recommend_adds_the_same_history_scores_as_evaluation(fast_config):
    from recbole_srt.recommend import recommend

    _, model, (train, _, test) = build("SRT", "beauty_toy", fast_config, **HISTORY_MATCH,
                                       text_fields=["title", "brand"])
    with torch.no_grad():
        model.repeat_match.weight.fill_(50.0)  # history items first: recommend must add them as evaluation does
    model.eval()
    dataset = train._dataset
    interaction = next(iter(test))[0]
    tokens = dataset.field2id_token["item_id"]
    histories = [[tokens[i] for i in row[:n]] for row, n in zip(interaction["item_id_list"].tolist(),
                                                                    interaction["item_length"].tolist())]
    results = recommend(model, histories, k=3, exclude_history=False, dataset=dataset)
    with torch.no_grad():
        full = model.full_sort_predict(interaction)
    for history, row, scores in zip(histories, results, full):
        assert row[0][0] in history
        for item, score in row:
            assert score == pytest.approx(float(scores[dataset.token2id("item_id", item)]), abs=1e-4)


def test_history_match_only_scores_are_the_history_terms_alone(fast_config):
    _, model, (_, _, test) = build("SRT", "ml40", fast_config, **HISTORY_MATCH, history_match_only=True)
    with torch.no_grad():
        model.repeat_match.weight.normal_()
    model.eval()
    batch = next(iter(test))[0]
    seq, lengths = batch["item_id_list"], batch["item_length"]
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        vectors = model.lexical_match.item_vectors(model.item_tokens)
        expected = model.repeat_match.catalog_scores(model.lexical_match.query(vectors[seq], lengths) @ vectors.T,
                                                     seq, lengths)
    torch.testing.assert_close(full, expected)
    with pytest.raises(ValueError, match="neither lexical_match_dim nor repeat_match is set"):
        build("SRT", "ml40", fast_config, history_match_only=True)


def test_transformer_gate_from_zero_starts_fine_tuning_at_the_history_match_scores(data_root, tmp_path):
    settings = pretraining_settings(data_root, tmp_path)
    checkpoint = run_recbole("SRT", "ml40", config_dict=settings)["saved_model_file"]
    toy = {k: v for k, v in settings.items() if k not in ("load_col", "text_fields", *HISTORY_MATCH)}
    toy.update(text_fields=["title", "brand"], pretrained_model=checkpoint)
    _, gated, (train, _, test) = build("SRT", "beauty_toy", {}, **toy, transformer_gate_init=0.0)
    _, alone, _ = build("SRT", "beauty_toy", {}, **toy, history_match_only=True)
    gated.eval(), alone.eval()
    batch = next(iter(test))[0]
    with torch.no_grad():
        torch.testing.assert_close(gated.full_sort_predict(batch), alone.full_sort_predict(batch))
    gated.train()
    gated.calculate_loss(next(iter(train))).backward()
    assert gated.transformer_gate.grad != 0  # the transformer comes in as training asks for it
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gated.trm_encoder.parameters())

    gated_run = run_recbole("SRT", "ml40", config_dict={**settings, "transformer_gate_init": 0.5})
    gated_checkpoint = gated_run["saved_model_file"]
    assert load_checkpoint(gated_checkpoint, "cpu")["state_dict"]["transformer_gate"] != 0.5  # it was trained
    restarted = build("SRT", "beauty_toy", {}, **{**toy, "pretrained_model": gated_checkpoint},
                      transformer_gate_init=0.0)[1]
    assert restarted.transformer_gate.item() == 0.0  # the run's own starting value, not the checkpoint's
    with pytest.raises(ValueError, match="it has a transformer gate"):
        build("SRT", "beauty_toy", {}, **{**toy, "pretrained_model": gated_checkpoint})
    with pytest.raises(ValueError, match="setting transformer_gate_init: expected a number, got 'x'"):
        build("SRT", "ml40", {**toy, "pretrained_model": None, "text_fields": settings["text_fields"],
                              "load_col": settings["load_col"]}, transformer_gate_init="x")
