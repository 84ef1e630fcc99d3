import dataclasses

import pytest
import torch
from helpers import resolve
from torch import nn

from bench.engine.setup import make_method
from bench.interface.method import Batch
from methods.maml import MAML

IMPLS = ("batched", "split", "looped", "reference")


def linear_maml(first_order: bool):
    """MAML on a 2-weight model y = w x + b, w = 0.5, b = 0, inner lr 0.1."""
    config = resolve("maml", "sinusoid-5s", "smoke", None, {"method": {"inner_lr": 0.1, "first_order": first_order}})
    method = make_method(config, torch.device("cpu")).train()
    method.net = nn.Linear(1, 1)
    with torch.no_grad():
        method.net.weight.fill_(0.5)
        method.net.bias.fill_(0.0)
    batch = Batch(
        torch.tensor([[[1.0], [2.0]]]), torch.tensor([[[1.0], [3.0]]]),
        torch.tensor([[[3.0]]]), torch.tensor([[[2.0]]]), 0,
    )
    return method, batch


def test_one_inner_step_equals_hand_derivation():
    method, batch = linear_maml(first_order=False)
    params = dict(method.net.named_parameters())
    adapted = method.adapt(params, batch.support_x[0], batch.support_y[0], 0, steps=1, second_order=True)
    # dL/dw = mean(2 r x) = -4.5, dL/db = mean(2 r) = -2.5 with residuals r = (-0.5, -2)
    assert adapted["weight"].item() == pytest.approx(0.95)
    assert adapted["bias"].item() == pytest.approx(0.25)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("first_order,expected", [(True, (6.6, 2.2)), (False, (2.64, -0.22))])
def test_meta_gradient_equals_hand_derivation(impl, first_order, expected):
    # query: x = 3, y = 2, prediction 0.95 * 3 + 0.25 = 3.1, loss 1.21, dL/dw' = 6.6, dL/db' = 2.2.
    # second order multiplies by (I - lr H), H = [[mean 2x^2, mean 2x], [mean 2x, 2]] = [[5, 3], [3, 2]].
    method, batch = linear_maml(first_order)
    out = getattr(method, f"forward_{impl}")(batch, 1, not first_order)
    loss = method.train_loss(out, batch)
    assert loss.item() == pytest.approx(1.21)
    gw, gb = torch.autograd.grad(loss, [method.net.weight, method.net.bias])
    assert (gw.item(), gb.item()) == pytest.approx(expected)


def conv_case(batch_norm: str, size: int = 12):
    """MAML's Omniglot Conv-4 (64 filters, strided, batch norm) on small images, in float64."""
    torch.manual_seed(0)
    config = resolve("maml", "omniglot-5w1s", "smoke", None, {"method": {"batch_norm": batch_norm}})
    task = dataclasses.replace(config.task_spec, image_size=size)
    method = MAML(config.method_config, task, 5).train().double()
    batch = Batch(
        torch.rand(2, 5, 1, size, size, dtype=torch.float64), torch.arange(5).repeat(2, 1),
        torch.rand(2, 5, 1, size, size, dtype=torch.float64), torch.arange(5).repeat(2, 1), 5,
    )
    return method, batch


def meta_grads(method, batch, impl, second_order, steps=2):
    out = getattr(method, f"forward_{impl}")(batch, steps, second_order)
    loss = method.train_loss(out, batch)
    return loss, torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(method.parameters()))])


@pytest.mark.parametrize("second_order", [False, True])
def test_batched_looped_and_reference_agree_with_batch_norm(second_order):
    method, batch = conv_case("transductive")
    ref_loss, ref = meta_grads(method, batch, "reference", second_order)
    for impl in ("batched", "split", "looped"):
        loss, grads = meta_grads(method, batch, impl, second_order)
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-10)
        assert torch.allclose(grads, ref, atol=1e-10, rtol=1e-8), impl


@pytest.mark.parametrize("second_order", [False, True])
def test_looped_and_reference_agree_without_batch_norm_in_the_path(second_order):
    # sinusoid MLP: no normalisation layers at all
    config = resolve("maml", "sinusoid-5s", "smoke")
    method = make_method(config, torch.device("cpu")).train().double()
    g = torch.Generator().manual_seed(1)
    x, q = torch.rand(4, 5, 1, generator=g, dtype=torch.float64), torch.rand(4, 6, 1, generator=g, dtype=torch.float64)
    batch = Batch(x, torch.sin(x), q, torch.sin(q), 0)
    _, ref = meta_grads(method, batch, "reference", second_order, steps=3)
    for impl in ("batched", "split", "looped"):
        _, grads = meta_grads(method, batch, impl, second_order, steps=3)
        assert torch.allclose(grads, ref, atol=1e-10)


def test_second_order_differs_from_first_order():
    method, batch = conv_case("transductive")
    _, first = meta_grads(method, batch, "batched", second_order=False)
    _, second = meta_grads(method, batch, "batched", second_order=True)
    assert (first - second).abs().max() > 1e-6


@pytest.mark.parametrize("impl", ["batched", "looped"])
def test_running_batch_norm_is_refused_by_torch_func_impls(impl):
    from bench.errors import UserError

    config = resolve("maml", "omniglot-5w1s", "smoke", None, {"method": {"batch_norm": "running", "impl": impl}})
    with pytest.raises(UserError, match="use impl reference"):
        make_method(config, torch.device("cpu"))


def test_running_batch_norm_auto_uses_reference_and_keeps_statistics():
    config = resolve("maml", "omniglot-5w1s", "smoke", None, {"method": {"batch_norm": "running", "impl": "auto"}})
    method = make_method(config, torch.device("cpu")).train()
    _, batch = conv_case("transductive", size=28)
    method(Batch(batch.support_x.float(), batch.support_y, batch.query_x.float(), batch.query_y, 5))
    assert method.impl_used == "reference"
    assert any(b.abs().sum() > 0 for n, b in method.named_buffers() if n.endswith("running_mean"))


@pytest.mark.parametrize("ways", [5, 20])
def test_the_maml_code_inner_loss_takes_steps_ways_times_longer(ways):
    """The MAML code sums per-example cross-entropies over the support set and divides by the
    shots: for N-way tasks, N times the mean loss, so N times the step at the same inner lr."""
    steps = {}
    for convention in ("mean", "sum_over_shots"):
        config = resolve("maml", "omniglot-20w1s", "smoke", None, {"method": {"inner_loss": convention}})
        torch.manual_seed(0)
        method = MAML(config.method_config, dataclasses.replace(config.task_spec, image_size=12), ways).double()
        torch.manual_seed(1)
        x, y = torch.rand(ways * 2, 1, 12, 12, dtype=torch.float64), torch.arange(ways).repeat(2)
        params = dict(method.net.named_parameters())
        adapted = method.adapt(params, x, y, ways, steps=1, second_order=False)
        steps[convention] = torch.cat([(params[k] - adapted[k]).flatten() for k in params])
    assert torch.allclose(steps["sum_over_shots"], ways * steps["mean"], rtol=1e-10, atol=1e-14)


def test_regression_inner_loss_is_the_mean_under_either_convention():
    method, batch = linear_maml(first_order=True)
    params = dict(method.net.named_parameters())
    mean = method.adapt(params, batch.support_x[0], batch.support_y[0], 0, 1, False)
    method.config = dataclasses.replace(method.config, inner_loss="sum_over_shots")
    summed = method.adapt(params, batch.support_x[0], batch.support_y[0], 0, 1, False)
    assert all(torch.equal(mean[k], summed[k]) for k in mean)
