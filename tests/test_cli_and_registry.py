import importlib.resources
import os
import subprocess
import sys

import pytest
import recbole.utils

from recbole_srt import SRT, Config
from recbole_srt.cli import main
from recbole_srt.registry import get_model
from recbole_srt.trainer import get_trainer

RUN_RECBOLE = os.path.join(os.path.dirname(sys.executable), "run_recbole")
SMALL = ["--epochs=1", "--MAX_ITEM_LIST_LENGTH=10", "--hidden_size=16", "--inner_size=32", "--n_layers=1",
         "--train_batch_size=1024", "--show_progress=False"]


def test_srt_resolves_through_ours_and_recboles_get_model():
    assert get_model("SRT") is SRT
    assert recbole.utils.get_model("SRT") is SRT
    assert get_model("SASRec").__module__ == "recbole.model.sequential_recommender.sasrec"
    assert get_model("BERT4Rec").__name__ == "BERT4Rec"


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'SRTX'"):
        get_model("SRTX")


def test_every_sequential_model_gets_our_trainer():
    from recbole_srt.trainer import SRTTrainer

    assert get_trainer(SRT.type, "SRT") is SRTTrainer
    assert get_trainer(get_model("SASRec").type, "SASRec") is SRTTrainer


def test_config_reads_plugin_defaults_and_fixes_recbole_ce_default():
    srt = Config(model="SRT", dataset="ml-100k")
    assert srt["train_neg_count"] == 100 and srt["lr_schedule"] == "one_cycle"
    assert srt["text_fields"] == ["movie_title", "class"]  # model-on-dataset defaults
    assert "movie_title" in srt["load_col"]["item"]
    sasrec = Config(model="SASRec", dataset="ml-100k")
    assert sasrec["train_neg_sample_args"]["distribution"] == "none"
    assert sasrec["lr_schedule"] == "constant" and sasrec["sampled_eval_args"]["replacement"] is False  # plugin overall
    assert sasrec["train_neg_count"] is None  # SRT keys stay SRT's
    overridden = Config(model="SRT", dataset="ml-100k", config_dict={"train_neg_count": 1000})
    assert overridden["train_neg_count"] == 1000


def test_paper_preset_keeps_the_paper_settings_over_the_measured_defaults():
    from recbole_srt.config import properties_dir

    default = Config(model="SRT", dataset="ml-100k")
    assert (default["text_pooling"], default["hidden_dropout_prob"]) == ("sum", 0.5)
    with importlib.resources.as_file(properties_dir() / "presets" / "srt-paper.yaml") as preset:
        paper = Config(model="SRT", dataset="ml-100k", config_file_list=[str(preset)])
    assert (paper["text_pooling"], paper["hidden_dropout_prob"], paper["attn_dropout_prob"]) == ("mean", 0.2, 0.2)
    assert (paper["learning_rate"], paper["epochs"], paper["max_grad_norm"]) == (0.0001, 50, 1.0)


def test_cli_errors_exit_nonzero_with_a_message(data_root, capsys):
    assert main(["--model=NoSuchModel", "--dataset=ml-100k"]) == 2
    assert "unknown model 'NoSuchModel'" in capsys.readouterr().err
    assert main(["--model=SRT", "--dataset=nowhere", f"--data_path={data_root}"]) == 2
    assert "nowhere.inter" in capsys.readouterr().err
    assert main(["--model=SRT", "--dataset=ml40", "--epochz=3"]) == 2
    assert "--epochz" in capsys.readouterr().err
    assert main(["--model=SRT", "--dataset=ml40", "--epochs", "3"]) == 2
    assert "--key=value" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["SRT", "SASRec", "BERT4Rec"])
def test_console_script_runs_on_shipped_ml100k(model_name, tmp_path):
    """The plain command users type, on RecBole's own ml-100k, as a separate process."""
    args = [RUN_RECBOLE, f"--model={model_name}", "--dataset=ml-100k", *SMALL]
    if model_name == "SRT":
        args += ["--train_neg_count=50", f"--tokenizer_dir={tmp_path / 'tok'}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test result: {'" in done.stdout
    log = "".join(p.read_text() for p in (tmp_path / "log" / model_name).glob("*.log"))
    assert "Saving current" in log and "Loading model structure and parameters from" in log
    assert "valid result" in log


def test_setup_cfg_installs_every_package():
    """A non-editable install (CI, README's first command) ships only the packages setup.cfg lists."""
    import configparser

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = configparser.ConfigParser()
    parser.read(os.path.join(repo, "setup.cfg"))
    listed = set(parser["options"]["packages"].split())
    found = {os.path.relpath(root, repo).replace(os.sep, ".") for top in ("recbole_srt", "dataset_scripts")
             for root, _, files in os.walk(os.path.join(repo, top)) if "__init__.py" in files}
    assert found <= listed, f"missing from setup.cfg packages: {sorted(found - listed)}"
