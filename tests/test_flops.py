import pytest

from hetskel.model.encoder import get_preset
from hetskel.model.flops import encoder_flops, flops_table, format_table


def analytic(cfg, k, V, C=3, fused=True):
    """2 x multiply-adds of UmURL's inference pass, written out from the layer sizes."""
    d, T, M, ff = cfg.d_model, cfg.num_frames, cfg.max_persons, cfg.ff_dim
    S = M * V
    emb = T * (M * V * C * d + d * d) + S * (T * C * d + d * d)          # two Linears per token set
    fusion = (T + S) * d * d if fused else 0
    per_token = 4 * d * d + 2 * d * ff                                    # QKV, out-proj, FFN
    layers = cfg.num_layers * ((T + S) * per_token + 2 * (T * T + S * S) * d)   # + QK^T and AV
    return 2 * (k * emb + fusion + layers)


def test_counter_matches_layer_sizes_including_attention():
    cfg = get_preset("small", d_model=32, ff_dim=48, num_frames=8, num_layers=2, num_heads=2)
    assert encoder_flops(cfg, ("J", "C"), num_joints=5) == analytic(cfg, 2, 5)
    assert encoder_flops(cfg, ("J",), num_joints=5, stream="single") == analytic(cfg, 1, 5, fused=False)


def test_paper_numbers():
    fused25 = encoder_flops("paper", ("J", "C", "S"), num_joints=25)
    assert fused25 == pytest.approx(2.54e9, rel=0.03)
    assert encoder_flops("paper", ("J", "C", "S"), num_joints=30) == pytest.approx(2.77e9, rel=0.01)
    singles = encoder_flops("paper", ("J", "M", "B"), num_joints=25, stream="single")
    assert singles == pytest.approx(5.22e9, rel=0.01)
    with pytest.raises(ValueError, match="stream"):
        encoder_flops("paper", ("J",), stream="both")


def test_flops_table_rows():
    rows = flops_table("small", num_joints=30)
    assert [r["modalities"] for r in rows] == ["J", "C", "S", "J+C", "J+S", "C+S", "J+C+S", "J+C+S"]
    assert rows[-1]["model"] == "3 single streams" and rows[-1]["paper_gflops"] == 5.22
    assert rows[-2]["paper_gflops"] == 2.54
    g = [r["gflops"] for r in rows]
    assert g[0] < g[3] < g[6] < g[7]            # more modalities cost more; K streams cost most
    assert "J+C+S" in format_table(rows)
