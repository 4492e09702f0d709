"""Fused attention computes RecBole's attention; CPU dropout masks have torch's distribution; bf16 and compiled
training steps run and learn, a compiled loss is one graph; the sync-free epoch loop trains as RecBole's; bad keys
fail."""

import pytest
import torch

from helpers import build
from recbole_srt import SRTTrainer
from recbole_srt.acceleration.attention import FusedMultiHeadAttention, use_attention


def outputs(model, interaction, implementation):
    use_attention(model, implementation)
    with torch.no_grad():
        return model.full_sort_predict(interaction)


@pytest.mark.parametrize("model_name, extra", [
    ("SRT", {"position_encoding": "absolute"}), ("SRT", {"position_encoding": "reverse"}),
    ("SASRec", {"loss_type": "CE"}), ("BERT4Rec", {}),
])
def test_fused_attention_equals_recboles_with_padding_and_causal_masks(fast_config, model_name, extra):
    config, model, (_, _, test) = build(model_name, "ml80", fast_config, n_heads=4, hidden_size=32, inner_size=64,
                                        n_layers=2, MAX_ITEM_LIST_LENGTH=20, **extra)
    model.eval()
    interaction = next(iter(test))[0]
    lengths = interaction["item_length"]
    assert (lengths < 20).any() and (lengths == 20).any()  # padded and full sequences both present
    ours = outputs(model, interaction, "sdpa")
    assert any(isinstance(m, FusedMultiHeadAttention) for m in model.modules())
    recbole = outputs(model, interaction, "recbole")
    assert not any(isinstance(m, FusedMultiHeadAttention) for m in model.modules())
    torch.testing.assert_close(ours, recbole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_mask_dropout_keeps_each_value_with_probability_1_minus_p_and_scales_it(dtype):
    from recbole_srt.acceleration.dropout import CPUMaskDropout

    dropout = CPUMaskDropout(0.3)
    x = torch.ones(1_000_000, dtype=dtype, requires_grad=True)
    y = dropout(x)
    kept = y != 0
    assert y.dtype == dtype and abs(kept.float().mean().item() - 0.7) < 0.002  # 0.7 ± 4.5 standard errors
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient: the same mask and scale
    dropout.eval()
    assert torch.equal(dropout(x), x)


def test_trainer_gives_every_dropout_cpu_masks_and_cpu_training_attention_recboles_computation(fast_config):
    from recbole.model.layers import MultiHeadAttention

    from recbole_srt.acceleration.dropout import CPUMaskDropout

    for model_name, extra in (("SRT", {}), ("SASRec", {"loss_type": "CE"}), ("BERT4Rec", {})):
        config, model, _ = build(model_name, "ml80", fast_config, **extra)
        dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
        SRTTrainer(config, model)
        assert dropouts and all(type(m) is CPUMaskDropout for m in dropouts), model_name
    config, model, _ = build("SASRec", "ml80", fast_config, loss_type="CE", fast_cpu_dropout=False)
    SRTTrainer(config, model)
    assert all(type(m) is torch.nn.Dropout for m in model.modules() if isinstance(m, torch.nn.Dropout))

    config, model, (train, _, _) = build("SRT", "ml80", fast_config, n_heads=2, hidden_size=32, inner_size=64)
    SRTTrainer(config, model)
    attention = next(m for m in model.modules() if isinstance(m, FusedMultiHeadAttention))
    attention.train()
    x, mask = torch.randn(8, 10, 32), torch.zeros(8, 1, 10, 10)
    torch.manual_seed(1)
    ours = attention(x, mask)
    torch.manual_seed(1)
    torch.testing.assert_close(ours, MultiHeadAttention.forward(attention, x, mask), atol=0, rtol=0)


def test_trainer_uses_fused_attention_by_default_and_keeps_checkpoints_compatible(fast_config):
    config, model, _ = build("SASRec", "ml80", fast_config, loss_type="CE")
    keys = set(model.state_dict())
    SRTTrainer(config, model)
    assert any(isinstance(m, FusedMultiHeadAttention) for m in model.modules()) and set(model.state_dict()) == keys


@pytest.mark.parametrize("extra", [{"precision": "bf16"}, {"compile": True, "compile_backend": "eager"}])
def test_bf16_and_compiled_training_learn(fast_config, extra):
    config, model, (train, valid, _) = build("SRT", "ml80", fast_config, epochs=3, learning_rate=0.01,
                                             lr_schedule="constant", **extra)
    trainer = SRTTrainer(config, model)
    losses = [trainer._train_epoch(train, epoch) for epoch in range(3)]
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: weights stay fp32


@pytest.mark.parametrize("model_name, extra", [
    ("SRT", {}), ("SRT", {"shared_negatives": False, "position_encoding": "absolute"}),
    ("SASRec", {"loss_type": "CE", "train_neg_sample_args": None}), ("BERT4Rec", {}),
])
def test_compiled_training_loss_is_one_graph(fast_config, model_name, extra):
    """torch.compile gets the whole loss as one graph, no break (a break costs a host sync and loses fusion):
    SRT's negative draws, item encoding and sampled softmax included; on the CPU SRT leaves out its torch.unique
    (a data-dependent shape) while compiling."""
    import torch._dynamo

    config, model, (train, _, _) = build(model_name, "ml80", fast_config, train_batch_size=8, **extra)
    batch = next(iter(train))
    if model_name == "SRT":  # fewer ids than items: the step that would encode distinct ids only
        assert batch["item_id_list"].numel() + 8 * (1 + config["train_neg_count"]) < model.n_items
    trainer = SRTTrainer(config, model)
    model.train()
    torch._dynamo.reset()
    explained = torch._dynamo.explain(trainer.loss_module)(batch)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_inductor_compiled_loss_and_gradients_equal_eager(fast_config):
    config, model, (train, _, _) = build("SRT", "ml80", fast_config, n_layers=2, hidden_dropout_prob=0.0,
                                         attn_dropout_prob=0.0)
    trainer = SRTTrainer(config, model)
    batch = next(iter(train))
    model.train()

    def loss_and_gradients(loss_func):
        model.zero_grad()
        torch.manual_seed(3)  # the same negatives
        loss = loss_func(batch)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    eager_loss, eager_grads = loss_and_gradients(trainer.loss_module)
    torch._dynamo.reset()
    compiled_loss, compiled_grads = loss_and_gradients(torch.compile(trainer.loss_module, backend="inductor"))
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-5, rtol=1e-5)
    for compiled, eager in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)


def test_compiled_loss_keeps_static_shapes_when_the_last_batch_is_smaller(fast_config):
    """One static graph per batch size (the full one and the last): automatic dynamic shapes would replace the
    full batches' graph with a symbolic one, slower on GPUs."""
    symbolic_sizes = []  # per compiled graph, its symbolic size inputs

    def recording_backend(graph, example_inputs):
        symbolic_sizes.append([t for t in example_inputs if isinstance(t, torch.SymInt)])
        return graph.forward

    config, model, (train, _, _) = build("SRT", "ml80", fast_config, train_batch_size=100, compile=True)
    config["compile_backend"] = recording_backend
    assert len(train.dataset) % 100  # a smaller last batch
    trainer = SRTTrainer(config, model)
    torch._dynamo.reset()
    for epoch in range(2):
        trainer._train_epoch(train, epoch)
    assert symbolic_sizes == [[], []]


def test_sampled_softmax_logits_stay_fp32_under_bf16(fast_config):
    from recbole_srt.model.sampled_softmax import sampled_softmax_loss

    seq, pos, neg = (torch.randn(*shape) for shape in ((8, 16), (8, 16), (30, 16)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = sampled_softmax_loss(seq, pos, neg, torch.arange(1, 9), torch.arange(10, 40),
                                    log_q=torch.log(torch.full((50,), 1e-6)))
    assert loss.dtype == torch.float32
    reference = sampled_softmax_loss(seq, pos, neg, torch.arange(1, 9), torch.arange(10, 40),
                                     log_q=torch.log(torch.full((50,), 1e-6)))
    assert loss.item() == pytest.approx(reference.item(), rel=0.05)


@pytest.mark.parametrize("extra, message", [
    ({"precision": "fp8"}, "precision: 'fp8'"), ({"precision": "fp16"}, "'fp16' needs a CUDA device"),
    ({"attention": "flash"}, "attention: 'flash'"),
])
def test_bad_speed_keys_are_clear_errors(fast_config, extra, message):
    config, model, _ = build("SRT", "ml80", fast_config, **extra)
    with pytest.raises(ValueError, match=message):
        SRTTrainer(config, model)


def test_sync_free_epoch_loop_trains_exactly_as_recboles(fast_config):
    """Same batches, negatives, dropout and updates as RecBole's `_train_epoch`: equal summed loss and weights."""
    from recbole.trainer import Trainer

    config, model, (train, _, _) = build("SRT", "ml80", fast_config, learning_rate=0.01, lr_schedule="constant")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    results = []
    for loop in ("ours", "recbole"):
        model.load_state_dict(initial)
        trainer = SRTTrainer(config, model)
        torch.manual_seed(7)
        train.generator.manual_seed(7)  # the same batch order
        if loop == "ours":
            loss = trainer._train_epoch(train, 0)
        else:
            loss = Trainer._train_epoch(trainer, train, 0, loss_func=trainer.loss_module)
        results.append((loss, {k: v.clone() for k, v in model.state_dict().items()}))
    (ours_loss, ours_state), (recbole_loss, recbole_state) = results
    assert ours_loss == pytest.approx(recbole_loss, rel=1e-5)
    assert any(not torch.equal(ours_state[k], initial[k]) for k in initial)
    # Multi-threaded CPU reductions are not bit-reproducible run to run (1e-5 seen); one missed or doubled Adam step
    # at this learning rate moves weights by about 1e-2.
    for key in initial:
        torch.testing.assert_close(ours_state[key], recbole_state[key], atol=1e-4, rtol=1e-4)


def test_sync_free_epoch_loop_reports_the_first_nan_step_and_sums_loss_parts(fast_config):
    from recbole_srt.acceleration.training_epoch import train_epoch

    config, model, (train, _, _) = build("SRT", "ml80", fast_config)
    trainer = SRTTrainer(config, model)
    calls = []

    def parts(interaction):
        calls.append(1)
        loss = model.calculate_loss(interaction)
        return loss, torch.ones((), requires_grad=True)

    total, ones = train_epoch(trainer, train, 0, parts)
    assert ones == len(calls) == len(train) and total > 0

    def nan_from_third_step(interaction):
        calls.append(1)
        loss = model.calculate_loss(interaction)
        return loss * float("nan") if len(calls) >= 3 else loss

    calls.clear()
    with pytest.raises(ValueError, match=r"Training loss is nan \(epoch 4, first at step 2\)"):
        train_epoch(trainer, train, 4, nan_from_third_step)
