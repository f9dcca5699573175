"""Backbones: weight files built here in the published layouts, loaded through load_backbone;
the offline backbones fitted on a small synthetic folder; the embedding cache. No downloads."""

import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from decomposer import BACKBONES, DecomposerError, load_backbone, nets
from decomposer.embed_cache import embeddings_dir, episode_embeddings
from decomposer.encoder import release_freed_memory
from decomposer.fitting import fit_backbone
from decomposer.weights import file_hash, pack_state_dict
from demos.errors import DemoFolderError
from demos.synthetic import make_folder

PRETRAINED = ["resnet18", "resnet50", "dinov2_vits14", "clip_rn50", "r3m", "vip", "liv"]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty weights cache in tmp, downloads off."""
    monkeypatch.setenv("UVDIFF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("UVDIFF_OFFLINE", "1")
    return tmp_path / "cache" / "weights"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("syn") / "demo", 2, T=40, size=(36, 48))


def frames(n=5, h=60, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- the table


def test_table_names_licenses_and_urls():
    names = set(BACKBONES)
    assert set(PRETRAINED) | {"pixels", "state", "vip_local", "bc_local"} <= names
    for name in PRETRAINED:
        spec = BACKBONES[name]
        assert spec.url.startswith("https://") and spec.filename and spec.license
        assert spec.dim > 0 and not spec.offline
    assert "NC" in BACKBONES["vip"].license and not BACKBONES["vip"].commercial
    assert BACKBONES["r3m"].license == "MIT" and BACKBONES["dinov2_vits14"].license == "Apache-2.0"
    with pytest.raises(DecomposerError, match="unknown backbone 'vc9'.*resnet18"):
        load_backbone("vc9")


def test_architectures_have_the_published_keys_and_shapes():
    """Facts about the published files, checked on the nets without allocating them."""
    with torch.device("meta"):
        r50 = nets.ResNet("resnet50").state_dict()
        r18 = nets.ResNet("resnet18").state_dict()
        vip = nets.ResNet("resnet50", out_dim=1024).state_dict()
        clip = nets.ClipResNet().state_dict()
        vit = nets.ViT().state_dict()
    assert r50["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert r50["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert r50["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)
    assert "fc.weight" not in r50 and r18["layer4.1.bn2.running_var"].shape == (512,)
    assert vip["fc.weight"].shape == (1024, 2048)
    assert clip["conv3.weight"].shape == (64, 32, 3, 3)
    assert clip["attnpool.positional_embedding"].shape == (50, 2048)
    assert clip["attnpool.c_proj.weight"].shape == (1024, 2048)
    assert clip["layer2.0.downsample.0.weight"].shape == (512, 256, 1, 1)
    assert vit["pos_embed"].shape == (1, 1370, 384)
    assert vit["blocks.11.attn.qkv.weight"].shape == (1152, 384)
    assert vit["blocks.0.ls1.gamma"].shape == (384,)
    assert vit["patch_embed.proj.weight"].shape == (384, 3, 14, 14)
    assert vit["mask_token"].shape == (1, 384)


def _cubic_resample(a: np.ndarray, n_out: int, step: float) -> np.ndarray:
    """Resample axis 0 of ``a`` to ``n_out`` samples at source positions (i + 0.5) * step - 0.5,
    with the cubic convolution kernel (A = -0.75) and edge-clamped taps: bicubic written
    out from its definition, one axis at a time."""
    A = -0.75

    def kernel(x):
        x = abs(x)
        if x <= 1:
            return (A + 2) * x**3 - (A + 3) * x**2 + 1
        return A * x**3 - 5 * A * x**2 + 8 * A * x - 4 * A if x < 2 else 0.0

    out = np.zeros((n_out, *a.shape[1:]))
    for i in range(n_out):
        src = (i + 0.5) * step - 0.5
        base = int(np.floor(src))
        for tap in range(base - 1, base + 3):
            out[i] += kernel(src - tap) * a[min(max(tap, 0), len(a) - 1)]
    return out


@pytest.mark.parametrize("size", [(70, 84), (98, 98), (42, 56)])
def test_vit_position_embeddings_resample_like_dinov2(size):
    # DINOv2 resamples its 37 x 37 grid by scale factor (n + 0.1) / 37, not to the exact size n:
    # the sample positions are (i + 0.5) * 37 / (n + 0.1) - 0.5
    torch.manual_seed(0)
    vit = nets.ViT(patch=14, dim=8, depth=1, heads=2, pretrain_size=14 * 6)  # a 6 x 6 grid
    pos = vit.pos_embed[0].detach().numpy().astype(np.float64)
    h, w = size[0] // 14, size[1] // 14
    grid = pos[1:].reshape(6, 6, -1)
    ref = _cubic_resample(grid, h, 6 / (h + 0.1))
    ref = _cubic_resample(ref.transpose(1, 0, 2), w, 6 / (w + 0.1)).transpose(1, 0, 2)
    with torch.no_grad():
        got = vit.position_embeddings(*size).numpy()
    assert got.shape == (1 + h * w, 8)
    np.testing.assert_allclose(got[0], pos[0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(got[1:], ref.reshape(h * w, -1), rtol=0, atol=1e-5)


def test_vit_keeps_its_stored_grid_only_for_a_square_image_of_that_grid():
    vit = nets.ViT(patch=14, dim=8, depth=1, heads=2, pretrain_size=14 * 6)
    with torch.no_grad():
        assert torch.equal(vit.position_embeddings(84, 84), vit.pos_embed[0])
        # 84 x 90 pixels is still 6 x 6 patches, but DINOv2 resamples a non-square image
        assert not torch.equal(vit.position_embeddings(84, 90), vit.pos_embed[0])


# ---------------------------------------------------------------- pretrained files


def test_resnet18_torchvision_file_gives_pooled_features(tmp_path, offline):
    torch.manual_seed(0)
    net = nets.ResNet("resnet18").eval()
    sd = dict(net.state_dict())
    sd["fc.weight"], sd["fc.bias"] = torch.randn(1000, 512), torch.zeros(1000)  # the classifier
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(sd, path)

    enc = load_backbone("resnet18", weights=path, device="cpu")
    x = frames(3)
    e = enc.embed(x)
    assert e.shape == (3, 512) and e.dtype == np.float32 and enc.dim == 512
    with torch.no_grad():  # the pooled trunk, not the 1000 logits
        ref = net(enc.preprocess(x)).numpy()
    np.testing.assert_allclose(e, ref, rtol=1e-4, atol=1e-5)
    assert enc.name == "resnet18" and enc.weights_hash == file_hash(path)

    # the same file from the cache directory, no weights= and no download
    (offline / "resnet18").mkdir(parents=True)
    (offline / "resnet18" / "resnet18-f37072fd.pth").write_bytes(path.read_bytes())
    np.testing.assert_allclose(load_backbone("resnet18").embed(x), e, rtol=1e-5)


def test_r3m_and_vip_checkpoints_load(tmp_path):
    """R3M / VIP files: the ResNet-50 under 'module.convnet.' in a 'r3m' / 'vip' dict, beside
    the language and reward heads that are not used."""
    torch.manual_seed(0)
    trunk = nets.ResNet("resnet50").state_dict()
    r3m = {f"module.convnet.{k}": v for k, v in trunk.items()}
    r3m["module.lang_enc.fc.weight"] = torch.zeros(3, 3)
    torch.save({"r3m": r3m}, tmp_path / "r3m.pt")
    vip = {**r3m, "module.convnet.fc.weight": torch.randn(1024, 2048) * 0.01}
    vip["module.convnet.fc.bias"] = torch.zeros(1024)
    torch.save({"vip": vip, "optimizer": {"lr": 1e-4}}, tmp_path / "vip.pt")

    x = frames(2, 90, 120)
    e_r3m = load_backbone("r3m", weights=tmp_path / "r3m.pt").embed(x)
    e_vip = load_backbone("vip", weights=tmp_path / "vip.pt").embed(x)
    assert e_r3m.shape == (2, 2048) and e_vip.shape == (2, 1024)
    fc = vip["module.convnet.fc.weight"].numpy()
    np.testing.assert_allclose(e_vip, e_r3m @ fc.T, rtol=1e-3, atol=1e-4)  # same trunk + fc


def test_liv_checkpoint_round_trip(tmp_path):
    spec = BACKBONES["liv"]
    torch.manual_seed(0)
    ckpt = pack_state_dict(nets.ClipResNet().state_dict(), spec)
    assert "module.model.visual.attnpool.q_proj.weight" in ckpt["liv"]
    torch.save(ckpt, tmp_path / "liv.pt")
    e = load_backbone("liv", weights=tmp_path / "liv.pt").embed(frames(2))
    assert e.shape == (2, 1024) and np.isfinite(e).all()


def test_wrong_architecture_and_unreadable_files(tmp_path):
    torch.save(nets.ResNet("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(DecomposerError, match=r"r18\.pth for backbone resnet50: wrong arch"):
        load_backbone("resnet50", weights=tmp_path / "r18.pth")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DecomposerError, match=r"junk\.pt: not a readable weights file"):
        load_backbone("vip", weights=tmp_path / "junk.pt")
    with pytest.raises(DecomposerError, match="does not exist"):
        load_backbone("vip", weights=tmp_path / "nope.pt")


@pytest.mark.parametrize("name", PRETRAINED)
def test_offline_without_a_file_says_url_cache_and_how(name, offline):
    spec = BACKBONES[name]
    with pytest.raises(DecomposerError) as err:
        load_backbone(name)
    msg = str(err.value)
    assert spec.url in msg
    assert str(offline / name / spec.filename) in msg
    assert "weights=PATH" in msg and "UVDIFF_OFFLINE" in msg


def test_failed_download_is_reported(offline, monkeypatch):
    monkeypatch.delenv("UVDIFF_OFFLINE")

    def no_network(*a, **k):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(DecomposerError, match="download failed: no route to host.*weights=PATH"):
        load_backbone("r3m")
    assert not (offline / "r3m" / "model.pt").exists()


def test_bad_frames_are_refused(tmp_path, demo):
    enc = load_backbone("pixels", fit_backbone("pixels", demo))
    with pytest.raises(DecomposerError, match="uint8"):
        enc.embed(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(DecomposerError, match="no frames"):
        enc.embed(iter([]))


# ---------------------------------------------------------------- preprocessing, chunks


def test_aspect_ratio_kept_by_central_crop(demo):
    enc = load_backbone("pixels", fit_backbone("pixels", demo))
    wide = np.zeros((1, 40, 120, 3), np.uint8)
    wide[:, :, 40:80] = 200  # only the central square is bright
    x = enc.preprocess(wide)
    assert x.shape == (1, 3, 32, 32)
    assert float(x.min()) == pytest.approx(200 / 255)  # the dark sides were cropped away


def test_chunks_and_iterators_give_the_same_embeddings(demo):
    enc = load_backbone("pixels", fit_backbone("pixels", demo))
    x = demo.read_frames(demo.episode_ids[0], "agentview")
    full = enc.embed(x)
    enc.chunk = 7
    np.testing.assert_allclose(enc.embed(iter(x)), full, rtol=1e-5, atol=1e-6)
    # each chunk's result owns its few bytes: a view would pin the chunk's whole tensor
    # storage until the video ends (the bound check in bench_backbones.py caught that)
    part = enc._forward(enc.preprocess(x[:7]))
    assert part.base is None and part.nbytes == 7 * enc.dim * 4


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads Linux's /proc")
def test_memory_freed_by_a_chunk_goes_back_to_the_os():
    # 200 MB of heap blocks (below glibc's mmap threshold), freed but for the last one, which
    # pins the top of the heap: glibc keeps the pages until they are trimmed explicitly
    blocks = [np.ones(100_000 // 8) for _ in range(2000)]
    last = blocks[-1]
    del blocks
    before = resident_mb()
    release_freed_memory()
    assert before - resident_mb() > 100
    assert last.sum() == len(last)


# ---------------------------------------------------------------- offline backbones


def test_pixels_state_vip_local_fit_and_reuse(demo):
    paths = {}
    for name, args in (("pixels", {}), ("state", {}), ("vip_local", {"steps": 10})):
        paths[name] = fit_backbone(name, demo, **args)
        mtime = paths[name].stat().st_mtime_ns
        assert fit_backbone(name, demo, **args) == paths[name]  # reused, not refitted
        assert paths[name].stat().st_mtime_ns == mtime
        assert paths[name].suffix == ".safetensors"
    assert fit_backbone("vip_local", demo, steps=11) != paths["vip_local"]  # parameters count

    ep = demo.episode_ids[0]
    T = len(demo.read_lowdim(ep)["action"])
    pix = load_backbone("pixels", paths["pixels"])
    st = load_backbone("state", paths["state"])
    vip = load_backbone("vip_local", paths["vip_local"])
    e_pix = episode_embeddings(demo, ep, pix)
    e_st = episode_embeddings(demo, ep, st)
    e_vip = episode_embeddings(demo, ep, vip)
    assert e_pix.shape == (T, pix.dim) and 1 <= pix.dim <= 32
    assert e_st.shape == (T, 10)  # joint_pos (7) + eef_pos (3), standardised
    assert e_vip.shape == (T, 32)
    low = demo.read_lowdim(ep)
    raw = np.hstack([low["joint_pos"], low["eef_pos"]])
    corr = np.corrcoef(e_st[:, 7], raw[:, 7])[0, 1]  # an affine map of the same column
    assert corr == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(DecomposerError, match="metadata backbone='pixels', expected 'state'"):
        load_backbone("state", paths["pixels"])
    with pytest.raises(DecomposerError, match="fitted on a demo folder.*fit_backbone"):
        load_backbone("pixels")


def test_vip_local_training_lowers_its_loss(demo):
    from safetensors import safe_open

    path = fit_backbone("vip_local", demo, steps=60, seed=1)
    import json

    with safe_open(str(path), "pt") as f:
        info = json.loads(f.metadata()["info"])
    assert info["loss_last"] < info["loss_first"]


def test_embedding_cache_is_keyed_by_weights_hash(demo, monkeypatch):
    ep = demo.episode_ids[1]
    enc = load_backbone("state", fit_backbone("state", demo))
    first = episode_embeddings(demo, ep, enc)
    where = embeddings_dir(demo, enc, None)
    assert where.name == "state" and where.parent.name.startswith(f"state-{enc.weights_hash}-")
    assert (where / f"{ep}.npy").is_file()

    def boom(*a, **k):
        raise AssertionError("embedded again instead of reading the cache")

    monkeypatch.setattr(enc, "embed", boom)
    np.testing.assert_array_equal(episode_embeddings(demo, ep, enc), first)  # a hit
    enc.weights_hash = "0" * 16  # other weights: another cache entry, so a miss
    with pytest.raises(AssertionError, match="embedded again"):
        episode_embeddings(demo, ep, enc)


def test_embedding_cache_is_keyed_by_preprocessing(demo, monkeypatch):
    # the same weights with another input size or normalisation embed differently: a miss
    enc = load_backbone("pixels", fit_backbone("pixels", demo))
    ep = demo.episode_ids[0]
    episode_embeddings(demo, ep, enc, "agentview")
    key = enc.cache_key

    def boom(*a, **k):
        raise AssertionError("embedded again")

    monkeypatch.setattr(enc, "embed", boom)
    episode_embeddings(demo, ep, enc, "agentview")  # a hit
    enc.size += 4
    assert enc.cache_key != key and enc.cache_key.startswith(f"pixels-{enc.weights_hash}-")
    with pytest.raises(AssertionError, match="embedded again"):
        episode_embeddings(demo, ep, enc, "agentview")


def test_bc_local_learns_the_demos_actions_and_embeds_keypoints(demo):
    import json

    from safetensors import safe_open

    args = {"steps": 80, "size": 32, "batch": 16, "seed": 1}
    path = fit_backbone("bc_local", demo, **args)
    assert fit_backbone("bc_local", demo, **args) == path  # reused
    with safe_open(str(path), "pt") as f:
        info = json.loads(f.metadata()["info"])
    assert info["proprio"] == ["joint_pos", "eef_pos"]  # the arm's keys of the folder
    assert info["loss_last"] < 0.8 * info["loss_first"]
    enc = load_backbone("bc_local", path)
    ep = demo.episode_ids[0]
    e = episode_embeddings(demo, ep, enc)
    assert e.shape == (len(demo.read_lowdim(ep)["action"]), 64)
    assert np.abs(e).max() <= 1.0  # soft-argmax image coordinates
    with pytest.raises(DemoFolderError, match="state keys \\['object'\\] are missing"):
        fit_backbone("bc_local", demo, proprio=["object"], steps=1)
    # a folder bigger than max_frames: every k-th frame of each episode is kept
    lengths = [len(demo.read_lowdim(e)["action"]) for e in demo.episode_ids]
    k = -(-sum(lengths) // 30)
    assert k > 1
    small = fit_backbone("bc_local", demo, steps=2, size=32, batch=4, max_frames=30)
    with safe_open(str(small), "pt") as f:
        assert json.loads(f.metadata()["info"])["frames"] == sum(-(-n // k) for n in lengths)


def test_bc_local_is_refitted_when_the_demos_actions_change(tmp_path):
    folder = make_folder(tmp_path / "demo", 2, T=20, size=(32, 32))
    first = fit_backbone("bc_local", folder, steps=2, size=32, batch=4)
    ep = folder.episode_ids[0]
    low = dict(np.load(folder.episode_dir(ep) / "lowdim.npz"))
    low["action"] = low["action"] + 1.0
    np.savez(folder.episode_dir(ep) / "lowdim.npz", **low)
    changed = fit_backbone("bc_local", folder, steps=2, size=32, batch=4)
    assert changed != first
    lit = fit_backbone("bc_local", folder, steps=2, size=32, batch=4, brightness=0.4)
    assert lit != changed  # another augmentation, another fit


def test_random_shift_moves_each_image_by_at_most_the_pad():
    from decomposer.fitting import random_shift

    torch.manual_seed(0)
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 4] = 1.0  # one lit pixel in the middle
    y = random_shift(x, 2)
    assert y.shape == x.shape
    where = y[:, 0].flatten(1).argmax(1)
    rows, cols = where // 9, where % 9
    assert ((rows - 4).abs() <= 2).all() and ((cols - 4).abs() <= 2).all()
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 10  # offsets differ per image
    assert torch.equal(random_shift(x, 0), x)


def test_random_brightness_scales_each_image_within_the_amount():
    from decomposer.fitting import random_brightness

    torch.manual_seed(0)
    x = torch.full((256, 3, 4, 4), 0.5)
    y = random_brightness(x.clone(), 0.4)
    gains = y[:, 0, 0, 0] / 0.5
    assert ((gains >= 0.6 - 1e-6) & (gains <= 1.4 + 1e-6)).all()
    assert gains.min() < 0.7 and gains.max() > 1.3  # the whole range is drawn
    assert torch.equal(y, y[:, :1, :1, :1].expand_as(y))  # one factor per image, all pixels
    assert random_brightness(torch.ones(8, 3, 2, 2), 0.4).max() <= 1.0  # clipped
    assert torch.equal(random_brightness(x, 0.0), x)
