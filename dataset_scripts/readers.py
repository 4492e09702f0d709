"""One reader per input format; each returns a RawDataset (interactions + raw item text)."""

import ast
import csv
import json
import os

import pandas as pd

from dataset_scripts.records import RawDataset, ordinal_interactions
from dataset_scripts.sources import InputError, find_file, is_text, lines, open_text, reading

csv.field_size_limit(1 << 24)


def _parse_dict_line(line, python_literal):
    """One JSON object per line (2018, 2014 reviews) or one Python dict literal (2014 metadata, single quotes)."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        if not python_literal:
            raise
        value = ast.literal_eval(line)
        if not isinstance(value, dict):
            raise ValueError("not a dict")
        return value


def _data_lines(path, bad, encoding="utf-8"):
    """(number, line) of the non-blank lines that decode; once all are read, fails if too many were skipped as
    malformed (bytes that are not `encoding` included)."""
    total = 0
    for number, line in lines(path, encoding):
        if line.strip():
            total += 1
            if not is_text(line):
                bad.skip(path, number, f"not {encoding} text")
                continue
            yield number, line
    bad.seen(path, total)


def _keep_first(items, item_id, value, path, number, bad):
    """Items by id as every reader keeps them: the first row of an id; later ones counted (as run_recbole does)."""
    if item_id in items:
        bad.duplicate_item(path, number)
    else:
        items[item_id] = value


def _dict_records(path, bad, python_literal, required):
    """(number, dict) per parsable line that has every `required` field; the others are skipped and counted."""
    for number, line in _data_lines(path, bad):
        try:
            record = _parse_dict_line(line, python_literal)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            bad.skip(path, number, "unparsable line")
            continue
        missing = [k for k in required if k not in record]
        if missing:
            bad.skip(path, number, f"missing field {missing[0]}")
            continue
        yield number, record


def _review_rows(path, bad, python_literal):
    users, items, times, ratings = [], [], [], []
    for number, record in _dict_records(path, bad, python_literal, ("reviewerID", "asin", "unixReviewTime")):
        try:
            times.append(float(record["unixReviewTime"]))
        except (TypeError, ValueError):
            bad.skip(path, number, "unixReviewTime is not a number")
            continue
        users.append(str(record["reviewerID"]))
        items.append(str(record["asin"]))
        ratings.append(float(record.get("overall", "nan") or "nan"))
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times, "rating": ratings})


def _rating_csv_rows(path, bad, columns):
    """McAuley's ratings-only CSVs: no header, 2014 `user,item,rating,time`, 2018 `item,user,rating,time`."""
    rows = {name: [] for name in columns}
    for number, line in _data_lines(path, bad):
        fields = line.split(",")
        try:
            if len(fields) != 4:
                raise ValueError
            values = dict(zip(columns, fields))
            rating, time = float(values["rating"]), float(values["timestamp"])
        except ValueError:
            bad.skip(path, number, "expected 4 comma-separated fields: ids, rating, unix time")
            continue
        rows["user_id"].append(values["user_id"])
        rows["item_id"].append(values["item_id"])
        rows["rating"].append(rating)
        rows["timestamp"].append(time)
    return pd.DataFrame(rows)[["user_id", "item_id", "timestamp", "rating"]]


def _amazon_meta(path, bad, python_literal):
    items = {}
    for number, record in _dict_records(path, bad, python_literal, ("asin",)):
        _keep_first(items, str(record["asin"]), {f: _text_or_none(record.get(f)) for f in ("title", "brand")},
                    path, number, bad)
    return items


def _text_or_none(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    value = str(value)
    return value if value.strip() else None


def _amazon(inputs, bad, year):
    python_literal = year == 2014
    not_meta = [p for p in inputs if not os.path.basename(p).startswith("meta_")]
    if year == 2014:
        reviews = find_file(not_meta, ["reviews_*_5.json.gz", "reviews_*_5.json", "reviews_*.json.gz",
                                       "reviews_*.json", "ratings_*.csv"], "reviews or ratings")
    else:
        reviews = find_file(not_meta, ["*_5.json.gz", "*_5.json", "*.json.gz", "*.json", "*.csv"], "reviews or ratings")
        if os.path.basename(reviews).startswith("meta_"):
            raise InputError(f"no reviews file found in --input {list(inputs)} (only metadata {reviews})")
    meta = find_file(inputs, ["meta_*.json.gz", "meta_*.json"], "metadata (meta_<Category>.json)")
    if reviews.endswith(".csv"):
        columns = (["user_id", "item_id", "rating", "timestamp"] if year == 2014
                   else ["item_id", "user_id", "rating", "timestamp"])
        interactions = _rating_csv_rows(reviews, bad, columns)
    else:
        interactions = _review_rows(reviews, bad, python_literal)
    return RawDataset(interactions, _amazon_meta(meta, bad, python_literal), ["title", "brand"],
                      {"rating": "rating:float"})


def read_amazon2014(inputs, bad, text_fields=None):
    return _amazon(inputs, bad, 2014)


def read_amazon2018(inputs, bad, text_fields=None):
    return _amazon(inputs, bad, 2018)


def _sequence_file(path, bad):
    sequences = []
    for number, line in _data_lines(path, bad):
        tokens = line.split()
        if len(tokens) < 2:
            bad.skip(path, number, "a user with no items")
            continue
        sequences.append((tokens[0], tokens[1:]))
    return sequences


def recbole_item_rows(path, bad, text_fields):
    """(line number, item id, [raw text or None per field]) of a RecBole atomic `.item` file (tab-separated, CSV
    quoting as pandas writes it), streamed; malformed rows are skipped and counted."""
    with open_text(path) as f, reading(path, lambda: reader.line_num):
        reader = csv.reader(f, delimiter="\t")
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{path}: empty item file (expected a header like item_id:token\\ttitle:token)")
        names = [h.split(":")[0] for h in header]
        if "item_id" not in names:
            raise InputError(f"{path}: no item_id field in the header {header}")
        missing = [f for f in text_fields if f not in names]
        if missing:
            raise InputError(f"{path}: text field(s) {missing} not in the header {header} (choose with --text-fields)")
        positions, id_position, total = [names.index(f) for f in text_fields], names.index("item_id"), 0
        for row in reader:
            total += 1
            if len(row) != len(header):
                bad.skip(path, reader.line_num, f"{len(row)} fields instead of {len(header)}")
            elif not all(is_text(value) for value in row):
                bad.skip(path, reader.line_num, "not utf-8 text")
            else:
                yield reader.line_num, row[id_position], [_text_or_none(row[p]) for p in positions]
    bad.seen(path, total)


def read_recbole_item_file(path, bad, text_fields):
    """A RecBole atomic `.item` file: item_id -> text fields."""
    items = {}
    for number, item, values in recbole_item_rows(path, bad, text_fields):
        _keep_first(items, item, dict(zip(text_fields, values)), path, number, bad)
    return items


def read_sequences(inputs, bad, text_fields=None):
    text_fields = text_fields or ["title", "brand"]
    sequences = _sequence_file(find_file(inputs, ["user_sequence.txt.gz", "user_sequence.txt", "*.txt.gz", "*.txt"],
                                         "user sequences"), bad)
    item_file = find_file(inputs, ["*.item.gz", "*.item"], "RecBole item (.item)")
    return RawDataset(ordinal_interactions(sequences), read_recbole_item_file(item_file, bad, text_fields), text_fields)


def _movies(path, bad):
    items = {}
    for number, line in _data_lines(path, bad, encoding="latin-1"):
        fields = line.split("::")
        if len(fields) != 3:
            bad.skip(path, number, "expected MovieID::Title::Genres")
            continue
        genres = " ".join(g for g in fields[2].split("|") if g)
        _keep_first(items, fields[0], {"title": _text_or_none(fields[1]), "genres": _text_or_none(genres)},
                    path, number, bad)
    return items


def read_movielens(inputs, bad, text_fields=None):
    movies = _movies(find_file(inputs, ["movies.dat"], "movies (movies.dat)"), bad)
    ratings = find_file(inputs, ["ratings.dat", "user_sequence.txt.gz", "user_sequence.txt"],
                        "ratings (ratings.dat) or sequences")
    if os.path.basename(ratings) != "ratings.dat":
        return RawDataset(ordinal_interactions(_sequence_file(ratings, bad)), movies, ["title", "genres"])
    users, items, times, values = [], [], [], []
    for number, line in _data_lines(ratings, bad, encoding="latin-1"):
        fields = line.split("::")
        try:
            if len(fields) != 4:
                raise ValueError
            rating, time = float(fields[2]), float(fields[3])
        except ValueError:
            bad.skip(ratings, number, "expected UserID::MovieID::Rating::Timestamp")
            continue
        users.append(fields[0])
        items.append(fields[1])
        values.append(rating)
        times.append(time)
    frame = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times, "rating": values})
    return RawDataset(frame, movies, ["title", "genres"], {"rating": "rating:float"})


def read_recbole(inputs, bad, text_fields=None):
    text_fields = text_fields or ["title", "brand"]
    inter_file = find_file(inputs, ["*.inter"], "RecBole interaction (.inter)")
    item_file = find_file(inputs, ["*.item"], "RecBole item (.item)")
    try:
        frame = pd.read_csv(inter_file, sep="\t", dtype=str, keep_default_na=False, engine="python")
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InputError(f"{inter_file}: not a tab-separated UTF-8 RecBole file ({error})") from error
    header = list(frame.columns)
    names = [h.split(":")[0] for h in header]
    for required in ("user_id", "item_id"):
        if required not in names:
            raise InputError(f"{inter_file}: no {required} field in the header {header}")
    frame.columns = names
    if "timestamp" in names:
        frame["timestamp"] = pd.to_numeric(frame["timestamp"], errors="coerce")
        bad_rows = frame["timestamp"].isna()
        for index in frame.index[bad_rows]:
            bad.skip(inter_file, int(index) + 2, "timestamp is not a number")
        bad.seen(inter_file, len(frame))
        frame = frame[~bad_rows]
    else:
        frame["timestamp"] = frame.groupby("user_id").cumcount().astype("float64")
    extra = {n: h for n, h in zip(names, header) if n not in ("user_id", "item_id", "timestamp")}
    items = read_recbole_item_file(item_file, bad, text_fields)
    return RawDataset(frame[["user_id", "item_id", "timestamp", *extra]].reset_index(drop=True), items, text_fields,
                      extra)


READERS = {
    "amazon2014": read_amazon2014,
    "amazon2018": read_amazon2018,
    "sequences": read_sequences,
    "movielens": read_movielens,
    "recbole": read_recbole,
}
