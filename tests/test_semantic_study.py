"""hetskel.studies.semantic (the semantic-motion notebook's helpers), the notebook and what it prints."""
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from notebook_checks import assert_notebook_conventions

from hetskel.data import synhet
from hetskel.hetero.lifter import pose_frame
from hetskel.hetero.semantic import (
    SemanticConfig,
    SemanticEncoder,
    motion_words,
    vocabulary,
)
from hetskel.studies import semantic as sem

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest (conftest)


@pytest.fixture(scope="module")
def draw():
    return synhet.generate(num_samples=40, num_frames=16, seed=2, return_unified=True)


def _grid_words(text: str, joint: str, axis: str) -> list[str]:
    """The six basic-vocabulary words (one token each) of a ``word_grid`` line."""
    line = next(ln for ln in text.splitlines() if ln.split()[:2] == [joint, axis])
    return line.split()[2:8]


# ---------------------------------------------------------------------------------------------
# configs and the hand-built sequence
def test_make_config_and_vocab_text():
    assert sem.make_config(0.02).threshold == 0.02 and not sem.make_config().graded
    g = sem.make_config(0.01, "graded")
    assert g.graded and sem.vocab_text(g).startswith("19 words: 0:slightly right")
    assert sem.vocab_text(sem.make_config()) == "7 words: 0:right, 1:left, 2:up, 3:down, 4:front, 5:back, 6:unmove"
    with pytest.raises(ValueError, match="vocabulary"):
        sem.make_config(0.01, "fancy")


def test_toy_sequence_words_basic_and_graded():
    x, names = sem.toy_sequence()
    assert x.shape == (6, 3, 3) and names == ["right_hand", "head", "left_foot"]
    w = motion_words(x, config=sem.make_config())
    v = vocabulary()
    assert [v[i] for i in w[:, 0, 0]] == ["unmove", "right", "right", "unmove", "unmove", "unmove"]
    assert [v[i] for i in w[:, 0, 1]] == ["unmove", "unmove", "unmove", "up", "up", "unmove"]
    assert [v[i] for i in w[:, 2, 2]] == ["unmove", "front", "front", "front", "unmove", "unmove"]
    assert torch.all(w[:, 1] == v.index("unmove"))  # the head's tremble stays below the threshold
    g = sem.make_config(0.01, "graded")
    wg, vg = motion_words(x, config=g), vocabulary(g)
    assert [vg[i] for i in wg[1:5, 0, 0]] == ["quickly right", "right", "unmove", "unmove"]
    assert [vg[i] for i in wg[1:4, 2, 2]] == ["slightly front", "front", "quickly front"]
    text = sem.word_grid(x, names, sem.make_config())
    assert len(text.splitlines()) == 1 + 3 * 3
    assert _grid_words(text, "right_hand", "x") == ["unmove", "right", "right", "unmove", "unmove", "unmove"]
    assert text.splitlines()[-1].endswith("0 -1 -1 -1  0  0")


# ---------------------------------------------------------------------------------------------
# SynHet words, counts, histograms
def test_pose_sequences_counts_and_unmove(draw):
    d3, _, du = draw
    x, pres = sem.pose_sequences(d3)
    assert x.shape == (40, 2, 16, 25, 3)
    raw = sem.stack_keypoints(d3)
    assert torch.equal(pres, (raw != 0).any(-1))
    assert pres[:, 0, 0, 0].all() and torch.all(x[:, 0, 0, 0] == 0)  # the reference root: at the origin, present
    # torso units: the pose part is pose_frame's; the trajectory only adds a per-frame translation
    pf = pose_frame(raw, "ntu25").pose
    sb = 0  # ntu25 spine_base
    assert torch.allclose((x - x[..., sb:sb + 1, :]) * pres[..., None], pf, atol=1e-5)
    cfg = sem.make_config()
    w = motion_words(x, config=cfg)
    counts = sem.word_counts(w, pres, vocabulary(cfg))
    assert sum(counts.values()) == int(pres.sum()) * 3 and list(counts) == list(vocabulary(cfg))
    frac = sem.unmove_fraction(w, pres, cfg)
    assert frac == pytest.approx(counts["unmove"] / sum(counts.values()))
    ths = [0.001, 0.01, 0.1, 1.0]
    curves = sem.unmove_curve({"k": (x, pres), "clean": sem.pose_sequences(du)}, ths, cfg)
    assert curves["k"][1] == pytest.approx(frac)
    for ys in curves.values():
        assert all(a <= b for a, b in zip(ys, ys[1:])) and ys[-1] > 0.99
    assert curves["clean"][1] > curves["k"][1]  # Kinect noise turns still joints into words


def test_class_histograms_match_a_direct_count():
    g = torch.Generator().manual_seed(0)
    words = torch.randint(0, 7, (5, 2, 4, 3, 3), generator=g)
    present = torch.rand(5, 2, 4, 3, generator=g) > 0.3
    labels = [0, 1, 1, 2, 0]
    h = sem.class_histograms(words, present, labels, 4, 7)
    assert h.shape == (4, 7) and np.allclose(h[:3].sum(1), 1) and np.all(h[3] == 0)
    mask = present[..., None].expand(words.shape)
    direct = np.bincount(torch.cat([words[1][mask[1]], words[2][mask[2]]]).numpy(), minlength=7)
    assert np.allclose(h[1], direct / direct.sum())


# ---------------------------------------------------------------------------------------------
# text-table helpers
def test_source_strings_never_pass_random_for_clip():
    rnd = "random-init:ViT-B-32/seed0"
    assert not sem.is_clip(rnd) and not sem.is_clip(f"cache:/x.pt[{rnd}]") and not sem.is_clip("user")
    assert sem.is_clip("clip:ViT-B-32/openai") and sem.is_clip("openclip:ViT-B-32/openai") and sem.is_clip("cache:/x.pt")
    assert "NOT CLIP" in sem.source_banner(rnd) and "NOT CLIP" in sem.short_source(f"cache:/x.pt[{rnd}]")
    assert "origin unknown" in sem.short_source("user") and sem.short_source("cache:/x.pt").startswith("CLIP")
    t = torch.randn(7, 16)
    s = sem.cosine_similarity(t)
    assert np.allclose(np.diag(s), 1, atol=1e-6) and np.allclose(s, s.T, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# training
def test_tiny_classifier_ignores_absent_persons():
    torch.manual_seed(0)
    clf = sem.TinyClassifier(6, 4)
    s = torch.randn(3, 2, 8, 2, 3)
    person = torch.tensor([[True, False]] * 3)
    garbage = s.clone()
    garbage[:, 1] = 100.0
    assert torch.allclose(clf(s, person), clf(garbage, person))
    assert torch.allclose(clf(s, person), clf(s[:, :1], person[:, :1]))


def test_train_reducer_moves_the_word_values(draw):
    d3, _, _ = draw
    x, _ = sem.pose_sequences(d3)
    labels = [a["label"] for a in d3["annotations"]]
    table = torch.nn.functional.normalize(torch.randn(7, 32, generator=torch.Generator().manual_seed(1)), dim=-1)
    run = sem.train_reducer(x, labels, np.arange(30), np.arange(30, 40), table, sem.make_config(), num_classes=17,
                            steps=5, batch_size=8)
    assert run.values_before.shape == run.values_after.shape == (7,)
    assert not np.allclose(run.values_before, run.values_after)
    assert set(run.accuracy) == {"words", "numeric", "chance"} and all(0 <= v <= 1 for v in run.accuracy.values())
    assert len(run.history["words"]) == len(run.history["numeric"]) == 5
    assert np.allclose(run.encoder.word_values().detach().squeeze(-1).numpy(), run.values_after)
    again = sem.train_reducer(x, labels, np.arange(30), np.arange(30, 40), table, sem.make_config(), num_classes=17,
                              steps=5, batch_size=8)
    assert np.allclose(again.values_after, run.values_after)  # seeded


def test_figures(draw):
    d3, _, du = draw
    (x, _), (xc, pc) = sem.pose_sequences(d3), sem.pose_sequences(du)
    g = sem.make_config(0.01, "graded")
    vg = vocabulary(g)
    wg = motion_words(xc, config=g)
    assert len(sem.word_colours(vg)) == 19 and sem.word_colours(["unmove"])[0][:3] != sem.word_colours(["left"])[0][:3]
    fig = sem.heatmap_figure([(wg[0, 0], "unified30", "clean"), (motion_words(x, config=g)[0, 0], "ntu25", "k")], vg)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert isinstance(sem.unmove_figure({"a": [0.1, 0.5]}, [0.01, 0.1], 0.05), Figure)
    h = sem.class_histograms(wg, pc, [a["label"] for a in d3["annotations"]], 17, len(vg))
    assert isinstance(sem.histogram_figure(h, d3["class_names"], vg, d3["class_groups"]), Figure)
    assert isinstance(sem.similarity_figure(torch.randn(7, 8), vocabulary(), "random-init:x"), Figure)
    cnt = sem.word_counts(wg, pc, vg)
    assert isinstance(sem.counts_figure({"graded": {"clean": cnt, "again": cnt}}), Figure)
    run = sem.ReducerRun(np.zeros(7), np.arange(7.0), {"words": [2.0, 1.0], "numeric": [2.0, 0.5]},
                         {"words": 0.5, "numeric": 0.6, "chance": 0.1})
    assert isinstance(sem.scalars_figure(run, vocabulary(), "user"), Figure)
    enc = SemanticEncoder(torch.randn(7, 8), mode="words")
    assert len(sem.encodings_figure(xc[0, 0], "unified30", enc).axes) >= 6


# ---------------------------------------------------------------------------------------------
# notebook
def test_notebook_is_in_sync_output_free_with_its_parameters():
    p = assert_notebook_conventions("03_semantic_motion")
    assert p["progress"] is False
    assert p["threshold"] == SemanticConfig().threshold and p["vocabulary"] == "basic"
    assert p["text_source"] == "auto" and p["cache_path"] == ""


# what the notebook prints at its default threshold, exactly
BASIC_VOCAB = (
    "7 words: 0:right, 1:left, 2:up, 3:down, 4:front, 5:back, 6:unmove\n"
)
TOY_WORD_GRID = (
    "joint      axis t=0    t=1    t=2    t=3    t=4    t=5      sign(d)\n"
    "right_hand x    unmove right  right  unmove unmove unmove   0 +1 +1  0  0  0\n"
    "right_hand y    unmove unmove unmove up     up     unmove   0  0  0 +1 +1  0\n"
    "right_hand z    unmove unmove unmove unmove unmove unmove   0  0  0  0  0  0\n"
    "head       x    unmove unmove unmove unmove unmove unmove   0  0  0  0  0  0\n"
    "head       y    unmove unmove unmove unmove unmove unmove   0  0  0  0  0  0\n"
    "head       z    unmove unmove unmove unmove unmove unmove   0  0  0  0  0  0\n"
    "left_foot  x    unmove unmove unmove unmove unmove unmove   0  0  0  0  0  0\n"
    "left_foot  y    unmove unmove unmove unmove unmove unmove   0  0  0  0  0  0\n"
    "left_foot  z    unmove front  front  front  unmove unmove   0 -1 -1 -1  0  0\n"
)
GRADED_VOCAB = (
    "19 words: 0:slightly right, 1:slightly left, 2:slightly up, 3:slightly down, 4:slightly front, 5:slightly back, 6:right, 7:left, 8:up, 9:down, 10:front, 11:back, 12:quickly right, 13:quickly left, 14:quickly up, 15:quickly down, 16:quickly front, 17:quickly back, 18:unmove\n"
)


def test_the_notebooks_tables_exactly():
    toy, names = sem.toy_sequence()
    assert sem.vocab_text(sem.make_config(0.01, "basic")) + "\n" == BASIC_VOCAB
    assert sem.word_grid(toy, names, sem.make_config(0.01, "basic")) + "\n" == TOY_WORD_GRID
    assert sem.vocab_text(sem.make_config(0.01, "graded")) + "\n" == GRADED_VOCAB
