import numpy as np
import torch
from scipy.special import erf

from fmrikit.methods.encoder.model import UniversalEncoder, encoder_loss


def _tiny():
    torch.manual_seed(0)
    return UniversalEncoder({"sub-01": 11, "sub-02": 7}, n_levels=3, n_patches=5, in_channels=6, channels=4,
                            embed_dim=8).eval()


def _softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


def _gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def test_forward_equals_a_loop_over_images_and_voxels():
    model = _tiny()
    feats = torch.randn(2, 3, 5, 6)
    voxels = torch.tensor([0, 4, 10])
    got = model(feats, "sub-01", voxels).detach().numpy()
    p = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    for b in range(2):
        for j, v in enumerate(voxels.tolist()):
            e = p["voxel_embeddings.sub-01"][v]
            q = p["query.weight"] @ e + p["query.bias"]
            pooled = []
            for l in range(3):
                vals = feats[b, l].double().numpy() @ p[f"level_proj.{l}.weight"].T + p[f"level_proj.{l}.bias"]
                keys = vals @ p[f"key_proj.{l}.weight"].T + p[f"key_proj.{l}.bias"] + p["positions"]
                w = _softmax(keys @ q / np.sqrt(8))
                h = w @ vals
                h = _gelu(h @ p[f"mlps.{l}.0.weight"].T + p[f"mlps.{l}.0.bias"])
                pooled.append(h @ p[f"mlps.{l}.2.weight"].T + p[f"mlps.{l}.2.bias"])
            pooled = np.concatenate(pooled)
            fw = _softmax(p["functional"] @ e / np.sqrt(8))
            assert np.isclose(got[b, j], fw @ pooled, rtol=1e-4, atol=1e-6)


def test_voxels_are_independent_and_per_image_sets_work():
    model = _tiny()
    feats = torch.randn(3, 3, 5, 6)
    full = model(feats, "sub-02", torch.arange(7))
    sub = model(feats, "sub-02", torch.tensor([5, 1]))
    torch.testing.assert_close(sub, full[:, [5, 1]])
    per_image = model(feats, "sub-02", torch.tensor([[0, 1], [2, 3], [6, 6]]))
    torch.testing.assert_close(per_image, torch.stack([full[0, [0, 1]], full[1, [2, 3]], full[2, [6, 6]]]))


def test_save_load_round_trip_and_new_subject(tmp_path):
    model = _tiny()
    model.add_subject("sub-05", 4)
    model.save_pretrained(tmp_path / "enc")
    loaded = UniversalEncoder.from_pretrained(tmp_path / "enc").eval()
    feats = torch.randn(2, 3, 5, 6)
    torch.testing.assert_close(loaded(feats, "sub-05", torch.arange(4)), model(feats, "sub-05", torch.arange(4)))


def test_loss_is_the_convex_combination_of_mse_and_cosine():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(4, 9)), rng.normal(size=(4, 9))
    mse = ((pred - target) ** 2).mean()
    cos = np.mean([a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(pred, target)])
    got = encoder_loss(torch.tensor(pred), torch.tensor(target), 0.1).item()
    assert np.isclose(got, 0.9 * mse + 0.1 * (1 - cos))


def test_learns_voxels_that_read_one_patch():
    torch.manual_seed(1)
    feats = torch.randn(64, 2, 5, 3)
    # voxel k responds to channel 0 of patch k at level 0
    target = feats[:, 0, :, 0]
    model = UniversalEncoder({"s": 5}, n_levels=2, n_patches=5, in_channels=3, channels=8, embed_dim=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    voxels = torch.arange(5)
    first = None
    for _ in range(300):
        loss = encoder_loss(model(feats, "s", voxels), target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    held = torch.randn(32, 2, 5, 3)
    r = np.corrcoef(model(held, "s", voxels).detach().numpy().ravel(), held[:, 0, :, 0].numpy().ravel())[0, 1]
    assert loss.item() < 0.3 * first and r > 0.8
