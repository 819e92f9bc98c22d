import pytest
import torch

from hetskel.data.errors import DataError
from hetskel.hetero.camera import camera_pinv, fit_camera, keep_observed_2d
from hetskel.hetero.lifter import frame_valid, pose_frame, trajectory
from hetskel.hetero.pipeline import HeteroProcessor
from hetskel.layouts import convert, get_layout

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest (conftest)


def _bodies(N=3, M=2, T=6, seed=0):
    """Unified30 3D bodies in a Kinect-like camera frame, walking sideways, person 1 absent in sample 1."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(30, 3, generator=g) * 0.3
    x = base + 0.05 * torch.randn(N, M, T, 30, 3, generator=g)
    x = x + torch.linspace(0, 0.5, T)[:, None, None] * torch.tensor([1.0, 0.0, 0.0])
    x = x + torch.tensor([0.0, 0.0, 3.0])
    x[1, 1] = 0
    return x


def _batch(x30, ortho=False):
    """{"ntu25": 3D, "coco17": 2D}; ortho: 2D = (x, -y) (an orthographic camera with image y down)."""
    x3, _ = convert(x30, "unified30", "ntu25", derive=False)
    if ortho:
        uv = x30[..., :2] * torch.tensor([1.0, -1.0])
    else:
        z = torch.where(x30[..., 2] == 0, torch.ones_like(x30[..., 2]), x30[..., 2])  # absent persons: no 0/0
        uv = torch.stack([x30[..., 0] / z, -x30[..., 1] / z], -1)
    x2, _ = convert(uv, "unified30", "coco17", derive=False)
    return {"ntu25": x3, "coco17": x2, "label": torch.zeros(x30.shape[0], dtype=torch.int64)}


def test_modalities_shapes_channels_and_padding():
    proc = HeteroProcessor({"J": "ntu25", "C": "coco17"}, semantic="words", lifter_width=16,
                           text_table=torch.randn(7, 32), semantic_out_dim=2)
    mods, aux = proc(_batch(_bodies()))
    assert proc.layout.joints == get_layout("unified30").joints
    assert set(mods) == {"J", "C", "S"} and set(aux) == {"rec"}
    assert proc.modality_channels() == {"J": 3, "C": 3, "S": 6}
    for k, v in mods.items():
        assert v.shape == (3, 2, 6, 30, proc.modality_channels()[k]), k
        assert torch.all(v[1, 1] == 0), f"{k}: an absent person must stay zero"
    assert torch.isfinite(aux["rec"]) and aux["rec"] > 0
    assert proc.text_source == "user"


def test_gradients_reach_lifter_prompts_and_reducer():
    proc = HeteroProcessor(semantic="words", lifter_width=16, text_table=torch.randn(7, 32), prompt_mode="anchored")
    mods, aux = proc(_batch(_bodies()))
    loss = aux["rec"] + sum((m ** 2).mean() for m in mods.values())
    loss.backward()
    lifter = proc.lifters["C"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lifter.parameters())
    for src in ("ntu25", "coco20"):
        assert proc.unifier.prompt(src).grad.abs().sum() > 0
    assert proc.semantic.reducer.weight.grad.abs().sum() > 0
    # L_rec alone trains the lifter
    proc.zero_grad()
    proc(_batch(_bodies()))[1]["rec"].backward()
    assert lifter.mlp[0].weight.grad.abs().sum() > 0


def test_single_sources_and_other_layouts():
    x30 = _bodies(M=3)
    b = _batch(x30)
    three = HeteroProcessor({"J": "ntu25", "C": "coco17"}, semantic="numeric", lifter_width=8)
    mods, aux = three({"ntu25": b["ntu25"]})             # 3D-only dataset
    assert set(mods) == {"J", "S"} and aux == {} and mods["J"].shape == (3, 3, 6, 30, 3)
    mods, aux = three({"coco17": b["coco17"]})           # 2D-only (FineGYM-like): S from C
    assert set(mods) == {"C", "S"} and aux == {}
    assert torch.equal(mods["S"], three.semantic(mods["C"]))
    utd = HeteroProcessor({"K": "kinect20_utd", "C": "coco17"}, semantic=None, lifter_width=8)
    xk, _ = convert(x30, "unified30", "kinect20_utd", derive=False)
    mods, aux = utd({"kinect20_utd": xk, "coco17": b["coco17"]})
    assert set(mods) == {"K", "C"} and "rec" in aux
    assert mods["K"].shape[-2] == utd.layout.num_joints == len(set(get_layout("kinect20_utd").joints) |
                                                               set(get_layout("coco20").joints))
    only2d = HeteroProcessor({"C": "coco17"}, semantic=None, lifter_width=8)
    assert only2d.layout.name == "coco20"
    assert only2d(b)[0]["C"].shape == (3, 3, 6, 20, 3)
    # modality-name keys work too
    assert set(three({"J": b["ntu25"]})[0]) == {"J", "S"}


def test_zero_depth_c_matches_j_under_an_orthographic_camera():
    """Without the lifter, C is 2D with zero depth; with an orthographic camera (and a torso parallel
    to the image) its x, y equal J's on the shared joints: both modalities are in one pose frame."""
    x30 = _bodies()
    lay = get_layout("unified30")
    torso = [lay.index(j) for j in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    x30[..., torso, 2] = 3.0 * (x30[..., torso, :] != 0).any(-1)  # torso in the image plane
    ls, rs, lh, rh, sb, sm, ss = (lay.index(j) for j in ("left_shoulder", "right_shoulder", "left_hip", "right_hip",
                                                         "spine_base", "spine_mid", "spine_shoulder"))
    x30[..., ss, :] = (x30[..., ls, :] + x30[..., rs, :]) / 2  # Kinect's spine where COCO-20 interpolates it
    x30[..., sb, :] = (x30[..., lh, :] + x30[..., rh, :]) / 2
    x30[..., sm, :] = (x30[..., ss, :] + x30[..., sb, :]) / 2
    proc = HeteroProcessor(use_lifter=False, semantic=None, frame="camera", prompt_mode="zero")
    mods, aux = proc(_batch(x30, ortho=True))
    assert aux == {}
    both = proc.unifier.real_mask("ntu25") & proc.unifier.real_mask("coco20")
    J, C = mods["J"][..., both, :], mods["C"][..., both, :]
    assert torch.allclose(C[..., :2], J[..., :2], atol=1e-5)
    assert torch.all(C[..., 2] == 0)
    # PYSKL frame: image down maps to -z, and y (depth) is zero
    pys = HeteroProcessor(use_lifter=False, semantic=None, frame="pyskl")
    c = pys(_batch(x30, ortho=True))[0]["C"][..., both, :]
    assert torch.all(c[..., 1] == 0) and torch.allclose(c[..., 2], J[..., 1], atol=1e-5)


def test_backproject_recovers_image_plane_motion():
    x30 = _bodies()
    x3, _ = convert(x30, "unified30", "ntu25", derive=False)
    f3 = pose_frame(x3, "ntu25")
    t3 = trajectory(f3.root, f3.scale, frame_valid(f3.pose))
    # an orthographic camera: 2D = (x, -y); the lifted pose is the true one
    p2 = f3.pose[..., :2] * torch.tensor([1.0, -1.0])
    t2 = t3[..., :2] * torch.tensor([1.0, -1.0])
    tb = t2 @ camera_pinv(fit_camera(p2, f3.pose))                   # the processor's back-projection
    assert torch.allclose(tb[..., :2], t3[..., :2], atol=1e-3)
    assert tb[..., 2].abs().max() < 0.05 * t3[..., 0].abs().max()  # the ray direction is unobservable: ~0


def test_lifter_training_through_the_processor_reduces_rec():
    torch.manual_seed(0)
    proc = HeteroProcessor(semantic=None, lifter_width=64, lifter_dropout=0.0)
    batch = _batch(_bodies(N=8, T=8))
    opt = torch.optim.Adam(proc.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        rec = proc(batch)[1]["rec"]
        first = float(rec.detach()) if first is None else first
        opt.zero_grad()
        rec.backward()
        opt.step()
    assert float(rec.detach()) < 0.5 * first


def test_bad_batches_are_named():
    proc = HeteroProcessor(semantic=None, lifter_width=8)
    with pytest.raises(DataError, match="none of the sources"):
        proc({"label": torch.zeros(2)})
    with pytest.raises(DataError, match="coco17"):
        proc({"coco17": torch.zeros(2, 2, 4, 17, 3)})
    with pytest.raises(ValueError, match="frame"):
        HeteroProcessor(frame="world")


def test_camera_axis_convention_on_real_ntu(shared_data):
    """Real NTU files hold 3D camera metres and colour pixels of the same joints: the ``"camera"``
    image_to_pose (image right -> +x, image down -> -y) must line the 2D pose frame up with the 3D one."""
    from hetskel.data.ntu import IMG_SHAPE, read_skeleton
    from hetskel.hetero.lifter import mpjpe
    from hetskel.hetero.pipeline import IMAGE_TO_POSE
    files = sorted((shared_data / "ntu_raw_sample").glob("*.skeleton"))
    if not files:
        pytest.skip("no NTU .skeleton sample")
    h, w = IMG_SHAPE
    half = torch.tensor([w / 2, h / 2])
    for f in files[:3]:
        sk = read_skeleton(f)
        x3 = torch.tensor(sk.xyz[:1], dtype=torch.float32)
        c = torch.tensor(sk.color_xy[:1], dtype=torch.float32)
        c = (c - half) / half * (c != 0).any(-1, keepdim=True)
        p2 = pose_frame(c, "ntu25").pose @ torch.tensor(IMAGE_TO_POSE["camera"])
        p3 = pose_frame(x3, "ntu25").pose
        m = (p3 != 0).any(-1)
        for axis in (0, 1):
            assert torch.corrcoef(torch.stack([p2[..., axis][m], p3[..., axis][m]]))[0, 1] > 0.9, (f.name, axis)
        assert float(mpjpe(p2[..., :2], p3[..., :2])) < 0.3 * float(p3[..., :2].norm(dim=-1)[m].mean())


def test_a_new_2d_layout_is_a_definition_not_code():
    from hetskel.layouts import Layout, register_layout, unregister_layout
    names = ["left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_elbow", "right_elbow",
             "left_wrist", "right_wrist", "nose"]
    register_layout(Layout.from_bones("test_upper9_2d", names, {"left_elbow": "left_shoulder", "right_elbow":
                                      "right_shoulder", "left_wrist": "left_elbow", "right_wrist": "right_elbow"},
                                      dims=2))
    try:
        proc = HeteroProcessor({"J": "ntu25", "C": "test_upper9_2d"}, semantic="numeric", lifter_width=8,
                               prompt_mode="anchored")
        x30 = _bodies()
        b = _batch(x30)
        b["test_upper9_2d"], _ = convert(b.pop("coco17"), "coco17", "test_upper9_2d", derive=False)
        mods, aux = proc(b)
        assert proc.layout.num_joints == 26  # ntu25 + nose
        assert mods["C"].shape == (3, 2, 6, 26, 3) and torch.isfinite(aux["rec"])
        assert torch.all(mods["C"][1, 1] == 0)
    finally:
        unregister_layout("test_upper9_2d")


def test_keep_observed_2d_reprojects_onto_the_observed_joint_and_keeps_the_depth():
    g = torch.Generator().manual_seed(3)
    lifted = torch.randn(2, 1, 5, 7, 3, generator=g)
    W = torch.randn(2, 1, 3, 2, generator=g)
    u = torch.randn(2, 1, 5, 7, 2, generator=g)
    kept = keep_observed_2d(lifted, u, W, camera_pinv(W, eps=1e-9))
    assert torch.allclose((kept[..., None] * W[:, :, None, None]).sum(-2), u, atol=1e-4)   # exact reprojection
    ray = torch.linalg.cross(W[..., 0], W[..., 1])[:, :, None, None]   # the direction the camera cannot see
    unit = ray / ray.norm(dim=-1, keepdim=True)
    assert torch.allclose((kept * unit).sum(-1), (lifted * unit).sum(-1), atol=1e-4)   # depth unchanged


@pytest.mark.parametrize("mode", ["unsupervised", "all"])
def test_keep_observed_moves_only_the_chosen_joints(mode):
    x30 = _bodies()
    batch = _batch(x30)
    outs = {}
    for m in ("none", mode):
        torch.manual_seed(0)
        proc = HeteroProcessor(semantic=None, lifter_width=16, lifter_dropout=0.0, keep_observed=m).eval()
        outs[m] = proc(batch)[0]["C"]
    face = [proc.layout.index(j) for j in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    body = [i for i in range(proc.layout.num_joints) if i not in face and proc.unifier.real_mask("coco20")[i]]
    assert not torch.allclose(outs[mode][..., face, :], outs["none"][..., face, :])
    same_body = torch.allclose(outs[mode][..., body, :], outs["none"][..., body, :])
    assert same_body == (mode == "unsupervised")
    assert torch.equal(outs[mode][1, 1], torch.zeros_like(outs[mode][1, 1]))   # an absent person stays absent
    with pytest.raises(ValueError, match="keep_observed"):
        HeteroProcessor(semantic=None, keep_observed="face")


def test_smooth_frames_smooths_every_source_before_the_processor():
    from hetskel.data.transforms import smooth_time
    batch = _batch(_bodies())
    torch.manual_seed(0)
    smooth = HeteroProcessor(lifter_width=16, lifter_dropout=0.0, smooth_frames=3).eval()
    torch.manual_seed(0)
    plain = HeteroProcessor(lifter_width=16, lifter_dropout=0.0).eval()
    pre = {k: smooth_time(v, 3) if k in ("ntu25", "coco17") else v for k, v in batch.items()}
    got, want = smooth(batch)[0], plain(pre)[0]
    assert set(got) == {"J", "C", "S"}
    for k in got:
        assert torch.allclose(got[k], want[k], atol=1e-6), k
    assert not torch.allclose(got["J"], plain(batch)[0]["J"])
    with pytest.raises(ValueError, match="smooth_frames"):
        HeteroProcessor(semantic=None, smooth_frames=2)


def test_equal_bones_changes_the_positions_only_and_per_clip_matches_forward():
    from hetskel.model.augment import equal_bones
    batch = _batch(_bodies(T=8))
    torch.manual_seed(0)
    equal = HeteroProcessor(lifter_width=16, lifter_dropout=0.0, equal_bones=True).eval()
    torch.manual_seed(0)
    plain = HeteroProcessor(lifter_width=16, lifter_dropout=0.0).eval()
    got, want = equal(batch)[0], plain(batch)[0]
    for k in ("J", "C"):
        torch.testing.assert_close(got[k], equal_bones(want[k], plain.layout))
    torch.testing.assert_close(got["S"], want["S"])          # motion words of the skeleton as unified
    assert torch.equal(got["J"][1, 1], torch.zeros_like(got["J"][1, 1]))   # an absent person stays absent
    # once per clip (the whole clip as the view) gives what forward gives
    state, _ = equal.process_clip(batch)
    n, t = batch["ntu25"].shape[0], batch["ntu25"].shape[2]
    view = equal.view(state, torch.zeros(n, dtype=torch.int64), torch.full((n,), t), t)
    for k in got:
        torch.testing.assert_close(view[k], got[k], atol=1e-5, rtol=1e-5)


def test_semantic_from_observed_reads_each_joint_from_a_source_that_sees_it():
    batch = _batch(_bodies(T=8))
    torch.manual_seed(0)
    obs = HeteroProcessor(lifter_width=16, lifter_dropout=0.0, semantic_from="observed").eval()
    mods, _ = obs(batch)
    lay = obs.layout
    j_real = obs.unifier.real_mask(obs.unified_layouts["J"])
    c_real = obs.unifier.real_mask(obs.unified_layouts["C"])
    face = [lay.index(j) for j in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    assert not j_real[face].any() and c_real[face].all()
    want = torch.where(j_real[:, None], mods["J"], torch.where(c_real[:, None], mods["C"], mods["J"]))
    assert torch.allclose(mods["S"], obs.semantic(want))
    # the paper's choice reads J only; the once-per-clip path gives the same words as the per-view one
    torch.manual_seed(0)
    paper = HeteroProcessor(lifter_width=16, lifter_dropout=0.0).eval()
    assert torch.allclose(paper(batch)[0]["S"], paper.semantic(paper(batch)[0]["J"]))
    state, _ = obs.process_clip(batch)
    T = batch["ntu25"].shape[2]
    view = obs.view(state, torch.zeros(3, dtype=torch.long), torch.full((3,), T), T)
    assert torch.allclose(view["S"], mods["S"], atol=1e-6)
