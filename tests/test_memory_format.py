"""The channels_last layout (``memory_format``): the same numbers as NCHW within float tolerance,
for every convolutional network and method; the layout kept through every convolution instead
of converted at each layer; the same episodes; the choice of ``auto`` and its record."""

import copy
import dataclasses

import pytest
import torch
from helpers import resolve
from torch import nn

from bench.engine import layout as layouts
from bench.engine.runconfig import from_record
from bench.engine.setup import make_method
from bench.interface.backbones import BACKBONES
from bench.interface.method import Batch
from methods import METHODS

CPU = torch.device("cpu")
CHANNELS_LAST = layouts.Layout("channels_last", "channels_last", "test")


def image_batch(tasks=2, ways=5, shots=1, queries=2, size=28, channels=1, dtype=torch.float64) -> Batch:
    g = torch.Generator().manual_seed(0)
    sy = torch.arange(ways).repeat_interleave(shots).repeat(tasks, 1)
    qy = torch.arange(ways).repeat_interleave(queries).repeat(tasks, 1)
    return Batch(torch.rand(tasks, ways * shots, channels, size, size, generator=g, dtype=dtype), sy,
                 torch.rand(tasks, ways * queries, channels, size, size, generator=g, dtype=dtype), qy, ways)


def outputs_and_gradients(method: nn.Module, batch: Batch):
    method.zero_grad(set_to_none=True)
    out = method(batch)
    method.train_loss(out, batch).backward()
    return out.detach(), {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}


def both_layouts(method: nn.Module, batch: Batch):
    """(outputs, gradients) in NCHW and in channels_last, from the same weights."""
    twin = layouts.apply(copy.deepcopy(method), CHANNELS_LAST)
    return outputs_and_gradients(method, batch), outputs_and_gradients(twin, batch.to(CPU, channels_last=True))


def assert_equal_within_float_tolerance(first, second):
    (out_a, grads_a), (out_b, grads_b) = first, second
    torch.testing.assert_close(out_b, out_a, rtol=1e-9, atol=1e-10)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-9, atol=1e-10, msg=name)


METHOD_CASES = [
    ("protonet", {}), ("matchingnet", {}), ("matchingnet", {"full_context": True}),
    ("maml", {"impl": "batched"}), ("maml", {"impl": "split"}), ("maml", {"impl": "reference"}),
    ("csn", {"architecture": "conv4"}), ("csn", {"architecture": "seed"}), ("csn", {"architecture": "paper"}),
    ("csn", {"architecture": "conv4", "conditioning": "grad"}), ("csn", {"architecture": "conv4", "granularity": "channel"}),
]


@pytest.mark.parametrize("name,settings", METHOD_CASES, ids=lambda c: str(c))
def test_every_method_gives_the_nchw_numbers_in_channels_last(name, settings):
    """In float64, so that the only differences are the order of sums: outputs and every gradient
    of a training step agree to 1e-9."""
    torch.manual_seed(0)
    method = make_method(resolve(name, "omniglot-5w1s", "smoke", None, {"method": settings}), CPU).double().train()
    assert_equal_within_float_tolerance(*both_layouts(method, image_batch()))


def test_the_adaresnet_and_resnet12_networks_give_the_nchw_numbers_in_channels_last():
    torch.manual_seed(0)
    config = resolve("csn", "miniimagenet-5w1s", "smoke", None, {"method": {"architecture": "adaresnet"}})
    task = dataclasses.replace(config.task_spec, image_size=20)
    csn = METHODS.get("csn")(config.method_config, task, 5).double().train()
    assert_equal_within_float_tolerance(*both_layouts(csn, image_batch(ways=5, size=20, channels=3)))
    config = resolve("protonet", "miniimagenet-5w1s", "smoke", None, {"method": {"backbone": "resnet12-narrow"}})
    protonet = METHODS.get("protonet")(config.method_config, task, 5).double().train()
    assert_equal_within_float_tolerance(*both_layouts(protonet, image_batch(ways=5, size=20, channels=3)))


@pytest.mark.parametrize("backbone", ["conv4-64-max", "conv4-64-stride", "conv4-32-max", "resnet12-narrow"])
def test_every_convolution_of_a_backbone_sees_channels_last_inputs(backbone):
    """No layer converts back to NCHW: a conversion at one layer would make every later one pay it."""
    net = layouts.apply(BACKBONES.get(backbone)(3, "running"), CHANNELS_LAST)
    seen = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda mod, args, out: seen.append(
                (args[0].is_contiguous(memory_format=torch.channels_last), out.is_contiguous(memory_format=torch.channels_last))))
    x = image_batch(size=20, channels=3, dtype=torch.float32).to(CPU, channels_last=True).support_x.flatten(0, 1)
    net(x)
    assert seen and all(i and o for i, o in seen), seen


def conv_layouts(method: nn.Module, batch: Batch) -> list[bool]:
    """For every 2-d convolution call in a training forward: whether its input was channels_last."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, args, out: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
             for m in method.modules() if isinstance(m, nn.Conv2d)]
    method(batch)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name,settings", [("protonet", {}), ("matchingnet", {}), ("csn", {"architecture": "conv4"}),
                                           ("csn", {"architecture": "paper"})], ids=lambda c: str(c))
def test_the_layout_is_kept_through_every_layer_of_a_method(name, settings):
    """CSN's per-position shifts are read in the stored NHWC order, so the shifted query pass stays
    channels_last; without images of more than one channel a wrong layout could hide (a 1-channel
    image is both layouts at once), so the later layers (64 channels) are what this checks."""
    torch.manual_seed(0)
    method = make_method(resolve(name, "omniglot-5w1s", "smoke", None, {"method": settings}), CPU).train()
    layouts.apply(method, CHANNELS_LAST)
    seen = conv_layouts(method, image_batch(dtype=torch.float32).to(CPU, channels_last=True))
    assert seen and all(seen), seen


def test_maml_converts_at_most_once_per_pass_after_an_adapted_one_channel_layer():
    """learn2learn's update of the first layer's weight, [64, 1, 3, 3], gives it NCHW strides: the
    weight and its gradient are channels_last, but a 1-channel tensor is both layouts at once and
    their elementwise sum comes out NCHW. So the adapted network's first output is NCHW and the
    second convolution converts it back once; every later layer stays channels_last. The support
    pass, with the initial weights, never converts."""
    torch.manual_seed(0)
    method = make_method(resolve("maml", "omniglot-5w1s", "smoke", None, {"method": {"impl": "reference"}}), CPU).train()
    layouts.apply(method, CHANNELS_LAST)
    seen = conv_layouts(method, image_batch(dtype=torch.float32).to(CPU, channels_last=True))
    assert len(seen) == 2 * 8  # per task, one inner step (smoke): a support pass, then the query pass
    for task in range(2):
        support, query = seen[8 * task : 8 * task + 4], seen[8 * task + 4 : 8 * task + 8]
        assert all(support) and query[0] and query[2:] == [True, True], seen


def test_csn_reads_channels_last_values_into_channels_last_shifts():
    from methods.csn import CSN

    torch.manual_seed(0)
    method = layouts.apply(make_method(resolve("csn", "omniglot-5w1s", "smoke", None, {"method": {"architecture": "conv4"}}), CPU),
                           CHANNELS_LAST)
    shifts = []
    original = method.base.forward

    def spy(x, shifts_=None, mode="post_act"):
        if shifts_:
            shifts.extend(shifts_.values())
        return original(x, shifts_, mode)

    method.base.forward = spy
    CSN.forward(method, image_batch(dtype=torch.float32).to(CPU, channels_last=True))
    conv_shifts = [s for s in shifts if s.dim() == 4]
    assert conv_shifts and all(s.is_contiguous(memory_format=torch.channels_last) for s in conv_shifts)


def test_a_channels_last_batch_holds_the_same_values_and_flattens_without_a_copy():
    batch = image_batch(channels=3, dtype=torch.float32)
    uint8 = Batch((batch.support_x * 255).to(torch.uint8), batch.support_y, (batch.query_x * 255).to(torch.uint8),
                  batch.query_y, batch.ways)
    plain, nhwc = uint8.to(CPU), uint8.to(CPU, channels_last=True)
    assert torch.equal(plain.support_x, nhwc.support_x) and torch.equal(plain.query_x, nhwc.query_x)
    assert torch.equal(plain.support_y, nhwc.support_y) and nhwc.support_x.dtype == torch.float32
    flat = nhwc.query_x.flatten(0, 1)
    assert flat.data_ptr() == nhwc.query_x.data_ptr() and flat.is_contiguous(memory_format=torch.channels_last)
    assert not plain.query_x.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    text = Batch(torch.zeros(2, 5, 41, dtype=torch.long), batch.support_y, torch.zeros(2, 10, 41, dtype=torch.long),
                 batch.query_y, 5)
    assert text.to(CPU, channels_last=True).query_x.is_contiguous()  # not images: left as they are


@pytest.mark.parametrize("method,task,device,expected", [
    ("protonet", "omniglot-5w1s", "cpu", "channels_last"),
    ("csn", "omniglot-5w1s", "cpu", "channels_last"),
    ("maml", "omniglot-5w1s", "cpu", "channels_last"),
    ("protonet", "omniglot-5w1s", "cuda", "contiguous"),
    ("maml", "sinusoid-5s", "cpu", "contiguous"),
    ("protonet", "ptb-5w1s", "cpu", "contiguous"),
])
def test_auto_chooses_channels_last_on_the_cpu_for_two_d_convolutions(method, task, device, expected):
    built = make_method(resolve(method, task, "smoke"), CPU)
    chosen = layouts.choose("auto", built, torch.device(device))
    assert chosen.used == expected and chosen.setting == "auto" and chosen.reason.startswith("auto: ")
    assert layouts.choose("contiguous", built, torch.device("cpu")).used == "contiguous"
    assert layouts.choose("channels_last", built, torch.device("cpu")).used == "channels_last"


def test_a_run_record_from_before_the_setting_resumes_contiguous():
    record = resolve("protonet", "omniglot-5w1s", "smoke").to_dict()
    assert record["memory_format"] == "auto"
    del record["memory_format"]
    assert from_record(record, METHODS.get, "a test record").settings.memory_format == "contiguous"


def test_an_unknown_memory_format_is_rejected():
    from bench.errors import UserError

    with pytest.raises(UserError, match="memory_format"):
        resolve("protonet", "omniglot-5w1s", "smoke", None, {"memory_format": "nhwc"})


def test_a_run_in_either_layout_sees_the_same_episodes_and_starts_from_the_same_numbers(tmp_path, data_root):
    """A whole run in each layout: the same training and test episodes, the same first loss (the
    same weights on the same episode) and test results that differ only as float noise does:
    Adam's normalised steps amplify the last bits of each gradient, so after the first update the
    two runs are close, not equal (the float64 step test above is the exact comparison)."""
    import json

    from helpers import invoke, the_run

    runs = {}
    for fmt in ("contiguous", "channels_last"):
        out = tmp_path / fmt
        result = invoke("run", "--method", "protonet", "--task", "omniglot-5w1s", "--profile", "smoke",
                        "--set", f"memory_format={fmt}", "--data-root", data_root, "--out", out)
        assert result.exit_code == 0, result.output
        folder = the_run(out)
        runs[fmt] = {name: [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]
                     for name in ("train", "test_episodes")}
        runs[fmt]["summary"] = json.loads((folder / "summary.json").read_text())
        assert runs[fmt]["summary"]["memory_format"] == {"setting": fmt, "used": fmt, "reason": f"memory_format={fmt}"}
    nchw, nhwc = runs["contiguous"], runs["channels_last"]
    assert [(r["fingerprint"], r["classes"]) for r in nchw["test_episodes"]] == \
           [(r["fingerprint"], r["classes"]) for r in nhwc["test_episodes"]]
    assert nhwc["train"][0]["loss"] == pytest.approx(nchw["train"][0]["loss"], rel=1e-4)  # float32 sums in another order
    assert nhwc["train"][0]["accuracy"] == nchw["train"][0]["accuracy"]
    assert nhwc["summary"]["loss"] == pytest.approx(nchw["summary"]["loss"], rel=0.05)
