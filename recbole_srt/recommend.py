"""Top-k recommendations from a trained SRT for given histories, over the dataset's catalog or any table of items
given by their text (new items included: SRT encodes text, not ids). A released model (pretrained/NAME/NAME.pth)
has no catalog of its own: it ranks a table, zero-shot.

    python -m recbole_srt.recommend --checkpoint saved/SRT-....pth --histories histories.txt [--items items.tsv] \\
        [--k 10] [--output recommendations.tsv|.json]

histories.txt: one history per line, item ids separated by spaces, oldest first. items.tsv: a header with item_id
and the model's text fields (RecBole `.item` headers such as `title:token` work), one item per line.
"""

import argparse
import csv
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from logging import getLogger

import sentencepiece as spm
import torch

from recbole_srt.checkpoint import load_checkpoint
from recbole_srt.data.item_text import normalize_text, token_table
from recbole_srt.model.history_match import inverse_document_frequency
from recbole_srt.transfer import pretrained


@dataclass
class Catalog:
    """Candidate items: ids[i] is row i of embeddings; row 0 is padding (id None, never recommended). `prior`: what
    the model's `popularity_prior` adds to each row's score (the dataset's catalog only: new items have no counts)."""

    ids: list
    embeddings: torch.Tensor
    items_without_text: int = 0
    prior: torch.Tensor = None


def load_model(model_or_checkpoint, dataset=None, trust_checkpoint=False):
    """(model in eval mode, its dataset or None) from an SRT model or a checkpoint path (which brings its dataset)."""
    if isinstance(model_or_checkpoint, str):
        from recbole_srt.quick_start import load_data_and_model

        _, model, dataset, _, _, _ = load_data_and_model(model_or_checkpoint, trust_checkpoint)
    else:
        model = model_or_checkpoint
    return checked(model), dataset


def checked(model):
    if type(model).__name__ != "SRT":
        raise ValueError(f"needs an SRT model (it encodes item text), got {type(model).__name__}")
    return model.eval()


def release_model(path, table, histories, fields, trust_checkpoint=False):
    """(model, the table as its catalog): an SRT from a release (its weights and tokenizer, no catalog of its own)
    built on `table` ({id: {field: text}}), for zero-shot recommendations over a catalog known only by its items'
    text, scored as the study found best zero-shot (`history_match_only` when the release has history match).
    RecBole builds a model on a dataset, so the table and the histories (as its users' interactions) are written as
    one in a temporary folder. The model tokenized the table as it was built: the catalog is its own item table, not
    the table tokenized again."""
    from recbole.data import create_dataset
    from recbole.utils import init_seed

    from recbole_srt.config import Config
    from recbole_srt.registry import get_model

    with tempfile.TemporaryDirectory() as folder:
        write_catalog(os.path.join(folder, "catalog"), table, histories, fields)
        config = Config(model="SRT", dataset="catalog", command_line=False, config_dict={
            "data_path": folder, "pretrained_model": path, "trust_checkpoint": trust_checkpoint, "text_fields": fields,
            "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", *fields]}})
        pretrained.adopt_settings(config)
        config["history_match_only"] = bool(config["lexical_match_dim"] or config["repeat_match"])
        init_seed(config["seed"], config["reproducibility"])
        train = create_dataset(config).build()[0]  # the split RecBole builds a model on
        model = checked(get_model("SRT")(config, train).to(config["device"]))
    return model, model_catalog(model, train, table)


def text_fields_of(release):
    fields = release["config"]["text_fields"]
    return [fields] if isinstance(fields, str) else list(fields)


def write_catalog(folder, table, histories, fields):
    """RecBole atomic files of `table`'s items and of `histories`, one user each, in order; quoted as the dataset
    scripts write them (a text may hold quotes or tabs). An id with whitespace is an error naming it (a history file
    could not name it), and so are two ids the same as text (1 and "1"), which the files could not tell apart."""
    spaced = [item for item in table if str(item).split() != [str(item)]]
    if spaced:
        raise ValueError(f"item ids with whitespace (or none) in the table: {spaced[:5]}")
    as_text = {}
    for item in table:
        as_text.setdefault(str(item), []).append(item)
    same = [items for items in as_text.values() if len(items) > 1]
    if same:
        raise ValueError(f"item ids that are the same as text in the table (an atomic file holds ids as text): "
                         f"{same[:5]}")
    os.makedirs(folder)
    with open(os.path.join(folder, "catalog.item"), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["item_id:token", *(f"{field}:token" for field in fields)])
        writer.writerows([item, *(str(text.get(field) or "") for field in fields)] for item, text in table.items())
    with open(os.path.join(folder, "catalog.inter"), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["user_id:token", "item_id:token", "timestamp:float"])
        writer.writerows([user, item, step] for user, history in enumerate(histories)
                         for step, item in enumerate(history))


@torch.no_grad()
def dataset_catalog(model, dataset):
    ids = [None, *dataset.field2id_token[dataset.iid_field][1:]]
    prior = model.popularity_prior * model.log_popularity if model.popularity_prior else None
    return Catalog(ids, model.all_item_embeddings(), prior=prior)


@torch.no_grad()
def model_catalog(model, dataset, table):
    """`table`'s items as `model`, built on them as `dataset`, encodes them; ids are the table's own keys (the
    dataset holds them as text). No prior: a table's items have no counts. Items without text are counted and
    logged by the model as it is built."""
    key_of = {str(item): item for item in table}
    ids = [None, *(key_of[token] for token in dataset.field2id_token[dataset.iid_field][1:])]
    return Catalog(ids, model.all_item_embeddings())


def read_item_table(path, text_fields):
    """{item id: {field: text}} from a TSV file; clear errors for a missing field or a malformed line."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = [h.split(":")[0] for h in next(reader, [])]
        if "item_id" not in header:
            raise ValueError(f"{path}: the header needs an item_id column, got {header}")
        missing = [field for field in text_fields if field not in header]
        if missing:
            raise ValueError(f"{path}: no column for the model's text field(s) {missing} (header {header})")
        table = {}
        for number, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path}, line {number}: {len(row)} fields, the header has {len(header)}")
            values = dict(zip(header, row))
            table[values["item_id"]] = {field: values[field] for field in text_fields}
    return table


@torch.no_grad()
def table_catalog(model, table):
    """The items of `table` ({id: {field: text}}) encoded with the model's tokenizer and text encoder; with lexical
    match, their TF-IDF vectors under the table's own idf (the idf is always the ranked catalog's)."""
    fields, normalization = model.text_fields, model.text_normalization
    texts = [[normalize_text(str(text.get(field) or ""), normalization) for field in fields] for text in table.values()]
    without_text = sum(not any(item) for item in texts)
    tokenizer = spm.SentencePieceProcessor(model_proto=model.tokenizer_proto)
    tokens, _ = token_table(tokenizer, [[""] * len(fields), *texts], model.item_tokens.size(-1))
    device, lexical = model.item_tokens.device, model.lexical_match
    idf = inverse_document_frequency(tokens, tokenizer.get_piece_size()).to(device) if lexical else None
    tokens = tokens.to(device)
    parts = [(model.item_encoder(chunk), None if lexical is None else lexical.item_vectors(chunk, idf))
             for chunk in tokens.split(model.item_chunk_size)]
    embeddings = torch.cat([model.joined(*part) for part in parts])
    embeddings[0] = 0  # padding
    return Catalog([None, *table], embeddings, without_text)


@torch.no_grad()
def recommend(model_or_checkpoint, histories, k=10, items=None, exclude_history=True, dataset=None, batch_size=1024,
              trust_checkpoint=False):
    """Per history (a list of item ids, oldest first): the top-k [(item id, score)], best first.

    `items`: None for the dataset's catalog (a checkpoint brings its dataset; with a model, pass `dataset`), then
    histories use the dataset's item ids; or a table of items ({id: {field: text}} or the path of a TSV file) to
    rank instead, and histories use the table's ids; a released model's path needs the table (`release_model`).
    Items already in a history are left out unless `exclude_history` is False. `trust_checkpoint`: open a checkpoint
    that holds pickled objects (see `load_checkpoint`).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer (how many items per history), got {k!r}")
    release = None
    if isinstance(model_or_checkpoint, str):
        checkpoint = load_checkpoint(model_or_checkpoint, "cpu", trust=trust_checkpoint)
        release = checkpoint if pretrained.is_release(checkpoint) else None
    if release is not None:
        if items is None:
            raise ValueError(f"{model_or_checkpoint} is a released model, which has no catalog of its own: give "
                             "`items` (--items), a table of the items to rank")
        fields = text_fields_of(release)
        items = read_item_table(items, fields) if isinstance(items, str) else items
        check_histories(histories, items)
        model, catalog = release_model(model_or_checkpoint, items, histories, fields, trust_checkpoint)
    else:
        model, dataset = load_model(model_or_checkpoint, dataset, trust_checkpoint)
        if items is None:
            if dataset is None:
                raise ValueError("a model without its dataset needs `items` (a table of items to rank)")
            catalog = dataset_catalog(model, dataset)
        else:
            items = read_item_table(items, model.text_fields) if isinstance(items, str) else items
            catalog = table_catalog(model, items)
    if catalog.items_without_text:
        getLogger().info(f"recommend: {catalog.items_without_text} of {len(catalog.ids) - 1} items have no text; "
                         "they are scored with the learned empty-field vectors")
    row_of = {item: row for row, item in enumerate(catalog.ids) if row > 0}
    check_histories(histories, row_of)
    rows = [[row_of[item] for item in history][-model.max_seq_length:] for history in histories]
    k = min(k, len(catalog.ids) - 1)
    results = []
    device = catalog.embeddings.device
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(r) for r in chunk)
        seq = torch.tensor([r + [0] * (width - len(r)) for r in chunk]).to(device)  # one copy per batch
        lengths = (seq > 0).sum(dim=1)  # row 0 is padding, never a history item
        scores = model.with_repeats(model.encode_sequence(catalog.embeddings[seq], lengths) @ catalog.embeddings.T,
                                    seq, lengths)
        if catalog.prior is not None:
            scores = scores + catalog.prior
        if exclude_history:
            scores.scatter_(1, seq, float("-inf"))
        scores[:, 0] = float("-inf")
        top_scores, top_rows = scores.topk(k, dim=1)
        for score_row, item_row in zip(top_scores.tolist(), top_rows.tolist()):
            results.append([(catalog.ids[r], s) for r, s in zip(item_row, score_row) if s != float("-inf")])
    return results


def check_histories(histories, catalog):
    """Each history non-empty, every id in `catalog` (a mapping keyed by item id)."""
    for number, history in enumerate(histories):
        unknown = [item for item in history if item not in catalog]
        if unknown:
            raise ValueError(f"history {number} has item ids not in the catalog: {unknown[:5]}")
        if not history:
            raise ValueError(f"history {number} is empty")


def read_histories(path):
    """One history per line; a blank line is an error naming it (dropping it would renumber the histories after)."""
    histories = []
    with open(path, encoding="utf-8") as f:
        try:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    raise ValueError(f"{path}, line {number}: an empty history (one history per line: item ids, "
                                     "oldest first)")
                histories.append(line.split())
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}, after line {len(histories)}: not UTF-8 text ({error.reason})") from error
    if not histories:
        raise ValueError(f"{path}: no histories")
    return histories


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m recbole_srt.recommend", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--histories", required=True, help="one history per line: item ids, oldest first")
    parser.add_argument("--items", help="TSV of items to rank (item_id and the model's text fields)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--include-history", action="store_true", help="also recommend items already in a history")
    parser.add_argument("--output", help=".tsv (history, rank, item_id, score) or .json; default: TSV on stdout")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="open a checkpoint that holds pickled objects (RecBole's, or ours before data-only ones)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        histories = read_histories(args.histories)
        results = recommend(args.checkpoint, histories, args.k, args.items, not args.include_history,
                            trust_checkpoint=args.trust_checkpoint)
    except (ValueError, FileNotFoundError) as error:
        print(f"recommend: error: {error}", file=sys.stderr)
        return 2
    if args.output and args.output.endswith(".json"):
        with open(args.output, "w") as f:
            json.dump([[{"item_id": i, "score": s} for i, s in row] for row in results], f)
        return 0
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        out.write("history\trank\titem_id\tscore\n")
        for number, row in enumerate(results):
            for rank, (item, score) in enumerate(row, start=1):
                out.write(f"{number}\t{rank}\t{item}\t{score:.6f}\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
