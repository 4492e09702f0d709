"""RecBole's quick-start pipeline with plugin model resolution, our trainer and safe checkpoint loading.

It does not import `recbole.quick_start` (which pulls in ray and pkg_resources).
"""

import contextlib
import functools
import os
import sys
from logging import getLogger

from recbole.data import create_dataset, data_preparation
from recbole.data.transform import construct_transform
from recbole.utils import ModelType, calculate_valid_score, get_environment, get_flops, init_seed, set_color

from recbole_srt import distributed, setting_checks
from recbole_srt.checkpoint import load_checkpoint, trusted_checkpoint_globals
from recbole_srt.compat import disable_anomaly_detection
from recbole_srt.config import Config
from recbole_srt.data import atomic_files, horizon_split, user_sample
from recbole_srt.data.store_dataset import StoreDataset
from recbole_srt.data.store_loaders import store_loaders
from recbole_srt.run_log import start_run_log
from recbole_srt.registry import get_model
from recbole_srt.trainer import SRTTrainerMixin, get_trainer
from recbole_srt.transfer import pretrained


def build_model(config, train_data):
    # Per-process seeds: DDP copies process 0's initial weights to all; negatives and dropout differ per process.
    init_seed(config["seed"] + (config["rank"] or 0), config["reproducibility"])
    model_class = get_model(config["model"])
    disable_anomaly_detection()
    # Models that load a pre-trained checkpoint while they are built (S3Rec's fine-tuning stage) use plain
    # torch.load, weights-only on current torch: our checkpoints load as they are; a file holding pickled objects
    # only when the user trusts it. Read once first, so that a bad file is an error that names it.
    pretrained = config["pre_model_path"] if "pre_model_path" in config else None
    trusted = bool(config["trust_checkpoint"])
    if pretrained:
        load_checkpoint(pretrained, "cpu", trust=trusted)
    with trusted_checkpoint_globals(pretrained) if pretrained and trusted else contextlib.nullcontext():
        model = model_class(config, train_data._dataset)
    return model.to(config["device"])


def log_flops(model, dataset, config, logger):
    """RecBole's FLOPs count traces `predict`, which some models refuse (SASRecCPR, GRU4RecCPR); log why instead of
    failing the run, as the count is informational."""
    if isinstance(dataset, StoreDataset):
        logger.info("FLOPs: not counted by RecBole for a sequence store (the trainer counts training FLOPs)")
        return
    try:
        flops = get_flops(model, dataset, config["device"], logger, construct_transform(config))
    except Exception as error:  # any failure inside a model's traced predict()
        logger.warning(f"FLOPs not counted: {type(model).__name__}.predict failed under tracing ({error!r})")
        return
    logger.info(set_color("FLOPs", "blue") + f": {flops}")


def prepare(model=None, dataset=None, config_file_list=None, config_dict=None):
    """Config, dataset, (train, valid, test) dataloaders and a freshly built model, as run_recbole builds them."""
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
    adopted = pretrained.adopt_settings(config) if config["model"] == "SRT" else {}
    setting_checks.check(config)
    if not config["data_store"]:
        atomic_files.check(config)
    init_seed(config["seed"], config["reproducibility"])
    # RecBole's logger and trainer create ./log/MODEL and checkpoint_dir with a check-then-create that races when
    # several processes start in one folder (torchrun): create them first, race-free.
    os.makedirs(os.path.join("log", str(config["model"])), exist_ok=True)
    os.makedirs(config["checkpoint_dir"], exist_ok=True)
    start_run_log(config)
    if adopted:
        getLogger().info(pretrained.describe_adopted(config, adopted))
    if distributed.is_distributed(config):
        distributed.check_same_settings(config)
    dataset, loaders = load_data(config)
    if distributed.is_distributed(config):
        distributed.check_sizes(config, loaders[0], [("validation users", loaders[1]), ("test users", loaders[2])])
    return config, dataset, loaders, build_model(config, loaders[0])


def load_data(config):
    """(dataset, (train, valid, test) loaders): from the sequence store `data_store` names, else RecBole's dataset
    from atomic files; evaluation cut to `eval_user_sample` users either way."""
    if config["data_store"]:
        check_store_settings(config)
        dataset = StoreDataset(config)
        setting_checks.check_against_dataset(config, dataset)
        return dataset, store_loaders(config, dataset)
    dataset = create_dataset(config)
    setting_checks.check_against_dataset(config, dataset)
    horizon_split.use(dataset, config)
    return dataset, user_sample.limit_eval_users(config, data_preparation(config, dataset))


def check_store_settings(config):
    """A store holds sequences split by leave-one-out: what it cannot serve fails before anything is read."""
    if config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
        raise ValueError(f"data_store: {config['model']} is not a sequential model; a sequence store serves "
                         "sequential models (SRT, SASRec, BERT4Rec, ...)")
    split, order = config["eval_args"]["split"], config["eval_args"]["order"]
    if split != {"LS": "valid_and_test"} or order != "TO":
        raise ValueError(f"data_store: a store is split by leave-one-out in time order; eval_args split {split} and "
                         f"order {order} must be {{LS: valid_and_test}} and TO")
    if (config["eval_horizon"] or 1) > 1:
        raise ValueError(f"data_store: eval_horizon {config['eval_horizon']} is not served from a store (its "
                         "split holds out one test item per user); evaluate the atomic files instead")


def run_recbole(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, queue=None):
    """Train, validate (early stopping on `valid_metric`), save the best checkpoint, reload it and test.

    Returns RecBole's result dict: best_valid_score, valid_score_bigger, best_valid_result, test_result. With
    `nproc` > 1 (and not already under torchrun), spawns that many processes that train one model together.
    """
    nproc = Config(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)["nproc"]
    if nproc and nproc > 1 and not distributed.requested(config_dict or {}) and not distributed.launched_by_torchrun():
        return _spawn(nproc, model, dataset, config_file_list, config_dict, saved)
    config, dataset, (train_data, valid_data, test_data), model = prepare(model, dataset, config_file_list, config_dict)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)
    logger.info(dataset)
    logger.info(model)
    log_flops(model, dataset, config, logger)

    trainer_class = get_trainer(config["MODEL_TYPE"], config["model"])
    if issubclass(trainer_class, SRTTrainerMixin):
        trainer = trainer_class(config, model, pretraining_data=functools.partial(
            pretraining_data, trust_checkpoint=bool(config["trust_checkpoint"])))
    else:
        trainer = trainer_class(config, model)
    with distributed.explaining_timeouts(config):
        best_valid_score, best_valid_result, test_result, saved = _train_and_test(trainer, config, train_data,
                                                                                  valid_data, test_data, saved)
    logger.info("The running environment of this training is as follows:\n" + get_environment(config).draw())
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    logger.info(set_color("compute", "yellow") + f": {trainer.compute()}")
    result = {
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "saved_model_file": trainer.saved_model_file if saved else None,
        "compute": trainer.compute(),
    }
    if queue is not None and distributed.is_main_process(config):
        queue.put(result)
    return result


def _train_and_test(trainer, config, train_data, valid_data, test_data, saved):
    """(best valid score, best valid result, test result, whether a checkpoint was saved)."""
    if config["resume_from"]:
        resume(trainer, config)
    if config["epochs"] == 0:
        # No training step: the model as built (e.g. from pretrained_model: zero-shot) through the same evaluation.
        getLogger().info("epochs: 0, evaluating the model as built, without training")
        trainer.set_train_item_counts(train_data)
        best_valid_result = trainer.evaluate(valid_data, load_best_model=False, show_progress=config["show_progress"])
        best_valid_score = calculate_valid_score(best_valid_result, config["valid_metric"].lower())
        test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=config["show_progress"])
        saved = False
    else:
        best_valid_score, best_valid_result = trainer.fit(
            train_data, valid_data, saved=saved, show_progress=config["show_progress"]
        )
        test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])
    return best_valid_score, best_valid_result, test_result, saved


def resume(trainer, config):
    """`resume_from: PATH`: continue the run the checkpoint (a `-last` state, or a best checkpoint) comes from."""
    path = config["resume_from"]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"resume_from: checkpoint file '{path}' does not exist")
    if config["epochs"] == 0:
        raise ValueError("resume_from continues a training run: not one with epochs 0")
    trainer.resume_checkpoint(path)


def _spawned_run(local_rank, model, dataset, config_file_list, config_dict, saved, queue):
    run_recbole(model, dataset, config_file_list, {**config_dict, "local_rank": local_rank}, saved, queue)


def _spawn(nproc, model, dataset, config_file_list, config_dict, saved):
    """RecBole's `nproc`: processes on this machine joined over tcp:// (`ip`, `port`: a free port unless set)."""
    import torch.multiprocessing as mp

    config_dict = dict(config_dict or {})
    config_dict.update(nproc=nproc, world_size=nproc, offset=0)
    config_dict.setdefault("ip", "localhost")
    config_dict.setdefault("port", distributed.free_port())
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_spawned_run, args=(model, dataset, config_file_list, config_dict, saved, queue), nprocs=nproc, join=True)
    return queue.get()


def load_data_and_model(model_file, trust_checkpoint=False):
    """Rebuild config, model (with the checkpoint's weights), dataset and the three dataloaders from a checkpoint.

    Works for SRT and RecBole models saved by our trainer; RecBole's own version cannot resolve plugin models. A
    checkpoint that holds pickled objects (RecBole's, or ours from before data-only checkpoints) opens only with
    `trust_checkpoint`.
    """
    checkpoint = load_checkpoint(model_file, "cpu", trust=trust_checkpoint)
    config = Config.from_checkpoint(checkpoint, model_file)
    init_seed(config["seed"], config["reproducibility"])
    start_run_log(config)
    dataset, (train_data, valid_data, test_data) = load_data(config)
    model = build_model(config, train_data)
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, dataset, train_data, valid_data, test_data


def pretraining_data(checkpoint_path, trust_checkpoint=False):
    """(model, training dataloader) rebuilt from a checkpoint: the data EWC's Fisher information is computed on."""
    if pretrained.is_release(load_checkpoint(checkpoint_path, "cpu", trust=trust_checkpoint)):
        raise ValueError(f"ewc_lambda: {checkpoint_path} is a released model, which holds no pre-training data to "
                         "compute EWC's Fisher information on: fine-tune it without EWC (ewc_lambda: 0)")
    _, model, _, train_data, _, _ = load_data_and_model(checkpoint_path, trust_checkpoint)
    return model, train_data
