import math

import torch
from helpers import resolve

from bench.engine.setup import make_method
from bench.interface.method import Batch
from methods.matchingnet import AttentionLSTM, cosine_attention


def test_attention_is_a_softmax_of_cosine_similarities():
    queries = torch.tensor([[[2.0, 0.0]]])
    support = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])  # cosines 1, 0, -1
    expected = torch.tensor([math.e, 1.0, 1 / math.e]) / (math.e + 1 + 1 / math.e)
    assert torch.allclose(cosine_attention(queries, support), expected.view(1, 1, 3))


def batch(tasks=2, ways=5, shots=2, queries=3, seed=0):
    torch.manual_seed(seed)
    sx, qx = torch.rand(tasks, ways * shots, 1, 28, 28), torch.rand(tasks, ways * queries, 1, 28, 28)
    sy = torch.arange(ways).repeat_interleave(shots).repeat(tasks, 1)
    qy = torch.arange(ways).repeat_interleave(queries).repeat(tasks, 1)
    return Batch(sx, sy, qx, qy, ways)


def method(**settings):
    config = resolve("matchingnet", "omniglot-5w1s", "smoke", None, {"method": settings})
    return make_method(config, torch.device("cpu")).eval()


def test_outputs_are_log_probabilities_of_the_attended_labels():
    net, b = method(), batch()
    with torch.no_grad():
        out = net(b)
        z = net.encoder(torch.cat([b.support_x.flatten(0, 1), b.query_x.flatten(0, 1)]))
    g, f = z[:20].view(2, 10, -1), z[20:].view(2, 15, -1)
    by_hand = cosine_attention(f, g) @ torch.nn.functional.one_hot(b.support_y, 5).float()
    assert torch.allclose(out.exp(), by_hand, atol=1e-6)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 15), atol=1e-5)


def test_without_full_context_the_support_order_does_not_matter():
    net, b = method(), batch(seed=1)
    perm = torch.randperm(10)
    with torch.no_grad():
        a = net(b)
        c = net(Batch(b.support_x[:, perm], b.support_y[:, perm], b.query_x, b.query_y, 5))
    assert torch.allclose(a, c, atol=1e-5)


def test_full_context_reads_the_support_set_in_order_and_queries_stay_independent():
    net, b = method(full_context=True, read_steps=3), batch(seed=2)
    perm = torch.randperm(10)
    with torch.no_grad():
        a = net(b)
        shuffled = net(Batch(b.support_x[:, perm], b.support_y[:, perm], b.query_x, b.query_y, 5))
        first_query_alone = net(Batch(b.support_x, b.support_y, b.query_x[:, :1], b.query_y[:, :1], 5))
    assert not torch.allclose(a, shuffled, atol=1e-5)  # the bidirectional LSTM sees an order
    assert torch.allclose(a[:, :1], first_query_alone, atol=1e-5)  # each query reads on its own


def test_the_attention_lstm_output_is_its_cell_output_plus_the_query_embedding():
    lstm = AttentionLSTM(dim=4, steps=2)
    torch.nn.init.zeros_(lstm.gates.weight)
    torch.nn.init.zeros_(lstm.gates.bias)  # gates 0.5, cell input 0: c stays 0, h = f
    f, g = torch.rand(1, 3, 4), torch.rand(1, 5, 4)
    assert torch.allclose(lstm(f, g), f)
