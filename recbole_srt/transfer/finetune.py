"""Fine-tuning a pre-trained SRT as the paper does (§4.5): `finetune_strategy: progressive` unfreezes the
transformer layers one at a time from the top, each stage `finetune_epochs_per_layer` epochs with its own optimizer
and one-cycle schedule at `learning_rate`; a last stage unfreezes everything else too (token embeddings, adapter,
positions, input norm) for `finetune_final_epochs`. `full` trains everything from the start. One run: the best
validation checkpoint over all stages is kept, as in any run.
"""

STRATEGIES = ("full", "progressive")


def check(config):
    strategy = config["finetune_strategy"] or "full"
    if strategy not in STRATEGIES:
        raise ValueError(f"finetune_strategy: '{strategy}' is not one of {STRATEGIES}")
    if strategy == "progressive" and not config["pretrained_model"]:
        raise ValueError("finetune_strategy: 'progressive' fine-tunes a pre-trained model: set pretrained_model")
    return strategy


def progressive_stages(model, config):
    """[(description, parameters trained, epochs)]: top 1 layer, top 2 layers, ..., then everything. The
    history-match weights (a few per recency, on top of the transformer) and the transformer gate train in every
    stage."""
    layers = list(model.trm_encoder.layer)
    head = [p for module in (model.lexical_match, model.repeat_match) if module is not None
            for p in module.parameters()]
    head += [model.transformer_gate] if model.transformer_gate is not None else []
    stages = [(f"top {k} of {len(layers)} transformer layers",
               [p for layer in layers[-k:] for p in layer.parameters()] + head,
               config["finetune_epochs_per_layer"]) for k in range(1, len(layers) + 1)]
    stages.append(("every parameter (token embeddings, adapter, positions too)", list(model.parameters()),
                   config["finetune_final_epochs"]))
    return stages


def fit_progressive(trainer, fit_stage, steps_per_epoch):
    """Run the stages through `fit_stage()` (RecBole's fit over trainer.start_epoch .. trainer.epochs); returns the
    last stage's (best valid score, best valid result), which are the best over all stages. A run resumed from a
    stage's `-last` state skips the stages before it and goes on inside it with that stage's optimizer."""
    stages = progressive_stages(trainer.model, trainer.config)
    resumed_stage, resumed_epoch = trainer.resumed_stage(), trainer.start_epoch
    epoch, result = 0, (trainer.best_valid_score, trainer.best_valid_result)
    try:
        for index, (description, params, epochs) in enumerate(stages, start=1):
            if epochs <= 0 or (resumed_stage is not None and index < resumed_stage):
                epoch += epochs
                continue
            trainable = {id(p) for p in params}
            for p in trainer.model.parameters():
                p.requires_grad_(id(p) in trainable)
            trainer.new_optimizer(params, steps_per_epoch * epochs)
            trainer.finetune_stage = index
            trainer.start_epoch, trainer.epochs = epoch, epoch + epochs
            if index == resumed_stage:
                trainer.start_epoch = resumed_epoch
                trainer.restore_resumed_state(optimizer_too=True)
            else:
                trainer.cur_step = 0
                trainer.restore_resumed_state()  # resumed between stages: only the RNG states
            trainer.eval_step = min(trainer.config["eval_step"], epochs)
            trainer.logger.info(f"fine-tuning stage {index}/{len(stages)}: {description}, "
                                f"epochs {trainer.start_epoch}-{epoch + epochs - 1}")
            if trainer.start_epoch < trainer.epochs:
                result = fit_stage()
            epoch += epochs
    finally:
        trainer.finetune_stage = None
        for p in trainer.model.parameters():
            p.requires_grad_(True)
    return result
