"""recommend(): top-k from a trained SRT over its dataset's catalog or a table of new items; its command line."""

import json

import pytest
import torch

from helpers import TOY_TEXT
from recbole_srt import run_recbole
from recbole_srt.recommend import main as recommend_main, recommend


def train_toy(data_root, folder, **overrides):
    settings = {"data_path": data_root, "epochs": 2, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16,
                "inner_size": 32, "n_layers": 1, "n_heads": 2, "train_neg_count": 10, "tokenizer_vocab_size": 200,
                "seed": 3, "state": "WARNING", "show_progress": False, "tokenizer_dir": str(folder / "tok"),
                "checkpoint_dir": str(folder / "saved"), **TOY_TEXT, "text_fields": ["title", "brand"], **overrides}
    return run_recbole("SRT", "beauty_toy", config_dict=settings)["saved_model_file"]


@pytest.fixture(scope="module")
def toy_checkpoint(data_root, tmp_path_factory):
    return train_toy(data_root, tmp_path_factory.mktemp("rec"))


def test_dataset_catalog_recommendations_match_the_models_full_sort(toy_checkpoint):
    from recbole_srt.quick_start import load_data_and_model

    _, model, dataset, _, _, test = load_data_and_model(toy_checkpoint)
    interaction = next(iter(test))[0]
    tokens = dataset.field2id_token["item_id"]
    histories = [[tokens[i] for i in row[:n]] for row, n in zip(interaction["item_id_list"].tolist(),
                                                                    interaction["item_length"].tolist())]
    results = recommend(toy_checkpoint, histories, k=5)
    model.eval()
    with torch.no_grad():
        full = model.full_sort_predict(interaction)
    for history, row, scores in zip(histories, results, full):
        assert len(row) == 5 and not set(history) & {item for item, _ in row}
        assert [s for _, s in row] == sorted((s for _, s in row), reverse=True)
        for item, score in row:
            assert score == pytest.approx(float(scores[dataset.token2id("item_id", item)]), abs=1e-4)


def test_a_table_of_new_items_is_ranked_by_their_text(toy_checkpoint, tmp_path):
    table = {"new-1": {"title": "Shade 99 lipstick gloss", "brand": "Nivea"},
             "new-2": {"title": "Hydrating face cream", "brand": ""},
             "new-3": {"title": "", "brand": ""}}
    results = recommend(toy_checkpoint, [["new-1"], ["new-2", "new-1"]], k=3, items=table)
    assert [item for item, _ in results[0]] and {item for item, _ in results[0]} == {"new-2", "new-3"}
    assert [item for item, _ in results[1]] == ["new-3"]  # the rest is history
    path = tmp_path / "items.tsv"
    path.write_text("item_id:token\ttitle:token\tbrand:token\n" +
                    "".join(f"{i}\t{t['title']}\t{t['brand']}\n" for i, t in table.items()))
    from_file = recommend(toy_checkpoint, [["new-1"]], k=3, items=str(path))[0]
    assert [i for i, _ in from_file] == [i for i, _ in results[0]]
    assert [s for _, s in from_file] == pytest.approx([s for _, s in results[0]], abs=1e-6)


def test_with_history_match_a_table_of_the_datasets_own_items_ranks_as_its_catalog(data_root, tmp_path):
    # The table's items get their lexical-match coordinates too, under the table's own idf: the whole catalog's here.
    from recbole_srt.data.item_text import item_texts
    from recbole_srt.quick_start import load_data_and_model

    checkpoint = train_toy(data_root, tmp_path, lexical_match_dim=32, repeat_match=True)
    _, model, dataset, _, _, _ = load_data_and_model(checkpoint)
    ids = dataset.field2id_token["item_id"][1:]
    texts = item_texts(dataset, model.text_fields, model.text_normalization)[1:]
    table = {item: dict(zip(model.text_fields, text)) for item, text in zip(ids, texts)}
    histories = [list(ids[:3]), [ids[5]], list(ids[10:20])]
    from_dataset = recommend(checkpoint, histories, k=8)
    from_table = recommend(checkpoint, histories, k=8, items=table)
    for by_dataset, by_table in zip(from_dataset, from_table):
        assert [item for item, _ in by_table] == [item for item, _ in by_dataset]
        assert [score for _, score in by_table] == pytest.approx([score for _, score in by_dataset], abs=1e-5)


def test_bad_histories_and_tables_are_clear_errors(toy_checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"history 1 has item ids not in the catalog: \['nope'\]"):
        recommend(toy_checkpoint, [["1"], ["nope"]], k=3)
    bad = tmp_path / "bad.tsv"
    bad.write_text("item_id\ttitle\tbrand\nx\tonly two\n")
    with pytest.raises(ValueError, match="line 2: 2 fields, the header has 3"):
        recommend(toy_checkpoint, [["x"]], items=str(bad))
    bad.write_text("item_id\ttitle\nx\tno brand column\n")
    with pytest.raises(ValueError, match=r"text field\(s\) \['brand'\]"):
        recommend(toy_checkpoint, [["x"]], items=str(bad))


def test_command_line_writes_tsv_and_json(toy_checkpoint, tmp_path):
    histories = tmp_path / "h.txt"
    histories.write_text("1 2 3\n4\n")
    assert recommend_main(["--checkpoint", toy_checkpoint, "--histories", str(histories), "--k", "4",
                           "--output", str(tmp_path / "r.tsv")]) == 0
    lines = (tmp_path / "r.tsv").read_text().splitlines()
    assert lines[0] == "history\trank\titem_id\tscore" and len(lines) == 1 + 2 * 4
    assert recommend_main(["--checkpoint", toy_checkpoint, "--histories", str(histories), "--k", "4",
                           "--output", str(tmp_path / "r.json")]) == 0
    assert [len(row) for row in json.loads((tmp_path / "r.json").read_text())] == [4, 4]
    histories.write_text("unknown-item\n")
    assert recommend_main(["--checkpoint", toy_checkpoint, "--histories", str(histories)]) == 2
