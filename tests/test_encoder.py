import math

import pytest
import torch

from hetskel.model.encoder import (
    EncoderConfig,
    UnifiedEncoder,
    get_preset,
    list_presets,
    register_preset,
    sinusoidal_positions,
)


def tiny(**kw):
    base = dict(d_model=32, ff_dim=48, num_frames=12, proj_dims=(40, 40, 24))
    base.update(kw)
    return get_preset("small", **base)


def rand(n, m, t, v, c, seed=0):
    return torch.randn(n, m, t, v, c, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("persons", [1, 2, 3])
def test_shapes_for_any_person_count_and_channels(persons):
    cfg = tiny(max_persons=persons)
    chans = {"J": 3, "C": 2, "S": 1}
    enc = UnifiedEncoder(cfg, chans, num_joints=7)
    x = {k: rand(5, persons, 12, 7, c, seed=i) for i, (k, c) in enumerate(chans.items())}
    out = enc(x)
    assert set(out) == {"fused", "single/J", "single/C", "single/S"}
    assert all(v.shape == (5, 64) for v in out.values())
    assert enc.out_dim == 64 and cfg.out_dim == 64
    assert enc.represent(x).shape == (5, 64)
    assert enc.project("C", out["fused"]).shape == (5, 24)
    # the spatial stream sees M*V tokens, the temporal stream one token per frame
    t, s = enc.embed_modality("J", x["J"])
    assert t.shape == (5, 12, 32) and s.shape == (5, persons * 7, 32)


def test_forward_matches_separate_streams():
    enc = UnifiedEncoder(tiny(), {"J": 3, "C": 3}, num_joints=5).eval()
    x = {"J": rand(4, 2, 12, 5, 3, 1), "C": rand(4, 2, 12, 5, 3, 2)}
    out = enc(x)
    torch.testing.assert_close(out["fused"], enc.encode_fused(x))
    torch.testing.assert_close(out["single/J"], enc.encode_single("J", x["J"]))
    torch.testing.assert_close(out["single/C"], enc.represent({"C": x["C"]}, stream="single"))
    # with one modality the fusion mean is that modality's embedding alone (then the fusion layer)
    t, s = enc.embed_modality("J", x["J"])
    torch.testing.assert_close(enc.represent({"J": x["J"]}),
                               enc.encode_tokens(enc.fuse_t(t), enc.fuse_s(s)))
    with pytest.raises(ValueError, match="exactly one"):
        enc.represent(x, stream="single")


def test_fewer_persons_are_zero_padded():
    enc = UnifiedEncoder(tiny(max_persons=3), {"J": 3}, num_joints=4).eval()
    x = rand(2, 1, 12, 4, 3)
    padded = torch.cat([x, torch.zeros(2, 2, 12, 4, 3)], dim=1)
    torch.testing.assert_close(enc.represent({"J": x}), enc.represent({"J": padded}))
    with pytest.raises(ValueError, match="M<=3"):
        enc.represent({"J": rand(2, 4, 12, 4, 3)})


def test_bad_inputs_are_reported():
    enc = UnifiedEncoder(tiny(), {"J": 3}, num_joints=4)
    with pytest.raises(ValueError, match=r"T=12"):
        enc({"J": rand(2, 2, 11, 4, 3)})
    with pytest.raises(ValueError, match=r"C=3"):
        enc({"J": rand(2, 2, 12, 4, 2)})
    with pytest.raises(KeyError, match="no modality 'X'"):
        enc({"X": rand(2, 2, 12, 4, 3)})
    with pytest.raises(ValueError, match="at least one"):
        enc({})
    with pytest.raises(ValueError, match="at least one modality"):
        UnifiedEncoder(tiny(), {}, num_joints=4)


def test_umurl_layer_choices():
    enc = UnifiedEncoder(tiny(), {"J": 3}, num_joints=25)
    layer = enc.temporal.layers[0]
    assert layer.norm_first is False                      # UmURL: PyTorch's default post-norm layer
    assert layer.linear1.out_features == 48 and layer.self_attn.num_heads == 1
    assert len(enc.temporal.layers) == 1 and len(enc.spatial.layers) == 1
    assert enc.fuse_t.bias is None and enc.fuse_s.bias is None
    proj = enc.projectors["J"]
    kinds = [type(m).__name__ for m in proj]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert proj[0].in_features == 64 and proj[-1].out_features == 24


def test_sinusoidal_positions():
    pe = sinusoidal_positions(10, 8)
    assert pe.shape == (10, 8)
    assert pe[3, 0] == pytest.approx(math.sin(3.0))
    assert pe[3, 1] == pytest.approx(math.cos(3.0))
    assert pe[5, 2] == pytest.approx(math.sin(5 * 10000 ** (-2 / 8)))
    assert sinusoidal_positions(4, 7).shape == (4, 7)    # odd widths work too


def test_presets_registry():
    assert {"paper", "small", "tiny"} <= set(list_presets())
    p = get_preset("paper")
    assert (p.d_model, p.num_frames, p.max_persons, p.num_layers, p.num_heads, p.ff_dim, p.dropout,
            p.proj_dims) == (1024, 64, 2, 1, 1, 1024, 0.0, (2048, 2048, 4096))
    assert p.out_dim == 2048
    s = get_preset("small", num_frames=64)
    assert s.num_frames == 64 and s.d_model == get_preset("small").d_model
    with pytest.raises(ValueError, match=r"valid presets: \[.*'paper'.*'small'"):
        get_preset("huge")
    with pytest.raises(ValueError, match=r"valid keys: \[.*'d_model'"):
        get_preset("paper", width=3)
    with pytest.raises(ValueError, match="divisible"):
        get_preset("paper", num_heads=3)
    register_preset("test_only_preset", EncoderConfig(d_model=16, ff_dim=16), overwrite=True)
    assert get_preset("test_only_preset").d_model == 16
    with pytest.raises(ValueError, match="already exists"):
        register_preset("paper", EncoderConfig())


def test_gradients_reach_every_modality_embedding():
    enc = UnifiedEncoder(tiny(), {"J": 3, "C": 2}, num_joints=4)
    x = {"J": rand(3, 2, 12, 4, 3), "C": rand(3, 2, 12, 4, 2)}
    out = enc(x)
    sum(v.sum() for v in out.values()).backward()
    for k in ("J", "C"):
        for part in (enc.embed[k].temporal, enc.embed[k].spatial):
            assert part[0].weight.grad is not None and part[0].weight.grad.abs().sum() > 0
    assert enc.fuse_t.weight.grad.abs().sum() > 0 and enc.fuse_s.weight.grad.abs().sum() > 0
