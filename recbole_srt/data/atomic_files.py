"""The dataset's atomic files, checked before RecBole reads them: RecBole's own messages for a missing file, an item
file with a header and no rows ("Some feat is empty, please check the filtering settings") or item ids given twice
(the first row kept, silently) do not say which file or what to do."""

import os
from logging import getLogger

import pandas as pd


def check(config):
    """Fail naming the file when the interaction file is missing or the item file has no items; log how many item
    rows repeat an id (RecBole keeps the first row of each id, as dataset_scripts does)."""
    inter_file = os.path.join(config["data_path"], f"{config['dataset']}.inter")
    if not os.path.isfile(inter_file):
        raise FileNotFoundError(
            f"dataset '{config['dataset']}': no interaction file {inter_file} "
            "(set `data_path` to the folder that holds the dataset's folder of atomic files)"
        )
    item_file = os.path.join(config["data_path"], f"{config['dataset']}.item")
    load_col = config["load_col"]
    if not os.path.isfile(item_file) or (isinstance(load_col, dict) and "item" not in load_col):
        return
    ids = _item_ids(item_file, config["ITEM_ID_FIELD"], config["field_separator"] or "\t",
                    config["encoding"] or "utf-8")
    if ids.empty:
        raise ValueError(f"{item_file}: a header but no items; give one item per line under the header, or leave "
                         "`item` out of load_col")
    repeated = ids[ids.duplicated()]
    if len(repeated):
        getLogger().warning(f"{item_file}: {len(repeated)} row(s) repeat an earlier item id "
                            f"(e.g. {repeated.iloc[0]!r}); the first row of each id is kept")


def _item_ids(path, field, separator, encoding):
    with open(path, encoding=encoding) as f:
        header = f.readline().rstrip("\r\n").split(separator)
    names = [h.split(":")[0] for h in header]
    if field not in names:
        raise ValueError(f"{path}: no {field} field in the header {header}")
    return pd.read_csv(path, sep=separator, usecols=[names.index(field)], dtype=str, keep_default_na=False,
                       encoding=encoding).iloc[:, 0]
