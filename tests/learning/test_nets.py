"""The shared network blocks: `common.learning.nets.Linear` (oneDNN on large CPU products) and the
Q-network's input conversion."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.learning import nets
from common.envs.make import ATARI
from discrete_SQV.networks import DiscreteNet

onednn_here = nets._ONEDNN


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_grad", [True, False])
def test_linear_matches_f_linear_in_value_and_gradients(bias, input_grad, monkeypatch):
    calls = []
    apply = nets._OneDNNLinear.apply
    monkeypatch.setattr(nets._OneDNNLinear, "apply", lambda *a: calls.append(1) or apply(*a))
    torch.manual_seed(0)
    layer = nets.Linear(3136, 512, bias=bias)
    x = torch.randn(64, 3136, requires_grad=input_grad)
    grad = torch.randn(64, 512)
    y = layer(x)
    y.backward(grad)
    got = [t.grad.clone() for t in (x, layer.weight, layer.bias) if t is not None and t.requires_grad]
    for t in (x, layer.weight, layer.bias):
        if t is not None:
            t.grad = None
    expected = F.linear(x, layer.weight, layer.bias)
    expected.backward(grad)
    want = [t.grad for t in (x, layer.weight, layer.bias) if t is not None and t.requires_grad]
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-4)
    assert len(got) == len(want) == 1 + bias + input_grad
    for g, w in zip(got, want):
        assert g.layout == torch.strided
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-4)
    assert len(calls) == (1 if onednn_here else 0)


def test_linear_keeps_small_products_on_the_plain_path(monkeypatch):
    monkeypatch.setattr(nets._OneDNNLinear, "apply", lambda *a: pytest.fail("small product sent to oneDNN"))
    layer, x = nets.Linear(256, 256), torch.randn(64, 256)  # 64·256·256 < ONEDNN_MIN_MACS
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


def test_linear_without_autograd_matches_f_linear():
    """As for a target network: no graph, the same values."""
    layer, x = nets.Linear(3136, 512), torch.randn(32, 3136)
    with torch.no_grad():
        y = layer(x)
    assert not y.requires_grad
    torch.testing.assert_close(y, F.linear(x, layer.weight, layer.bias).detach(), rtol=1e-5, atol=1e-4)


def test_linear_keeps_nn_linear_state_dict():
    """Checkpoints written with plain nn.Linear layers load unchanged."""
    plain, ours = nn.Sequential(nn.Linear(5, 3)), nets.mlp(5, (), 3)
    ours.load_state_dict(plain.state_dict())
    assert isinstance(ours[0], nn.Linear) and list(ours.state_dict()) == list(plain.state_dict())


def test_q_network_inputs_convert_once_and_give_the_same_outputs():
    torch.manual_seed(0)
    net = DiscreteNet(ATARI, (4, 84, 84), 6, imitation=True)
    pixels = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    converted = net.inputs(pixels)
    assert converted.dtype == torch.float32 and converted.is_contiguous(memory_format=torch.channels_last)
    assert net.inputs(converted) is converted  # no second copy
    torch.testing.assert_close(converted, pixels.float())
    for a, b in zip(net(pixels), net(converted)):
        torch.testing.assert_close(a, b)


def test_linear_leaves_autocast_and_a_disabled_onednn_to_the_plain_path(monkeypatch):
    monkeypatch.setattr(nets._OneDNNLinear, "apply", lambda *a: pytest.fail("sent to oneDNN"))
    layer, x = nets.Linear(3136, 512), torch.randn(64, 3136)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == F.linear(x, layer.weight, layer.bias).dtype == torch.bfloat16
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
