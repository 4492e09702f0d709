"""`eval_horizon: k`: each user's last k interactions are test targets, the one before them the validation target,
the rest training (RecBole's leave-one-out is the case k = 1, and stays RecBole's own)."""

from logging import getLogger


def use(dataset, config):
    """Make `dataset.build()` split by the horizon when `eval_horizon` > 1 (its leave-one-out, replaced on this
    instance only)."""
    k = config["eval_horizon"] or 1
    if k == 1:
        return
    split = config["eval_args"]["split"]
    if split != {"LS": "valid_and_test"}:
        raise ValueError(f"eval_horizon {k} holds out each user's last {k} items: it needs eval_args.split "
                         f"{{LS: valid_and_test}}, not {split}")
    if k - 1 > config["MAX_ITEM_LIST_LENGTH"]:
        raise ValueError(f"eval_horizon {k}: the last step's history holds {k - 1} earlier targets, more than "
                         f"MAX_ITEM_LIST_LENGTH {config['MAX_ITEM_LIST_LENGTH']}")

    def leave_horizon_out(group_by, leave_one_mode):
        train, valid, test, short = [], [], [], 0
        for rows in dataset._grouped_index(dataset.inter_feat[group_by].numpy()):
            rows = list(rows)
            if len(rows) < k + 1:
                train.extend(rows)
                short += 1
                continue
            train.extend(rows[: -(k + 1)])
            valid.append(rows[-(k + 1)])
            test.extend(rows[-k:])
        if short:
            getLogger().warning(f"eval_horizon {k}: {short} users have fewer than {k + 2} interactions (a validation "
                                f"target and {k} test targets after a first item); they train, but are not "
                                "validated or tested")
        dataset._drop_unused_col()
        return [dataset.copy(dataset.inter_feat[rows]) for rows in (train, valid, test)]

    dataset.leave_one_out = leave_horizon_out
