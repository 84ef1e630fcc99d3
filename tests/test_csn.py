"""The properties listed in shared/docs/csn.md, on tiny networks."""

import pytest
import torch
import torch.nn.functional as F
from helpers import resolve
from torch import nn

from bench.engine.setup import make_method
from bench.interface.method import Batch
from methods.csn import df_information, parse_csn_layers


def csn(task="sinusoid-5s", **method):
    torch.manual_seed(0)
    return make_method(resolve("csn", task, "smoke", None, {"method": method}), torch.device("cpu")).eval()


def regression_batch(tasks=2, support=3, queries=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(tasks, support, 1, generator=g) * 10 - 5
    q = torch.rand(tasks, queries, 1, generator=g) * 10 - 5
    return Batch(x, torch.sin(x), q, torch.sin(q), 0, {"amplitude": torch.ones(tasks), "phase": torch.zeros(tasks)})


def image_batch(tasks=2, ways=5, shots=2, queries=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    sy = torch.arange(ways).repeat_interleave(shots).repeat(tasks, 1)
    qy = torch.arange(ways).repeat_interleave(queries).repeat(tasks, 1)
    return Batch(torch.rand(tasks, ways * shots, 1, 28, 28, generator=g), sy,
                 torch.rand(tasks, ways * queries, 1, 28, 28, generator=g), qy, ways)


def text_batch(tasks=2, ways=5, shots=2, queries=3, seed=0, length=41, vocabulary=8501):
    g = torch.Generator().manual_seed(seed)
    sy = torch.arange(ways).repeat_interleave(shots).repeat(tasks, 1)
    qy = torch.arange(ways).repeat_interleave(queries).repeat(tasks, 1)
    return Batch(torch.randint(vocabulary, (tasks, ways * shots, length), generator=g), sy,
                 torch.randint(vocabulary, (tasks, ways * queries, length), generator=g), qy, ways)


def batch_for(task):
    if task.startswith("sin"):
        return regression_batch()
    return text_batch() if task.startswith("ptb") else image_batch()


class Scaled(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def test_one_step_gradient_equivalence():
    """grad information, value = -lr * I, shift `pre`, one support example with weight 1:
    the shifted pre-activation is one gradient step on that pre-activation."""
    lr = 0.3
    method = csn(conditioning="grad", shift="pre", csn_layers="2")
    method.value = Scaled(-lr)
    x, y = torch.tensor([[[1.5]]]), torch.tensor([[[0.2]]])
    batch = Batch(x, y, x, y, 0)
    with torch.no_grad():
        out = method(batch)
    # by hand: h1 = relu(W1 x + b1); a2 = W2 h1 + b2; step on a2 against (o - y)^2
    l1, l2 = method.base.ops
    a2 = l2(F.relu(l1(x[0]))).detach().requires_grad_(True)
    loss = ((method.head(F.relu(a2)) - y[0]) ** 2).sum()
    (g,) = torch.autograd.grad(loss, a2)
    expected = method.head(F.relu(a2 - lr * g))
    assert torch.allclose(out[0], expected, atol=1e-6)


@pytest.mark.parametrize("shift", ["post_act", "pre", "post"])
@pytest.mark.parametrize("task", ["sinusoid-5s", "omniglot-5w1s", "ptb-5w1s"])
def test_zero_values_give_the_unshifted_network(shift, task):
    method = csn(task, shift=shift, csn_layers="all")
    last = method.value[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        batch = batch_for(task)
        assert torch.equal(method(batch), method.unadapted(batch))


@pytest.mark.parametrize("task", ["sinusoid-5s", "omniglot-5w1s", "ptb-5w1s"])
def test_support_order_does_not_matter(task):
    method = csn(task)
    batch = batch_for(task)
    perm = torch.randperm(batch.support_x.shape[1], generator=torch.Generator().manual_seed(3))
    permuted = Batch(batch.support_x[:, perm], batch.support_y[:, perm], batch.query_x, batch.query_y, batch.ways, batch.extras)
    with torch.no_grad():
        assert torch.allclose(method(batch), method(permuted), atol=1e-5)


def test_output_error_and_df_information_by_hand():
    method = csn("omniglot-5w1s")
    o = torch.tensor([[1.0, 2.0, 0.0, 0.5, -1.0]])
    y = torch.tensor([1])
    p = torch.exp(o) / torch.exp(o).sum()
    e = p - torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(method.output_error(o, y, 5), e)
    # tested on 3 of 5 ways: masked logits get no error
    e3 = torch.softmax(o[:, :3], -1) - torch.tensor([[0.0, 1.0, 0.0]])
    assert torch.allclose(method.output_error(o, y, 3), F.pad(e3, (0, 2)))
    a = torch.tensor([[0.7, -0.2, 0.0]])
    info = df_information(a, e)
    assert torch.allclose(info[0, 0], e[0]) and (info[0, 1:] == 0).all()


@pytest.mark.parametrize("granularity", ["position", "channel"])
@pytest.mark.parametrize("positions", [(5, 5), (7,)])  # conv maps, sentences
def test_fast_df_values_equal_the_value_network_on_the_information(granularity, positions):
    method = csn("omniglot-5w1s", granularity=granularity)
    a = torch.randn(4, 3, *positions)
    e = torch.randn(4, 5)
    fast = method._df_values(a, e)
    info = df_information(a, e)
    if granularity == "channel":
        dims = tuple(range(2, a.dim()))
        info = info.mean(dim=dims).view(4, 3, *(1 for _ in dims), 5)
    assert torch.allclose(fast, method.value(info).squeeze(-1).expand_as(fast), atol=1e-6)


def test_grad_information_equals_autograd_per_example():
    method = csn(conditioning="grad", csn_layers="all")
    method.value = nn.Identity()  # values = information
    x = torch.tensor([[0.5], [-1.0], [2.0]])
    y = torch.tensor([[0.1], [0.3], [-0.2]])
    feats, pre = method.base(x)
    o = method.head(feats)
    values = method.values(pre, o, y, 0)
    for i in range(3):
        f_i, pre_i = method.base(x[i : i + 1])
        loss = ((method.head(f_i) - y[i]) ** 2).sum()
        grads = torch.autograd.grad(loss, pre_i + [f_i])
        for layer in (0, 1):
            assert torch.allclose(values[layer][i], grads[layer][0], atol=1e-6)
        assert torch.allclose(values["out"][i], 2 * (method.head(f_i) - y[i])[0], atol=1e-6)


def test_queries_never_read_other_tasks_memories():
    method = csn("omniglot-5w1s")
    batch = image_batch(tasks=2)
    other = image_batch(tasks=2, seed=9)
    mixed = Batch(torch.stack([batch.support_x[0], other.support_x[1]]), batch.support_y,
                  batch.query_x, batch.query_y, 5)
    with torch.no_grad():
        assert torch.equal(method(batch)[0], method(mixed)[0])
        assert not torch.allclose(method(batch)[1], method(mixed)[1])


def test_a_query_read_applied_to_itself_is_the_normal_prediction():
    method = csn()
    batch = regression_batch(tasks=1, queries=6)
    with torch.no_grad():
        normal = method(batch)
        for j in range(6):
            one = method(batch, read_x=batch.query_x[:, j : j + 1])
            assert torch.allclose(one[:, j], normal[:, j], atol=1e-6)


def test_fewer_test_ways_mask_the_head():
    method = csn("omniglot-5w1s")
    batch = image_batch(ways=3)
    with torch.no_grad():
        assert method(batch).shape == (2, 9, 3)


def test_csn_layers_parsing():
    assert parse_csn_layers("seed", 4) == ([1, 2, 3], True)
    assert parse_csn_layers("all", 2) == ([0, 1], True)
    assert parse_csn_layers("2, out", 4) == ([1], True)
    assert parse_csn_layers("1,3", 4) == ([0, 2], False)
    from bench.errors import UserError

    with pytest.raises(UserError, match="hidden layer number from 1 to 4"):
        parse_csn_layers("5", 4)


def test_the_text_architecture_shifts_the_second_convolution_per_position_the_dense_layer_and_the_output():
    method = csn("ptb-5w1s")
    assert method.architecture == "text" and method.csn_hidden == [1, 2] and method.csn_out
    batch = text_batch()
    sx, sy = batch.support_x.flatten(0, 1), batch.support_y.flatten(0, 1)
    feats, pre = method.base(sx)
    values = method.values(pre, method.head(feats), sy, 5)
    assert values[1].shape == (20, 128, 41) and values[2].shape == (20, 128) and values["out"].shape == (20, 5)
    with torch.no_grad():
        assert not torch.allclose(method(batch), method.unadapted(batch))
