import torch
from helpers import resolve

from bench.engine.setup import make_method
from bench.interface.method import Batch
from methods.protonet import prototypes, squared_distances


def test_prototypes_are_class_means():
    z = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [0.0, 5.0], [10.0, 1.0]]])
    labels = torch.tensor([[0, 0, 1, 0]])
    protos = prototypes(z, labels, 2)
    assert torch.allclose(protos, torch.tensor([[[14 / 3, 1.0], [0.0, 5.0]]]))


def test_squared_distances():
    a = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    b = torch.tensor([[[3.0, 4.0]]])
    assert squared_distances(a, b).tolist() == [[[25.0], [13.0]]]


def test_predictions_do_not_depend_on_support_order():
    method = make_method(resolve("protonet", "omniglot-5w1s", "smoke"), torch.device("cpu")).eval()
    torch.manual_seed(0)
    sx, qx = torch.rand(2, 10, 1, 28, 28), torch.rand(2, 6, 1, 28, 28)
    sy = torch.arange(5).repeat_interleave(2).repeat(2, 1)
    qy = torch.zeros(2, 6, dtype=torch.long)
    perm = torch.randperm(10)
    with torch.no_grad():
        a = method(Batch(sx, sy, qx, qy, 5))
        b = method(Batch(sx[:, perm], sy[:, perm], qx, qy, 5))
    assert torch.allclose(a, b, atol=1e-4)


def test_relabelling_classes_relabels_the_predictions():
    method = make_method(resolve("protonet", "omniglot-5w1s", "smoke"), torch.device("cpu")).eval()
    torch.manual_seed(1)
    sx, qx = torch.rand(1, 5, 1, 28, 28), torch.rand(1, 7, 1, 28, 28)
    sy = torch.arange(5).view(1, 5)
    qy = torch.zeros(1, 7, dtype=torch.long)
    relabel = torch.tensor([3, 0, 4, 1, 2])  # class k becomes relabel[k]
    with torch.no_grad():
        a = method(Batch(sx, sy, qx, qy, 5))
        b = method(Batch(sx, relabel[sy], qx, qy, 5))
    assert torch.allclose(b[..., relabel], a, atol=1e-5)
    assert torch.equal(relabel[a.argmax(-1)], b.argmax(-1))


def test_flops_of_a_test_episode_are_the_hand_count():
    """Conv-4 (64 filters, 3x3, max-pool) on 28x28: 2 * Cout * Cin * 9 * H * W per convolution,
    at 28, 14, 7 and 3 pixels; plus the prototypes' one-hot matrix product."""
    from bench.engine.compute import episode_flops

    method = make_method(resolve("protonet", "omniglot-5w1s", "smoke"), torch.device("cpu"))
    per_image = 2 * 64 * 9 * (1 * 28 * 28 + 64 * 14 * 14 + 64 * 7 * 7 + 64 * 3 * 3)
    sy, qy = torch.arange(5).view(1, 5), torch.arange(5).repeat_interleave(3).view(1, 15)
    batch = Batch(torch.rand(1, 5, 1, 28, 28), sy, torch.rand(1, 15, 1, 28, 28), qy, 5)
    assert episode_flops(method, batch) == 20 * per_image + 2 * 5 * 5 * 64
