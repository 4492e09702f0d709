"""Item text, recovered from a RecBole dataset's item features, and turned into a padded token table."""

import html
import re

import torch
from recbole.utils import FeatureSource, FeatureType

_SPACES = re.compile(r"\s+")
_WORDS = re.compile(r"\w+")
TEXT_NORMALIZATIONS = ("plain", "words")


def normalize_text(text, mode="plain"):
    """The tokenizer's input form: HTML entities decoded, whitespace collapsed, lower case; with mode 'words' only
    the `\\w+` words are kept (punctuation dropped, as the SRT authors' pipeline does)."""
    text = html.unescape(text).lower()
    if mode == "words":
        return " ".join(_WORDS.findall(text))
    if mode != "plain":
        raise ValueError(f"text_normalization must be one of {TEXT_NORMALIZATIONS}, got '{mode}'")
    return _SPACES.sub(" ", text).strip()


def item_texts(dataset, text_fields, normalization="plain"):
    """Per item id (row 0 is RecBole's padding item), one normalized string per text field ('' when missing).

    Plain-string fields (`title:token`) and whitespace-split ones (`title:token_seq`, RecBole's pre-tokenised
    form, as in ml-100k) both work: RecBole's per-field remap is undone through `field2id_token`.
    """
    item_file = f"{dataset.dataset_name}.item"
    if dataset.item_feat is None:
        raise ValueError(
            f"SRT needs item text, but no item features were loaded: check that {item_file} exists in "
            f"'{dataset.dataset_path}' and that `load_col` has an `item` entry listing {list(text_fields)}"
        )
    columns = []
    for field in text_fields:
        if field not in dataset.item_feat:
            raise ValueError(
                f"text field '{field}' (config key `text_fields`) is not a loaded item feature of {item_file}; "
                f"loaded item fields: {sorted(dataset.item_feat.columns)}. Add it to `load_col: item:`"
            )
        ftype = dataset.field2type[field]
        if dataset.field2source[field] != FeatureSource.ITEM or ftype not in (FeatureType.TOKEN, FeatureType.TOKEN_SEQ):
            raise ValueError(
                f"text field '{field}' of {item_file} must be `token` (a plain string) or `token_seq` "
                f"(whitespace-split words), not `{ftype.value}`"
            )
        vocab = dataset.field2id_token[field]
        values = dataset.get_item_feature()[field].numpy()
        if ftype == FeatureType.TOKEN:
            texts = ["" if i == 0 else vocab[i] for i in values]
        else:
            texts = [" ".join(vocab[i] for i in row if i != 0) for row in values]
        columns.append([normalize_text(t, normalization) for t in texts])
    return [list(item) for item in zip(*columns)]


def token_table(tokenizer, texts, max_tokens):
    """LongTensor [n_items, n_fields, width] of SentencePiece ids shifted by one (0 is padding), where width is the
    longest field value's length, at most `max_tokens`.

    Returns the table and how many field values were truncated to `max_tokens`.
    """
    n_items, n_fields = len(texts), len(texts[0])
    flat = [field_text for item in texts for field_text in item]
    encoded = tokenizer.encode(flat)
    width = max(1, min(max_tokens, max(len(ids) for ids in encoded)))
    table = torch.zeros(n_items, n_fields, width, dtype=torch.long)
    truncated = 0
    for index, ids in enumerate(encoded):
        if len(ids) > width:
            truncated += 1
            ids = ids[:width]
        if ids:
            table[index // n_fields, index % n_fields, : len(ids)] = torch.tensor(ids) + 1
    return table, truncated
