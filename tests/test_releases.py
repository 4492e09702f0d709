"""The models shipped under pretrained/: each is the one file `pretrained_model:` takes, its record and card tell the
truth about it, and it ranks real Beauty data (the committed sample) zero-shot as its card says it can."""

import hashlib
import json
import math
import os
import sys

import pytest
import sentencepiece as spm
import torch

from conftest import REPO
from dataset_scripts.convert import convert
from recbole_srt import run_recbole
from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.transfer.release import LIMIT_BYTES

RELEASES = sorted(name for name in os.listdir(os.path.join(REPO, "pretrained"))
                  if os.path.isdir(os.path.join(REPO, "pretrained", name)))


def release_path(name):
    return os.path.join(REPO, "pretrained", name, f"{name}.pth")


# Told by the settings each release carries, not by its name.
HISTORY_MATCH = [name for name in RELEASES
                 if torch.load(release_path(name), weights_only=True)["config"].get("lexical_match_dim")]


def test_the_repository_ships_releases_with_and_without_history_match():
    assert len(RELEASES) >= 2 and HISTORY_MATCH and set(RELEASES) - set(HISTORY_MATCH)


@pytest.mark.parametrize("name", RELEASES)
def test_a_release_is_data_only_within_the_size_limit_and_matches_its_record_and_card(name):
    path = release_path(name)
    with open(path, "rb") as f:
        content = f.read()
    with open(os.path.join(REPO, "pretrained", name, f"{name}.json")) as f:
        record = json.load(f)
    assert len(content) <= LIMIT_BYTES and record["bytes"] == len(content)
    assert record["sha256"] == hashlib.sha256(content).hexdigest()
    release = torch.load(path, weights_only=True)  # torch's own safe loader, no allowlist
    assert set(release) == {"config", "state_dict", "other_parameter", "compute"}  # no optimizer or scheduler state
    assert release["config"] == record["settings"]
    assert sum(v.numel() for v in release["state_dict"].values()) == record["parameters"]
    tokenizer = spm.SentencePieceProcessor(model_proto=release["other_parameter"]["tokenizer_proto"])
    assert tokenizer.get_piece_size() > 1000
    with open(os.path.join(REPO, "pretrained", name, "README.md")) as f:
        card = f.read()
    assert f"--pretrained_model=pretrained/{name}/{name}.pth" in card
    assert all(f"## {part}" in card for part in ("Use", "Data", "Settings and compute", "Results", "Reproduce"))


@pytest.fixture(scope="module")
def beauty_sample(tmp_path_factory):
    """The committed 300-user sample of Amazon Beauty, converted as a user converts their catalog."""
    out = tmp_path_factory.mktemp("beauty_sample")
    convert("sequences", [os.path.join(REPO, "tests", "fixtures", "amazon-beauty-sample")], "beauty_fx", out,
            vocab_size=2000)
    return str(out / "beauty_fx" / "beauty_fx.yaml")


def zero_shot(yaml, name, **extra):
    settings = {"pretrained_model": release_path(name), "epochs": 0, "history_match_only": True,
                "show_progress": False, "state": "WARNING", **extra}
    return run_recbole("SRT", "beauty_fx", config_file_list=[yaml], config_dict=settings)["test_result"]["ndcg@5"]


@pytest.mark.parametrize("name", HISTORY_MATCH)
def test_a_history_match_release_ranks_a_new_catalog_zero_shot_with_what_it_learned(beauty_sample, name):
    chance = sum(1 / math.log2(rank + 1) for rank in range(1, 6)) / 2795  # ranked at random among 2,795 items
    learned = zero_shot(beauty_sample, name)
    # The same model with every weight from the release but the history-match ones (their random start).
    unlearned = zero_shot(beauty_sample, name, pretrained_parameters=["trm_encoder"])
    assert learned > 20 * chance and learned > 1.5 * unlearned


def test_the_shipped_model_fine_tunes_a_converted_catalog_in_one_command(beauty_sample):
    name = HISTORY_MATCH[0]
    result = run_recbole("SRT", "beauty_fx", config_file_list=[beauty_sample], config_dict={
        "pretrained_model": release_path(name), "epochs": 1, "train_neg_count": 1000, "show_progress": False,
        "state": "WARNING"})
    release = torch.load(release_path(name), weights_only=True)
    finetuned = load_checkpoint(result["saved_model_file"], "cpu")
    for key in ("hidden_size", "n_layers", "MAX_ITEM_LIST_LENGTH", "lexical_match_dim", "repeat_match"):
        assert finetuned["config"][key] == release["config"][key], key  # taken from the release, not repeated
    moved = [k for k, v in release["state_dict"].items() if not torch.equal(v, finetuned["state_dict"][k])]
    assert "trm_encoder.layer.0.feed_forward.dense_1.weight" in moved


@pytest.mark.parametrize("name", HISTORY_MATCH)
def test_a_release_recommends_over_a_table_of_items_as_over_a_converted_catalog(beauty_sample, name, monkeypatch):
    # No dataset: the release, the items' text and the histories give the scores of the release built on the
    # converted catalog with history_match_only (its best zero-shot ranking).
    from recbole_srt.data.item_text import item_texts
    from recbole_srt.quick_start import prepare
    from recbole_srt.recommend import recommend

    _, dataset, _, model = prepare("SRT", "beauty_fx", config_file_list=[beauty_sample], config_dict={
        "pretrained_model": release_path(name), "history_match_only": True, "state": "WARNING"})
    ids = dataset.field2id_token["item_id"][1:]
    table = {item: dict(zip(model.text_fields, text))
             for item, text in zip(ids, item_texts(dataset, model.text_fields, model.text_normalization)[1:])}
    histories = [list(ids[:4]), [ids[100]], list(ids[200:230])]
    from_catalog = recommend(model, histories, k=10, dataset=dataset)
    # The program's own arguments are not the model's settings (RecBole's Config reads sys.argv).
    monkeypatch.setattr(sys, "argv", ["my_program.py", "--hidden_size=7"])
    from_table = recommend(release_path(name), histories, k=10, items=table)
    for by_catalog, by_table in zip(from_catalog, from_table):
        assert [item for item, _ in by_table] == [item for item, _ in by_catalog]
        assert [score for _, score in by_table] == pytest.approx([score for _, score in by_catalog], abs=1e-5)
    with pytest.raises(ValueError, match="a released model, which has no catalog of its own: give `items`"):
        recommend(release_path(name), histories)
    with pytest.raises(ValueError, match=r"history 0 has item ids not in the catalog: \['nope'\]"):
        recommend(release_path(name), [["nope"]], items=table)
    with pytest.raises(ValueError, match=r"item ids with whitespace \(or none\) in the table: \['a b'\]"):
        recommend(release_path(name), [["a b"]], items={"a b": {"title": "x", "brand": "y"}})
    # Texts with quotes and tabs, as titles have ('8" comb'), reach the model as they are.
    quoted = {"q1": {"title": '"pure" comb 8"', "brand": "a\tb"}, "q2": {"title": 'comb 8" "pure"', "brand": "a b"}}
    assert [item for item, _ in recommend(release_path(name), [["q1"]], items=quoted)[0]] == ["q2"]
    # Ids come back as the table gives them, though the files in between hold them as text.
    numbered = {1: quoted["q1"], 2: quoted["q2"]}
    assert [item for item, _ in recommend(release_path(name), [[1]], items=numbered)[0]] == [2]
    with pytest.raises(ValueError, match=r"the same as text in the table .*\[\[1, '1'\]\]"):
        recommend(release_path(name), [[1]], items={**numbered, "1": quoted["q2"]})
