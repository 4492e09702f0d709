"""Every bad input tried as a careful new user would (issue 26), run as the user runs it, with its exit code and
message: the table in docs/reliability.md.

    python benchmarks/bad_inputs.py        # about 3 minutes on 2 CPU cores; writes results/bad_inputs.json

Each case runs in a fresh folder as its own process (the command line a user types); the message is the last line
the command wrote to stderr that says "error:" (or its last line). The tests (tests/test_bad_inputs.py,
test_checkpoints.py) assert the same behaviour.
"""

import gzip
import os
import subprocess
import sys
import tempfile
import textwrap
import time

from common import machine_line, markdown_table, write_results

PY = sys.executable
TINY = ["--config_files=toy.yaml", "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1",
        "--n_heads=2", "--train_neg_count=10", "--tokenizer_vocab_size=60", "--epochs=1", "--show_progress=False"]
ITEM_HEADER = "item_id:token\ttitle:token\tbrand:token\n"


def atomic(folder, name, items):
    """A dataset of 20 users over items 1-20 with the given .item rows, and NAME.yaml that loads it."""
    os.makedirs(os.path.join(folder, name))
    with open(os.path.join(folder, f"{name}.yaml"), "w") as f:
        f.write("load_col: {inter: [user_id, item_id, timestamp], item: [item_id, title, brand]}\n")
    with open(os.path.join(folder, name, f"{name}.inter"), "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        f.writelines(f"u{u}\t{(u + k) % 20 + 1}\t{100 * u + k}\n" for u in range(20) for k in range(6))
    with open(os.path.join(folder, name, f"{name}.item"), "w") as f:
        f.write(ITEM_HEADER + "".join("\t".join(row) + "\n" for row in items))


GOOD_ITEMS = [(str(i), f"thing {i}", "brand") for i in range(1, 21)]


def trained_checkpoint(folder):
    atomic(folder, "toy", GOOD_ITEMS)
    subprocess.run([PY, "-m", "recbole_srt.cli", "--model=SRT", "--dataset=toy", "--data_path=.", *TINY,
                    "--checkpoint_dir=saved"], cwd=folder, check=True, capture_output=True)
    return os.path.join("saved", next(f for f in os.listdir(os.path.join(folder, "saved")) if f.endswith(".pth")))


def write(folder, name, content):
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(os.path.join(folder, name), mode) as f:
        f.write(content)


def truncated_gzip(folder):
    os.makedirs(os.path.join(folder, "raw"))
    lines = "".join(f"u{u} " + " ".join(f"i{(u + k) % 50}" for k in range(5)) + "\n" for u in range(3000))
    data = gzip.compress(lines.encode())
    write(folder, "raw/user_sequence.txt.gz", data[: len(data) // 2])
    write(folder, "raw/X.item", ITEM_HEADER + "".join(f"i{i}\tthing {i}\tb\n" for i in range(50)))


def non_utf8_title(folder):
    os.makedirs(os.path.join(folder, "raw"))
    write(folder, "raw/user_sequence.txt", "".join(f"u{u} a b c\n" for u in range(20)))
    write(folder, "raw/X.item", ITEM_HEADER.encode() + b"a\tLip gloss\tX\nb\tCr\xe8me\tY\nc\tSoap\tZ\n")


def crafted(folder):
    code = textwrap.dedent("""
        import os, torch
        class Crafted:
            def __reduce__(self):
                return (os.system, ("mkdir made_by_the_file",))
        torch.save({"config": Crafted(), "state_dict": {}}, "shared_model.pth", pickle_protocol=2)
    """)
    subprocess.run([PY, "-c", code], cwd=folder, check=True)


def few_points(folder):
    import json

    point = {"model": "SRT", "dataset": "d", "sample_users": 1.0, "architecture": "L1-H2-D16", "train_neg_count": 20,
             "epochs": 1, "seed": 1, "sample_seed": 1, "settings": {}}
    with open(os.path.join(folder, "sweep.jsonl"), "w") as f:
        for run, (flops, ndcg) in enumerate(((1e9, 0.02), (2e9, 0.01))):
            epoch = {"train_flops": flops, "valid_ndcg@5": ndcg, "seen_interactions": 100,
                     "non_embedding_parameters": 10, "parameters": 20, "training_interactions": 100}
            f.write(json.dumps({"hash": f"{run}e", "attempt": str(run), "point": point, "epoch": 0, **epoch}) + "\n")
            f.write(json.dumps({"hash": str(run), "attempt": str(run), "point": point, "final": True}) + "\n")


STALLED = textwrap.dedent("""
    import sys, time
    import torch.distributed as dist
    from recbole_srt import cli
    from recbole_srt.trainer import SRTTrainerMixin
    train_epoch = SRTTrainerMixin._train_epoch
    def stalled(self, *args, **kwargs):
        if dist.get_rank() == 1:
            time.sleep(120)  # as a process stopped with Ctrl-Z would
        return train_epoch(self, *args, **kwargs)
    SRTTrainerMixin._train_epoch = stalled
    sys.exit(cli.main())
""")

RUN = [PY, "-m", "recbole_srt.cli", "--model=SASRec", "--dataset=ml-100k"]
RECOMMEND = [PY, "-m", "recbole_srt.recommend", "--checkpoint"]
CONVERT = [PY, "-m", "dataset_scripts", "sequences", "--input", "raw", "--name", "x", "--output-dir", "out"]
# (input, setup(folder) -> checkpoint path or None, command; "{ckpt}" is the setup's checkpoint).
CASES = [
    ("`--epochs=-1 --lr_schedule=constant`", None, [*RUN, "--epochs=-1", "--lr_schedule=constant"]),
    ("`--epochs=-1`", None, [*RUN, "--epochs=-1"]),
    ("`--learning_rate=abc`", None, [*RUN, "--learning_rate=abc"]),
    ("`--epochs=abc`", None, [*RUN, "--epochs=abc"]),
    ("`--MAX_ITEM_LIST_LENGTH=0`", None, [*RUN, "--MAX_ITEM_LIST_LENGTH=0"]),
    ("a key given twice", None, [*RUN, "--epochs=2", "--epochs=3"]),
    ("`topk` longer than the catalog", lambda d: atomic(d, "toy", GOOD_ITEMS),
     [PY, "-m", "recbole_srt.cli", "--model=SRT", "--dataset=toy", "--data_path=.", *TINY, "--topk=[5,50]"]),
    ("a header-only `.item`", lambda d: atomic(d, "toy", []),
     [PY, "-m", "recbole_srt.cli", "--model=SRT", "--dataset=toy", "--data_path=.", *TINY]),
    ("duplicate item ids in a `.item` (run_recbole: first row kept, counted)",
     lambda d: atomic(d, "toy", GOOD_ITEMS + [("3", "a later row", "x")]),
     [PY, "-m", "recbole_srt.cli", "--model=SRT", "--dataset=toy", "--data_path=.", *TINY, "--state=WARNING"]),
    ("recommend: a blank line in `--histories`", lambda d: (write(d, "h.txt", "1 2\n\n3\n"), trained_checkpoint(d))[1],
     [*RECOMMEND, "{ckpt}", "--histories", "h.txt"]),
    ("recommend: `--k 0`", lambda d: (write(d, "h.txt", "1 2\n"), trained_checkpoint(d))[1],
     [*RECOMMEND, "{ckpt}", "--histories", "h.txt", "--k", "0"]),
    ("recommend: `--k -1`", lambda d: (write(d, "h.txt", "1 2\n"), trained_checkpoint(d))[1],
     [*RECOMMEND, "{ckpt}", "--histories", "h.txt", "--k", "-1"]),
    ("a truncated `.gz` input to dataset_scripts", truncated_gzip, CONVERT),
    ("one non-UTF-8 byte in a title (one bad line of 3, over `--max-bad-fraction` 0.01)", non_utf8_title, CONVERT),
    ("the same, within `--max-bad-fraction 0.5`: converted, the line counted", non_utf8_title,
     [*CONVERT, "--max-bad-fraction", "0.5", "--vocab-size", "30"]),
    ("a truncated checkpoint to `recommend`",
     lambda d: (write(d, "h.txt", "1\n"), write(d, "model.pth", open(os.path.join(d, trained_checkpoint(d)), "rb")
                                                .read()[:4000]), "model.pth")[2],
     [*RECOMMEND, "{ckpt}", "--histories", "h.txt"]),
    ("a text file named `.pth` as `--pretrained_model`", lambda d: (atomic(d, "toy", GOOD_ITEMS),
                                                                    write(d, "model.pth", "hello\n"))[0],
     [PY, "-m", "recbole_srt.cli", "--model=SRT", "--dataset=toy", "--data_path=.", *TINY,
      "--pretrained_model=model.pth"]),
    ("a shared checkpoint whose unpickling calls `os.system`", lambda d: (write(d, "h.txt", "1\n"), crafted(d))[0],
     [*RECOMMEND, "shared_model.pth", "--histories", "h.txt"]),
    ("`scaling fit` on a sweep with too few points", few_points,
     [PY, "-m", "recbole_srt.scaling", "fit", "sweep.jsonl", "--out", "fit"]),
    ("a stalled (stopped) torchrun process (exit code: torchrun's; the process that waited exits 2)",
     lambda d: (atomic(d, "toy", GOOD_ITEMS), write(d, "stalled.py", STALLED))[0],
     [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "stalled.py", "--model=SRT",
      "--dataset=toy", "--data_path=.", *TINY, "--train_batch_size=64", "--gpu_id=''", "--dist_timeout=5"]),
]


def last_line(text):
    """The last line that says "error:" (torchrun prints its own summary after a process's message), else the last."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return errors[-1] if errors else lines[-1] if lines else ""


def run_case(description, setup, command):
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = setup(folder) if setup else None
        command = [checkpoint if part == "{ckpt}" else part for part in command]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        message = last_line(done.stderr) or last_line(done.stdout)
        warnings = [line.strip() for line in (done.stderr + done.stdout).splitlines()
                    if "repeat an earlier item id" in line]
        shown = " ".join(part if part.startswith("-") or part == "{ckpt}" else os.path.basename(part)
                         for part in command[1:] if part not in TINY)
        return {"input": description, "command": shown, "exit_code": done.returncode,
                "message": (warnings[0] if warnings else message).replace(folder + os.sep, ""),
                "wall_s": round(time.perf_counter() - start, 1)}


def table(payload):
    rows = [[case["input"], case["exit_code"], case["message"].replace("|", "\\|")] for case in payload["cases"]]
    return (markdown_table(["input tried", "exit code", "message (stderr)"], rows) + "\n\n"
            + machine_line(payload["machine"]) + "\n")


def main():
    cases = []
    for description, setup, command in CASES:
        cases.append(run_case(description, setup, command))
        print(f"{cases[-1]['exit_code']}  {description}: {cases[-1]['message'][:160]}", flush=True)
    write_results("bad_inputs", {"cases": cases}, table)


if __name__ == "__main__":
    main()
