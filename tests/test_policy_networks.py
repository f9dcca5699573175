"""Score networks and observation encoders: shapes, causality, sizes, image trunk."""

import pytest
import torch
from torch import nn

from policies.encoders import ObservationEncoder, crop_images
from policies.networks import DiffusionGPT, ResidualMLP
from policies.resnet import ResNet18, SpatialSoftmax

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(b=3, horizon=6, a=4, n_obs=2, d_obs=10, d_goal=5):
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(b, horizon, a, generator=g),
        torch.randn(b, generator=g),
        torch.randn(b, n_obs, d_obs, generator=g),
        torch.randn(b, 1, d_goal, generator=g),
    )


@pytest.mark.parametrize("cls", [ResidualMLP, DiffusionGPT])
def test_networks_read_every_input(cls):
    kw = {"d_model": 48, "n_layers": 2, "n_heads": 4} if cls is DiffusionGPT else {"hidden": 32}
    net = cls(4, 6, 10, 2, 5, 1, **kw).eval()
    x, noise, obs, goal = _inputs()
    out = net(x, noise, obs, goal)
    assert out.shape == x.shape
    for i, changed in enumerate([x + 1, noise + 1, obs + 1, goal + 1]):
        args = [x, noise, obs, goal]
        args[i] = changed
        assert not torch.allclose(net(*args), out), f"input {i} is ignored"
    goal_free = cls(4, 6, 10, 2, **kw).eval()
    assert goal_free(x, noise, obs).shape == x.shape


def test_gpt_is_causal_over_action_tokens():
    net = DiffusionGPT(4, 6, 10, 2, 5, 1, d_model=48, n_layers=2, n_heads=4).eval()
    x, noise, obs, goal = _inputs()
    out = net(x, noise, obs, goal)
    later = x.clone()
    later[:, 3:] += 1.0  # change actions 3.. : outputs 0..2 must not move
    out2 = net(later, noise, obs, goal)
    torch.testing.assert_close(out2[:, :3], out[:, :3])
    assert not torch.allclose(out2[:, 3:], out[:, 3:])


def test_gpt_size_matches_beso_block_push():
    # anchors/beso.md: d=240, 4 layers, 12 heads is about 2.78M parameters in the blocks
    net = DiffusionGPT(2, 5, 16, 5, 10, 1, d_model=240, n_layers=4, n_heads=12)
    blocks = sum(p.numel() for p in net.blocks.parameters())
    assert blocks == 4 * (240 * 720 + 720 + 240 * 240 + 240 + 2 * 240 * 960 + 960 + 240 + 4 * 240)
    assert 2.7e6 < blocks < 2.85e6


def test_resnet18_trunk_has_resnet18_size_and_groupnorm():
    trunk = ResNet18()
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in the classifier
    assert sum(p.numel() for p in trunk.parameters()) == 11_689_512 - 513_000
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in trunk.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in trunk.modules())
    assert trunk(torch.zeros(2, 3, 76, 76)).shape == (2, 512, 3, 3)


def test_spatial_softmax_finds_a_hot_spot():
    ss = SpatialSoftmax(1, 1)
    with torch.no_grad():
        ss.proj.weight.fill_(1.0)
        ss.proj.bias.zero_()
    feat = torch.zeros(1, 1, 5, 9)
    feat[0, 0, 4, 2] = 100.0  # bottom row, third column
    torch.testing.assert_close(ss(feat), torch.tensor([[-0.5, 1.0]]))


def test_crops_random_per_image_and_centred():
    x = torch.arange(2 * 10 * 10, dtype=torch.float32).view(2, 1, 10, 10).repeat(64, 1, 1, 1)
    centre = crop_images(x, (6, 6), random=False)
    torch.testing.assert_close(centre, x[:, :, 2:8, 2:8])
    torch.manual_seed(0)
    rand = crop_images(x, (6, 6), random=True)
    corners = {(int(r[0, 0, 0]) % 100) for r in rand}
    assert len(corners) > 10  # different windows for different images
    for r, full in zip(rand, x, strict=True):
        top, left = divmod(int(r[0, 0, 0]) % 100, 10)
        torch.testing.assert_close(r, full[:, top : top + 6, left : left + 6])


def test_observation_encoder_concatenates_proprio_cameras_embeddings():
    enc = ObservationEncoder(
        {"joint_pos": 7, "eef_pos": 3},
        ["front", "wrist"],
        {"dino": 12},
        d_state=8,
        d_camera=16,
        d_embedding=4,
        keypoints=8,
        crop=(56, 56),
    ).eval()
    assert enc.out_dim == 8 + 2 * 16 + 4
    obs = {
        "joint_pos": torch.randn(2, 3, 7),
        "eef_pos": torch.randn(2, 3, 3),
        "front": torch.randint(0, 255, (2, 3, 64, 64, 3), dtype=torch.uint8),
        "wrist": torch.randint(0, 255, (2, 3, 64, 64, 3), dtype=torch.uint8),
        "dino": torch.randn(2, 3, 12),
    }
    out = enc(obs)
    assert out.shape == (2, 3, 44)
    # each step is encoded on its own: a step's features do not depend on the other steps
    one = enc({k: v[:, 1:2] for k, v in obs.items()})
    torch.testing.assert_close(one[:, 0], out[:, 1], atol=1e-5, rtol=1e-5)
    obs["wrist"] = obs["wrist"].flip(2)
    changed = enc(obs)
    torch.testing.assert_close(changed[..., :24], out[..., :24])
    assert not torch.allclose(changed[..., 24:40], out[..., 24:40])


@pytest.mark.parametrize("trunk", ["resnet18", "compact"])
def test_inference_layout_gives_the_same_features(trunk):
    enc = ObservationEncoder(
        {}, ["front"], keypoints=8, d_camera=16, crop=(60, 60), image_trunk=trunk
    ).eval()
    obs = {"front": torch.randint(0, 255, (1, 2, 64, 64, 3), dtype=torch.uint8)}
    with torch.no_grad():
        before = enc(obs)
        after = enc.for_inference()(obs)
    assert enc.cameras["front"].channels_last
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_compact_trunk_is_a_fraction_of_the_resnet():
    sizes = {
        t: sum(p.numel() for p in ObservationEncoder({}, ["front"], image_trunk=t).parameters())
        for t in ("resnet18", "compact")
    }
    assert sizes["compact"] * 50 < sizes["resnet18"]
    with pytest.raises(ValueError, match="image_trunk='vgg': use one of"):
        ObservationEncoder({}, ["front"], image_trunk="vgg")
