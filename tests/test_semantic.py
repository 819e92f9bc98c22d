import warnings

import numpy as np
import pytest
import torch

from hetskel.data.errors import DataError
from hetskel.hetero import semantic
from hetskel.hetero.semantic import (
    WORDS,
    SemanticConfig,
    SemanticEncoder,
    motion_words,
    numeric_motion,
    text_table,
    vocabulary,
)


def _names(idx, cfg=None):
    vocab = vocabulary(cfg)
    return [[vocab[i] for i in row] for row in idx.tolist()]


def _track(steps):
    """One joint's positions from per-frame displacements: (T, V=1, 3) with a nonzero start."""
    d = torch.tensor([[0.0, 0.0, 0.0], *steps])
    return (torch.tensor([1.0, 1.0, 3.0]) + d.cumsum(0))[:, None, :]


def test_words_on_a_hand_built_sequence():
    assert vocabulary() == WORDS
    # binary fractions, so "exactly the threshold" is exact in float32
    x = _track([[0.5, 0.0, 0.0],          # right; y, z: unmove
                [-0.375, 0.5, -0.75],     # left, up, front (towards the camera: -z)
                [0.25, -0.3125, 0.375],   # |dx| == threshold -> unmove; down; back
                [0.0, 0.0, 0.0]])
    w = motion_words(x, threshold=0.25)[:, 0]
    assert w.dtype == torch.int64 and w.shape == (5, 3)
    assert _names(w) == [["unmove"] * 3,  # first frame
                         ["right", "unmove", "unmove"],
                         ["left", "up", "front"],
                         ["unmove", "down", "back"],
                         ["unmove"] * 3]
    # a larger threshold silences small moves; the config carries it too
    w2 = motion_words(x, config=SemanticConfig(threshold=0.5))[:, 0]
    assert _names(w2)[2] == ["unmove", "unmove", "front"]
    assert _names(motion_words(x, threshold=0.2)[:, 0])[3][0] == "right"


def test_padding_gives_unmove_and_zero_encoding():
    x = _track([[0.1, 0.1, 0.1]] * 4).expand(5, 2, 3).clone()[None]  # (1, T=5, V=2, 3)
    x[0, 2] = 0  # padded frame in the middle
    w = motion_words(x, threshold=0.01)[0]
    un = WORDS.index("unmove")
    assert torch.all(w[2] == un) and torch.all(w[3] == un)  # no predecessor after padding
    assert torch.all(w[1] == torch.tensor([WORDS.index("right"), WORDS.index("up"), WORDS.index("back")]))
    enc = SemanticEncoder(torch.randn(7, 16), mode="words")
    out = enc(x)
    assert out.shape == (1, 5, 2, 3) and torch.all(out[0, 2] == 0)
    assert torch.all(enc(torch.zeros(2, 1, 4, 5, 3)) == 0)  # absent persons stay zero


def test_pyskl_frame_axis_words_and_numeric_mode():
    cfg = SemanticConfig.for_frame("pyskl")
    x = _track([[0.0, 0.05, -0.05]])
    assert _names(motion_words(x, config=cfg)[:, 0], cfg)[1] == ["unmove", "front", "down"]
    n = numeric_motion(_track([[0.05, -0.05, 0.001]]), threshold=0.01)
    assert torch.equal(n[1, 0], torch.tensor([1.0, -1.0, 0.0])) and torch.all(n[0] == 0)
    enc = SemanticEncoder(mode="numeric", threshold=0.01)
    assert torch.equal(enc(_track([[0.05, -0.05, 0.001]])), n)


def test_graded_vocabulary():
    cfg = SemanticConfig(threshold=0.01, graded=True, speed_edges=(0.03, 0.1))
    vocab = vocabulary(cfg)
    assert len(vocab) == 19 and vocab[-1] == "unmove" and "slightly left" in vocab and "quickly up" in vocab
    x = _track([[0.02, 0.05, -0.2]])
    assert _names(motion_words(x, config=cfg)[:, 0], cfg)[1] == ["slightly right", "up", "quickly front"]
    enc = SemanticEncoder(torch.randn(19, 8), config=cfg)
    assert enc(x).shape == x.shape
    with pytest.raises(DataError, match=r"\(19, D\)"):
        SemanticEncoder(torch.randn(7, 8), config=cfg)
    with pytest.raises(ValueError, match="speed_edges"):
        SemanticConfig(threshold=0.05, graded=True, speed_edges=(0.03, 0.1))


def test_encoder_gathers_reduced_words_in_axis_major_order_and_trains_the_reducer():
    torch.manual_seed(0)
    table = torch.randn(7, 32)
    enc = SemanticEncoder(table, out_dim=2, threshold=0.01)
    assert enc.channels(3) == 6 and enc.table_source == "user"
    x = _track([[0.05, -0.05, 0.0]])[None]          # (1, T=2, V=1, 3)
    out = enc(x)
    vals = enc.word_values().detach()                # (7, 2)
    want = torch.cat([vals[WORDS.index("right")], vals[WORDS.index("down")], vals[WORDS.index("unmove")]])
    assert torch.allclose(out[0, 1, 0], want)
    out.sum().backward()
    assert enc.reducer.weight.grad is not None and enc.reducer.weight.grad.abs().sum() > 0
    assert not enc.table.requires_grad and "table" in enc.state_dict()


def test_user_table_sources(tmp_path):
    t = torch.randn(7, 12)
    assert torch.equal(text_table(WORDS, table=t)[0], t) and text_table(WORDS, table=t)[1] == "user"
    np.save(tmp_path / "t.npy", t.numpy())
    assert torch.equal(text_table(WORDS, table=tmp_path / "t.npy")[0], t)
    from hetskel import io
    io.save_checkpoint(tmp_path / "t.pt", {"table": t})
    assert torch.equal(text_table(WORDS, table=str(tmp_path / "t.pt"))[0], t)
    with pytest.raises(DataError, match="one row per word"):
        text_table(WORDS, table=torch.randn(6, 12))
    with pytest.raises(DataError, match="does not exist"):
        text_table(WORDS, table=tmp_path / "missing.npy")


@pytest.fixture(autouse=True)
def warn_afresh():
    """The NOT CLIP warning is given once per process and origin; each test here expects to see it."""
    semantic._WARNED.clear()


@pytest.fixture(scope="module")
def random_tower_cache(tmp_path_factory):
    """The real open_clip code path with a randomly initialised ViT-B-32 text tower (no weights
    needed), written to a cache file once for the tests below."""
    pytest.importorskip("open_clip")
    semantic._WARNED.clear()
    path = tmp_path_factory.mktemp("clip") / "table.pt"
    with pytest.warns(UserWarning, match="NOT CLIP"):
        table, source = text_table(WORDS, source="random", cache_path=path)
    return path, table, source


def test_random_tower_table(random_tower_cache):
    path, table, source = random_tower_cache
    assert source == "random-init:ViT-B-32/seed0"
    assert table.shape == (7, 512) and torch.allclose(table.norm(dim=-1), torch.ones(7), atol=1e-5)
    assert torch.pdist(table).min() > 1e-3  # distinct codes per word
    assert path.is_file()


def test_cache_round_trip(random_tower_cache):
    path, table, _ = random_tower_cache
    raw = torch.load(path, weights_only=True)  # data only
    assert torch.equal(raw["table"], table) and raw["origin"] == "random-init:ViT-B-32/seed0"
    with pytest.warns(UserWarning, match="NOT CLIP"):
        again, source = text_table(WORDS, source="cache", cache_path=path)
    assert torch.equal(again, table) and source == f"cache:{path}[random-init:ViT-B-32/seed0]"
    with pytest.warns(UserWarning, match="other words"), pytest.raises(FileNotFoundError):
        text_table(WORDS[:3], source="cache", cache_path=path)


def test_auto_uses_wordllama_offline_when_clip_weights_are_absent(random_tower_cache, monkeypatch, tmp_path):
    """No CLIP weights on the machine, no network: "auto" gives wordllama's pretrained table, never
    the random tower (not even a cached one), never a download attempt, and writes no cache file."""
    pytest.importorskip("wordllama")
    import socket

    path, random_table, _ = random_tower_cache
    monkeypatch.setattr(semantic, "_clip_weights_file", lambda *a, **k: None)
    monkeypatch.setattr(semantic, "_hub_reachable", lambda timeout=3.0: False)

    def no_network(*a, **k):
        raise OSError("network disabled in this test")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    semantic._MEMORY.clear()  # load the wheel's weights in this test, with the network off
    with warnings.catch_warnings():
        warnings.simplefilter("error", semantic.RandomTextTableWarning)
        got, source = text_table(WORDS, cache_path=tmp_path / "auto.pt")
        again, source2 = text_table(WORDS, cache_path=path)  # a cached random table does not shadow it
    assert source == source2 == "wordllama:l2_supercat/256"
    assert got.shape == (7, 256) and torch.allclose(got.norm(dim=-1), torch.ones(7), atol=1e-5)
    assert torch.pdist(got).min() > 1e-3 and torch.equal(got, again)
    assert not (tmp_path / "auto.pt").exists()
    assert text_table(WORDS, source="wordllama")[1] == source
    assert text_table(WORDS[:3], source="wordllama", template="a person moves {word}")[0].shape == (3, 256)
    enc = SemanticEncoder(None)  # the encoder's default table: wordllama, reducer Linear(256, 1)
    assert enc.table_source == source and enc.reducer.in_features == 256
    with pytest.raises(RuntimeError, match="not reachable"):
        text_table(WORDS, source="openclip")
    with pytest.warns(semantic.RandomTextTableWarning, match="NOT CLIP"):  # the random tower: by name only
        assert text_table(WORDS, source="random")[1] == "random-init:ViT-B-32/seed0"


def test_auto_prefers_clip_weights_on_the_machine(monkeypatch):
    fake = torch.nn.functional.normalize(torch.randn(7, 512), dim=-1)
    semantic._MEMORY.clear()
    monkeypatch.setattr(semantic, "_openclip_local", lambda words, *a: fake[:len(words)])
    got, source = text_table(WORDS)
    assert source == "clip:ViT-B-32/openai" and torch.equal(got, fake)
    semantic._MEMORY.clear()


def test_auto_without_wordllama_or_clip_is_an_error_not_a_random_tower(monkeypatch):
    monkeypatch.setattr(semantic, "_clip_weights_file", lambda *a, **k: None)
    monkeypatch.setattr(semantic, "wordllama_available", lambda: False)
    semantic._MEMORY.clear()
    with pytest.raises(RuntimeError, match="pip install wordllama"):
        text_table(WORDS)
    semantic._MEMORY.clear()


def test_clip_weights_file_is_a_local_lookup(tmp_path):
    f = tmp_path / "weights.pt"
    f.write_bytes(b"x")
    assert semantic._clip_weights_file("ViT-B-32", str(f)) == str(f)
    assert semantic._clip_weights_file("ViT-B-32", "no-such-tag") is None


def test_a_real_cache_wins_over_everything_but_a_user_table(tmp_path):
    fake = torch.randn(7, 512)
    semantic._save_cache(tmp_path / "real.pt", fake, "clip:ViT-B-32/openai", WORDS, "ViT-B-32", "openai", "{word}")
    got, source = text_table(WORDS, cache_path=tmp_path / "real.pt")
    assert torch.equal(got, fake) and source == f"cache:{tmp_path / 'real.pt'}"
    enc = SemanticEncoder(None, cache_path=tmp_path / "real.pt")
    assert enc.table_source == source and torch.equal(enc.table, fake)


def test_a_forced_random_table_never_overwrites_a_real_cache(random_tower_cache, tmp_path):
    fake = torch.randn(7, 512)
    path = tmp_path / "real.pt"
    semantic._save_cache(path, fake, "clip:ViT-B-32/openai", WORDS, "ViT-B-32", "openai", "{word}")
    with pytest.warns(UserWarning, match="NOT CLIP"):
        text_table(WORDS, source="random", cache_path=path)
    assert torch.equal(torch.load(path, weights_only=True)["table"], fake)
