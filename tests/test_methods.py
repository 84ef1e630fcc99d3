"""Every registered method, parametrised over the registry: new methods are tested automatically."""

import pytest
import torch
from helpers import resolve

from bench.engine.setup import make_method
from bench.interface.method import Batch
from methods import METHODS

TASK_FOR_KIND = {"classification": "omniglot-5w1s", "regression": "sinusoid-5s"}
CASES = [(name, kind) for name in METHODS for kind in sorted(METHODS.get(name).kinds)]


def toy_batch(kind: str, tasks: int = 2) -> Batch:
    g = torch.Generator().manual_seed(0)
    if kind == "classification":
        sy = torch.arange(5).repeat(tasks, 1)
        qy = torch.arange(5).repeat_interleave(2).repeat(tasks, 1)
        return Batch(torch.rand(tasks, 5, 1, 28, 28, generator=g), sy, torch.rand(tasks, 10, 1, 28, 28, generator=g), qy, 5)
    x = torch.rand(tasks, 5, 1, generator=g) * 10 - 5
    q = torch.rand(tasks, 7, 1, generator=g) * 10 - 5
    amp = torch.full((tasks,), 2.0)
    return Batch(x, torch.sin(x) * 2, q, torch.sin(q) * 2, 0, {"amplitude": amp, "phase": torch.zeros(tasks)})


@pytest.mark.parametrize("name,kind", CASES)
def test_training_step_shapes_finite_and_every_parameter_learns(name, kind):
    config = resolve(name, TASK_FOR_KIND[kind], "smoke")
    method = make_method(config, torch.device("cpu")).train()
    batch = toy_batch(kind)
    out = method(batch)
    width = 5 if kind == "classification" else 1
    assert out.shape == (2, batch.query_x.shape[1], width)
    loss = method.train_loss(out, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in method.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"


@pytest.mark.parametrize("name,kind", CASES)
def test_evaluation_is_deterministic_and_needs_no_outer_grad(name, kind):
    config = resolve(name, TASK_FOR_KIND[kind], "smoke")
    method = make_method(config, torch.device("cpu")).eval()
    batch = toy_batch(kind)
    with torch.no_grad():
        a, b = method(batch), method(batch)
    assert not a.requires_grad
    assert torch.equal(a, b)


@pytest.mark.parametrize("name,kind", CASES)
def test_tasks_in_a_batch_do_not_interact(name, kind):
    method = make_method(resolve(name, TASK_FOR_KIND[kind], "smoke"), torch.device("cpu")).eval()
    batch = toy_batch(kind, tasks=3)
    with torch.no_grad():
        together = method(batch)
        alone = torch.cat([method(batch.slice(t, t + 1)) for t in range(3)])
    assert torch.allclose(together, alone, atol=1e-4)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_profile_builds_for_every_supported_task(name):
    from bench.data.tasks import TASKS
    from bench.engine.runconfig import profiles

    cls = METHODS.get(name)
    for profile in profiles(cls):
        for task in TASKS:
            if TASKS.get(task).kind in cls.kinds:
                make_method(resolve(name, task, profile), torch.device("cpu"))
