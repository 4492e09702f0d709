import gzip
import json
import os

import pandas as pd
import pytest

from dataset_scripts.cli import main
from dataset_scripts.convert import convert
from dataset_scripts.filtering import kcore, sample_users
from dataset_scripts.sources import InputError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def write(path, text, encoding="utf-8"):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding=encoding, newline="") as f:
        f.write(text)
    return str(path)


def read_inter(out, name):
    return pd.read_csv(os.path.join(out, name, f"{name}.inter"), sep="\t", dtype=str)


def read_item(out, name):
    return pd.read_csv(os.path.join(out, name, f"{name}.item"), sep="\t", dtype=str, keep_default_na=False)


def stats_of(out, name):
    with open(os.path.join(out, name, f"{name}.stats.json")) as f:
        return json.load(f)


@pytest.fixture
def amazon2014(tmp_path):
    folder = tmp_path / "amazon2014"
    folder.mkdir()
    reviews = []
    for user, items in {"U1": ["A", "B", "C"], "U2": ["B", "C"], "U3": ["A", "C", "D"]}.items():
        for t, item in enumerate(items):
            reviews.append(json.dumps({"reviewerID": user, "asin": item, "overall": 5.0, "unixReviewTime": 1000 + t,
                                       "reviewText": "ok"}))
    write(folder / "reviews_Toy_5.json.gz", "\n".join(reviews) + "\n")
    meta = [
        "{'asin': 'A', 'title': 'Rouge &amp; Gloss  Lipstick', 'brand': 'L&#39;Oreal', 'categories': [['Beauty']]}",
        "{'asin': 'B', 'title': \"Nivea's Cream\", 'categories': [['Beauty', 'Skin']]}",
        "{'asin': 'C', 'brand': 'Nivea', 'categories': [['Beauty']]}",
        "{'asin': 'D', 'title': 'Hair\\tOil', 'brand': '', 'price': 3.5}",
    ]
    write(folder / "meta_Toy.json.gz", "\n".join(meta) + "\n")
    return folder


def test_amazon2014_reviews_and_python_literal_metadata(amazon2014, tmp_path):
    stats = convert("amazon2014", [str(amazon2014)], "toy", tmp_path / "out", vocab_size=60)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (3, 4, 8)
    items = read_item(tmp_path / "out", "toy").set_index("item_id:token")
    assert items.loc["A", "title:token"] == "rouge & gloss lipstick"
    assert items.loc["A", "brand:token"] == "l'oreal"
    assert items.loc["B", "title:token"] == "nivea's cream" and items.loc["B", "brand:token"] == ""
    assert items.loc["D", "title:token"] == "hair oil"
    assert stats["missing_text_per_field"] == {"title": 1, "brand": 2}
    assert stats["items_without_text"] == 0
    inter = read_inter(tmp_path / "out", "toy")
    assert list(inter.columns) == ["user_id:token", "item_id:token", "timestamp:float", "rating:float"]
    for suffix in ("spm.model", "stats.json", "yaml", "growth.csv", "growth.png"):
        assert os.path.isfile(tmp_path / "out" / "toy" / f"toy.{suffix}")
    assert not any(str(v) == "nan" for v in items.to_numpy().ravel())


def test_amazon2018_json_and_ratings_csv(tmp_path):
    folder = tmp_path / "a18"
    folder.mkdir()
    write(folder / "Toy.csv", "A,U1,5.0,100\nB,U1,4.0,101\nA,U2,3.0,102\n")  # item,user,rating,time
    write(folder / "meta_Toy.json",
          "\n".join(json.dumps({"asin": a, "title": f"Item {a}", "brand": "Acme"}) for a in "AB") + "\n")
    stats = convert("amazon2018", [str(folder / "Toy.csv"), str(folder / "meta_Toy.json")], "t18", tmp_path / "out",
                    vocab_size=40)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (2, 2, 3)
    inter = read_inter(tmp_path / "out", "t18")
    assert inter[inter["user_id:token"] == "U1"]["item_id:token"].tolist() == ["A", "B"]
    json_folder = tmp_path / "a18json"
    json_folder.mkdir()
    write(json_folder / "Toy_5.json", json.dumps({"reviewerID": "U9", "asin": "A", "unixReviewTime": 5}) + "\n")
    write(json_folder / "meta_Toy.json", json.dumps({"asin": "A", "title": "Only item"}) + "\n")
    assert convert("amazon2018", [str(json_folder)], "t18j", tmp_path / "out", vocab_size=20)["n_interactions"] == 1


def test_sequences_keep_order_and_read_quoted_item_file(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    write(folder / "user_sequence.txt", "u1 i3 i1 i2\nu2 i2 i3\n")
    write(folder / "Toy.item", 'item_id:token\ttitle:token\tprice:float\tbrand:token\n'
          'i1\t"Line one\nline two"\t1.0\tAcme\n'
          'i2\t"Say ""hi"" &amp; go"\t2.0\t\n'
          'i3\tPlain\t3.0\tZed\n')
    stats = convert("sequences", [str(folder)], "seq", tmp_path / "out", vocab_size=40)
    inter = read_inter(tmp_path / "out", "seq")
    u1 = inter[inter["user_id:token"] == "u1"]
    assert u1["item_id:token"].tolist() == ["i3", "i1", "i2"] and u1["timestamp:float"].tolist() == ["0", "1", "2"]
    items = read_item(tmp_path / "out", "seq").set_index("item_id:token")
    assert items.loc["i1", "title:token"] == "line one line two"
    assert items.loc["i2", "title:token"] == 'say "hi" & go'
    assert stats["missing_text_per_field"]["brand"] == 1


def test_movielens_latin1_and_genres(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    write(folder / "movies.dat",
          "1::Toy Story (1995)::Animation|Children's|Comedy\n73::Misérables, Les (1995)::Drama|Musical\n",
          encoding="latin-1")
    write(folder / "ratings.dat", "1::73::5::978300760\n1::1::3::978300000\n2::1::4::978300001\n")
    stats = convert("movielens", [str(folder)], "ml", tmp_path / "out", vocab_size=40)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (2, 2, 3)
    items = read_item(tmp_path / "out", "ml").set_index("item_id:token")
    assert items.loc["73", "title:token"] == "misérables, les (1995)"
    assert items.loc["1", "genres:token"] == "animation children's comedy"
    inter = read_inter(tmp_path / "out", "ml")
    assert inter[inter["user_id:token"] == "1"]["item_id:token"].tolist() == ["1", "73"]  # time order


def test_recbole_format_normalises_text_and_keeps_columns(tmp_path):
    folder = tmp_path / "rb"
    folder.mkdir()
    write(folder / "rb.inter",
          "user_id:token\titem_id:token\trating:float\ttimestamp:float\nu\ta\t4\t10\nu\tb\t5\t11\n")
    write(folder / "rb.item", "item_id:token\ttitle:token\tbrand:token\na\tA  &amp; B\tX\nb\tC\t\n")
    convert("recbole", [str(folder)], "rb", tmp_path / "out", vocab_size=20)
    items = read_item(tmp_path / "out", "rb").set_index("item_id:token")
    assert items.loc["a", "title:token"] == "a & b"
    assert "rating:float" in read_inter(tmp_path / "out", "rb").columns


def test_malformed_lines_are_counted_and_limited(amazon2014, tmp_path):
    path = amazon2014 / "reviews_Toy_5.json.gz"
    with gzip.open(path, "rt") as f:
        good = f.read()
    write(path, good + "{not json\n" + json.dumps({"asin": "A", "unixReviewTime": 1}) + "\n")
    stats = convert("amazon2014", [str(amazon2014)], "bad", tmp_path / "out", vocab_size=60, max_bad_fraction=0.25)
    entry = stats["malformed_lines"][str(path)]
    assert entry["bad"] == 2 and entry["first"] == [9, 10] and entry["total"] == 10
    assert entry["reasons"] == {"unparsable line": 1, "missing field reviewerID": 1}
    with pytest.raises(InputError, match=r"reviews_Toy_5\.json\.gz: 2 of 10 lines are malformed"):
        convert("amazon2014", [str(amazon2014)], "bad2", tmp_path / "out", vocab_size=60, max_bad_fraction=0.1)
    assert not os.path.exists(tmp_path / "out" / "bad2")


def test_clear_errors_for_missing_files_fields_and_formats(tmp_path, capsys):
    with pytest.raises(InputError, match="meta_"):
        folder = tmp_path / "only_reviews"
        folder.mkdir()
        write(folder / "reviews_X_5.json", json.dumps({"reviewerID": "u", "asin": "a", "unixReviewTime": 1}) + "\n")
        convert("amazon2014", [str(folder)], "x", tmp_path / "out")
    seq = tmp_path / "seq"
    seq.mkdir()
    write(seq / "user_sequence.txt", "u a b\n")
    write(seq / "X.item", "item_id:token\tname:token\na\tfoo\n")
    with pytest.raises(InputError, match=r"X\.item: text field\(s\) \['title', 'brand'\]"):
        convert("sequences", [str(seq)], "x", tmp_path / "out")
    assert main(["sequences", "--input", str(tmp_path / "nowhere"), "--name", "x", "--output-dir", str(tmp_path)]) == 2
    assert "do not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["csvish", "--input", ".", "--name", "x", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2


def test_kcore_is_iterative_and_duplicates_are_dropped(tmp_path):
    rows = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a"), ("u3", "c")]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(timestamp=1.0)
    # k=2: item c (1 interaction) goes, then u3 has 1 left and goes, then a and b keep 2 each.
    kept = sorted(map(tuple, kcore(frame, 2)[["user_id", "item_id"]].to_numpy()))
    assert kept == [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")]
    folder = tmp_path / "seq"
    folder.mkdir()
    write(folder / "X.inter", "user_id:token\titem_id:token\ttimestamp:float\nu\ta\t1\nu\ta\t1\nu\tb\t2\n")
    write(folder / "X.item", "item_id:token\ttitle:token\tbrand:token\na\tA\t\nb\tB\t\n")
    assert convert("recbole", [str(folder)], "dup", tmp_path / "out", vocab_size=10)["duplicates_removed"] == 1


def test_user_samples_are_nested_and_keep_whole_histories():
    frame = pd.DataFrame({"user_id": [f"u{i % 50}" for i in range(500)], "item_id": [f"i{i % 37}" for i in range(500)],
                          "timestamp": range(500)})
    small, large = sample_users(frame, 10, seed=3), sample_users(frame, 0.5, seed=3)
    assert small["user_id"].nunique() == 10 and large["user_id"].nunique() == 25
    assert set(small["user_id"]) <= set(large["user_id"])
    assert (small.groupby("user_id").size() == 10).all()  # every interaction of a chosen user is kept
    assert set(sample_users(frame, 10, seed=4)["user_id"]) != set(small["user_id"])
    with pytest.raises(ValueError, match="between 1 and 50"):
        sample_users(frame, 51, seed=3)


def test_rerun_is_byte_identical_and_interrupted_run_leaves_nothing(amazon2014, tmp_path, monkeypatch):
    out = tmp_path / "out"
    convert("amazon2014", [str(amazon2014)], "toy", out, vocab_size=60)
    first = {name: (out / "toy" / name).read_bytes() for name in os.listdir(out / "toy")}
    convert("amazon2014", [str(amazon2014)], "toy", out, vocab_size=60)
    assert {name: (out / "toy" / name).read_bytes() for name in os.listdir(out / "toy")} == first

    import dataset_scripts.convert as convert_module

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_module, "plot_growth", broken)
    with pytest.raises(KeyboardInterrupt):
        convert("amazon2014", [str(amazon2014)], "toy", out, vocab_size=30)
    assert sorted(os.listdir(out)) == ["toy"]  # no temporary folder left behind
    assert {name: (out / "toy" / name).read_bytes() for name in os.listdir(out / "toy")} == first


def test_shared_tokenizer_is_reused_not_retrained(amazon2014, tmp_path):
    convert("amazon2014", [str(amazon2014)], "first", tmp_path / "out", vocab_size=60)
    model = str(tmp_path / "out" / "first" / "first.spm.model")
    stats = convert("amazon2014", [str(amazon2014)], "second", tmp_path / "out", tokenizer=model)
    assert stats["tokenizer"] == {"source": "given", "path": model}
    assert not os.path.exists(tmp_path / "out" / "second" / "second.spm.model")


def test_tokenizer_text_of_another_catalog_gets_pieces_without_its_interactions(amazon2014, tmp_path):
    import sentencepiece as spm

    other = tmp_path / "other"
    other.mkdir()
    write(other / "reviews_Other_5.json.gz", json.dumps({"reviewerID": "V", "asin": "Z", "overall": 5.0,
                                                         "unixReviewTime": 1}) + "\n")
    write(other / "meta_Other.json.gz", "{'asin': 'Z', 'title': 'zanzibarian zanzibarian zanzibarian serum'}\n")
    out = tmp_path / "out"
    plain = convert("amazon2014", [str(amazon2014)], "plain", out, vocab_size=60)
    stats = convert("amazon2014", [str(amazon2014)], "with", out, vocab_size=60, tokenizer_text=[str(other)])
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (plain["n_users"], plain["n_items"],
                                                                             plain["n_interactions"])
    assert stats["tokenizer"]["extra_text"] == {str(other): 1}

    def pieces(name):
        model = spm.SentencePieceProcessor(model_file=str(out / name / f"{name}.spm.model"))
        return len(model.encode("zanzibarian"))

    assert pieces("with") < pieces("plain")
    with pytest.raises(InputError, match="--tokenizer-text"):
        convert("amazon2014", [str(amazon2014)], "x", out, tokenizer=str(out / "plain" / "plain.spm.model"),
                tokenizer_text=[str(other)])


@pytest.mark.shared_data
@pytest.mark.parametrize("fmt, folder, name, expected", [
    ("sequences", "amazon-beauty-2014", "Amazon_Beauty", (22363, 12101, 198502)),
    ("movielens", "movielens-1m", "ml-1m", (6040, 3706, 1000209)),
])
def test_real_shared_datasets_reproduce_their_counts(shared_raw, tmp_path, fmt, folder, name, expected):
    source = os.path.join(shared_raw, folder)
    stats = convert(fmt, [source], name, tmp_path / "out", seed=1)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == expected
    assert os.path.getsize(tmp_path / "out" / name / f"{name}.growth.png") > 1000
    growth = pd.read_csv(tmp_path / "out" / name / f"{name}.growth.csv")
    assert growth["distinct_items"].iloc[-1] == expected[1] and growth["distinct_items"].is_monotonic_increasing


def train_one_epoch_from_yaml(out, name):
    from recbole_srt import run_recbole

    small = {"epochs": 1, "MAX_ITEM_LIST_LENGTH": 10, "hidden_size": 16, "inner_size": 32, "n_layers": 1,
             "train_batch_size": 512, "eval_batch_size": 512, "train_neg_count": 50, "show_progress": False,
             "state": "WARNING"}
    result = run_recbole("SRT", name, config_file_list=[str(out / name / f"{name}.yaml")], config_dict=small)
    assert set(result["test_result"]) >= {"ndcg@5", "hit@5"}


def test_committed_real_beauty_sample_converts_and_trains(tmp_path):
    """Real Amazon text and sequences shipped with the tests (tests/fixtures): the yaml written next to the data is
    all run_recbole needs."""
    out = tmp_path / "out"
    stats = convert("sequences", [os.path.join(FIXTURES, "amazon-beauty-sample")], "beauty_fx", out, vocab_size=2000)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (300, 2795, 4161)
    items = read_item(out, "beauty_fx")
    assert (items["title:token"] == "").sum() == 3
    train_one_epoch_from_yaml(out, "beauty_fx")


@pytest.mark.shared_data
def test_srt_trains_on_converted_beauty_with_its_yaml(shared_raw, tmp_path):
    """The same on a 1,500-user sample of the whole shared Beauty data."""
    out = tmp_path / "out"
    convert("sequences", [os.path.join(shared_raw, "amazon-beauty-2014")], "beauty_s", out, sample=1500, seed=1,
            vocab_size=3000)
    train_one_epoch_from_yaml(out, "beauty_s")


def test_synthetic_catalog_is_seeded_exact_and_popularity_skewed(tmp_path):
    from dataset_scripts.synthetic import main as synthetic

    args = ["--items", "3000", "--users", "400", "--interactions", "12000", "--seed", "5"]
    assert synthetic([*args, "--output", str(tmp_path / "a")]) == 0
    assert synthetic([*args, "--output", str(tmp_path / "b")]) == 0
    for name in ("user_sequence.txt.gz", "synthetic.item.gz"):
        with gzip.open(tmp_path / "a" / name) as a, gzip.open(tmp_path / "b" / name) as b:
            assert a.read() == b.read()
    stats = convert("sequences", [str(tmp_path / "a")], "synth", tmp_path / "out", vocab_size=500)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (400, 3000, 12000)
    assert stats["sequence_length"]["min"] >= 3 and stats["items_without_text"] == 0
    counts = read_inter(tmp_path / "out", "synth")["item_id:token"].value_counts()
    assert counts.iloc[:30].sum() > 5 * 12000 * 30 / 3000  # the top 1% of items: over 5x a uniform share
    assert synthetic(["--items", "3000", "--users", "400", "--interactions", "1000",
                      "--output", str(tmp_path / "c")]) == 2


def test_several_folders_combine_into_one_dataset_with_distinct_ids(tmp_path):
    """The Beauty sample and a synthetic catalog whose ids collide with nothing but could: both kept, prefixed,
    counted per source, one tokenizer over both."""
    from dataset_scripts.synthetic import main as synthetic

    synth = tmp_path / "synth-shop"
    assert synthetic(["--items", "200", "--users", "60", "--interactions", "600", "--seed", "2",
                      "--output", str(synth)]) == 0
    beauty = os.path.join(FIXTURES, "amazon-beauty-sample")
    stats = convert("sequences", [beauty, str(synth)], "combined", tmp_path / "out", vocab_size=2000)
    sources = stats["sources"]
    assert sources["amazon-beauty-sample"]["interactions"] == 4161 and sources["synth-shop"]["interactions"] == 600
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (360, 2995, 4761)
    items = read_item(tmp_path / "out", "combined")["item_id:token"]
    assert items.str.startswith("synth-shop:").sum() == 200
    assert items.str.startswith("amazon-beauty-sample:").sum() == 2795
    alone = convert("sequences", [beauty], "beauty_alone", tmp_path / "out", vocab_size=2000)
    assert alone["sources"] is None and alone["n_items"] == 2795


def test_inputs_are_never_silently_ignored(tmp_path):
    beauty = os.path.join(FIXTURES, "amazon-beauty-sample")
    stray = tmp_path / "notes.txt.csv"
    stray.write_text("not a dataset file\n")
    with pytest.raises(InputError, match="mixes dataset folders"):
        convert("sequences", [beauty, str(stray)], "x", tmp_path / "out")
    files = [os.path.join(beauty, f) for f in ("user_sequence.txt.gz", "Amazon_Beauty.item.gz")]
    with pytest.raises(InputError, match="not used"):
        convert("sequences", [*files, str(stray)], "x", tmp_path / "out")
    assert convert("sequences", files, "x", tmp_path / "out", vocab_size=2000)["n_interactions"] == 4161


@pytest.mark.shared_data
def test_games_and_office_combine_for_pre_training(shared_raw, tmp_path):
    stats = convert("sequences", [os.path.join(shared_raw, "amazon-games-2018"),
                                  os.path.join(shared_raw, "amazon-office-2014")], "pretrain", tmp_path / "out",
                    vocab_size=30000)
    assert stats["sources"]["amazon-games-2018"]["interactions"] == 440264
    assert stats["sources"]["amazon-office-2014"]["interactions"] == 53258
    assert stats["n_interactions"] == 440264 + 53258
