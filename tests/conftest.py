import os
import sys

import pytest
import recbole
import torch

ML100K = os.path.join(os.path.dirname(recbole.__file__), "dataset_example", "ml-100k")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_RAW_CANDIDATES = (os.path.join(REPO, "..", "shared", "datasets", "raw"),
                         os.path.join(REPO, "shared", "datasets", "raw"))


def pytest_report_header(config):
    return ("tests marked shared_data (need ../shared/datasets/raw or RECBOLE_SRT_RAW_DATA) run with "
            "`pytest -m shared_data`")


@pytest.fixture(scope="session")
def shared_raw():
    """The shared raw datasets: beside the checkout (CI, developers), inside it, or at RECBOLE_SRT_RAW_DATA. Only
    tests marked `shared_data` use it, and they fail (never skip) when it is missing."""
    override = os.environ.get("RECBOLE_SRT_RAW_DATA")
    candidates = [override] if override else SHARED_RAW_CANDIDATES
    found = next((p for p in candidates if os.path.isdir(p)), None)
    if found is None:
        pytest.fail(f"shared raw data not found at {' or '.join(candidates)} (set RECBOLE_SRT_RAW_DATA)")
    return found


def write_atomic(folder, name, inter_rows, item_header, item_rows):
    """Write `name.inter` (user_id, item_id, timestamp) and `name.item` with the given header into folder/name."""
    path = os.path.join(folder, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, f"{name}.inter"), "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for row in inter_rows:
            f.write("\t".join(map(str, row)) + "\n")
    with open(os.path.join(path, f"{name}.item"), "w", encoding="utf-8") as f:
        f.write("\t".join(item_header) + "\n")
        for row in item_rows:
            f.write("\t".join(row) + "\n")
    return path


def ml100k_subset(folder, name, n_users):
    """The interactions of ml-100k's first `n_users` users (real data), with titles and genres of their items."""
    rows = []
    with open(os.path.join(ML100K, "ml-100k.inter"), encoding="utf-8") as f:
        next(f)
        for line in f:
            user, item, _, ts = line.rstrip("\n").split("\t")
            if int(user) <= n_users:
                rows.append((user, item, ts))
    items = {r[1] for r in rows}
    with open(os.path.join(ML100K, "ml-100k.item"), encoding="utf-8") as f:
        header = next(f).rstrip("\n").split("\t")
        item_rows = [fields for fields in (line.rstrip("\n").split("\t") for line in f) if fields[0] in items]
    return write_atomic(folder, name, rows, header, item_rows)


@pytest.fixture(autouse=True)
def clean_argv_and_cwd(monkeypatch, tmp_path):
    """RecBole's Config parses sys.argv itself, and writes logs and checkpoints under the working directory."""
    monkeypatch.setattr(sys, "argv", ["pytest"])
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    ml100k_subset(root, "ml40", 40)
    ml100k_subset(root, "ml80", 80)
    # Synthetic title/brand catalog: 30 items, some without brand, two without any text; 25 users.
    items = []
    for i in range(1, 31):
        title = "" if i in (7, 8) else f"Shade {i} lipstick &amp; gloss" if i % 2 else f"Hydrating face cream no. {i}"
        brand = "" if i in (7, 8) or i % 3 == 0 else ("L&#39;Oreal" if i % 2 else "Nivea")
        items.append((str(i), title, brand))
    inters = [(u, (u * 7 + k * 3) % 30 + 1, 1000 * u + k) for u in range(1, 26) for k in range(8)]
    write_atomic(root, "beauty_toy", inters, ["item_id:token", "title:token", "brand:token"], items)
    # Two sources combined as dataset_scripts combines folders: ids prefixed `games:` and `office:`.
    combined = [(f"{s}:{i}", f"{s} item {i}", "") for s in ("games", "office") for i in range(1, 16)]
    inters = [(f"{s}:u{u}", f"{s}:{(u * 5 + k) % 15 + 1}", 1000 * u + k) for s in ("games", "office")
              for u in range(1, 13) for k in range(6)]
    write_atomic(root, "two_sources", inters, ["item_id:token", "title:token", "brand:token"], combined)
    return str(root)


@pytest.fixture
def fast_config(data_root, tmp_path_factory):
    """Small sizes so one epoch takes about a second on two CPU cores."""
    return {
        "data_path": data_root,
        "epochs": 1,
        "MAX_ITEM_LIST_LENGTH": 10,
        "hidden_size": 16,
        "inner_size": 32,
        "n_layers": 1,
        "n_heads": 2,
        "train_batch_size": 256,
        "eval_batch_size": 256,
        "show_progress": False,
        "train_neg_count": 20,
        "tokenizer_vocab_size": 300,
        "tokenizer_dir": str(tmp_path_factory.getbasetemp() / "tokenizers"),
        "learning_rate": 0.005,
        "seed": 7,
        "state": "WARNING",
    }


@pytest.fixture
def one_thread():
    """Bitwise comparisons: with several threads, CPU reductions differ from run to run (two uninterrupted runs
    differ by up to 1.5e-7 on two threads, measured), so compare runs on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
