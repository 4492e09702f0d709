import logging
import time

from recbole_srt import Config
from recbole_srt.run_log import start_run_log


def run_log_file(folder):
    files = [h.baseFilename for h in logging.getLogger().handlers
             if isinstance(h, logging.FileHandler) and h.baseFilename.startswith(str(folder))]
    assert len(files) == 1, files
    return files[0]


def test_each_run_in_one_process_logs_to_its_own_file(tmp_path):
    foreign = logging.StreamHandler()
    logging.getLogger().addHandler(foreign)  # as pytest's capture handler, or a user's
    try:
        start_run_log(Config(model="SRT", dataset="ml-100k", config_dict={"state": "INFO"}))
        first = run_log_file(tmp_path)
        logging.getLogger("a").info("first run line")
        time.sleep(1.1)  # RecBole names log files to the second
        start_run_log(Config(model="SASRec", dataset="ml-100k", config_dict={"state": "INFO"}))
        second = run_log_file(tmp_path)
        logging.getLogger("b").info("second run line")
        assert first != second
        assert foreign in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(foreign)
    with open(first) as f:
        text = f.read()
    assert "first run line" in text and "second run line" not in text
    with open(second) as f:
        assert "second run line" in f.read()
