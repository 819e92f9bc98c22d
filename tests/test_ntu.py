"""NTU raw .skeleton reader, body selection, names/splits, missing lists and convert_ntu on real files."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetskel.bench.ntu_reader import naive_parse, ntu_parse_speedup
from hetskel.data.errors import DataError
from hetskel.data.ntu import (
    _careful_walk,
    _fast_walk,
    motion_energy,
    read_skeleton,
    select_bodies,
)
from hetskel.data.ntu_convert import convert_ntu
from hetskel.data.ntu_meta import (
    NTU60_CLASSES,
    NTU120_CLASSES,
    XSUB_TRAIN_60,
    XSUB_TRAIN_120,
    class_names,
    detect_dataset,
    missing_samples,
    ntu_split,
    parse_name,
)
from hetskel.data.ntu_text import Tokens, tokenize
from hetskel.data.pyskl import load_pyskl

SAMPLES = ["S001C001P001R001A001", "S001C001P001R001A011", "S001C003P008R002A058",
           "S002C001P003R001A003", "S003C001P015R001A034", "S004C002P003R001A017"]
EXPECTED = {  # (frames, bodies) from the folder's SOURCE.txt
    "S001C001P001R001A001": (103, 1), "S001C001P001R001A011": (82, 1), "S001C003P008R002A058": (70, 2),
    "S002C001P003R001A003": (100, 1), "S003C001P015R001A034": (71, 1), "S004C002P003R001A017": (124, 1)}


def reference_parse(path):
    """Independent, naive line-by-line parser: [frame] -> {body_id: (25, 12) float64 array}."""
    with open(path) as f:
        it = iter([ln.strip() for ln in f])
    frames = []
    for _ in range(int(next(it))):
        bodies = {}
        for _ in range(int(next(it))):
            bid = int(next(it).split()[0])
            nj = int(next(it))
            bodies[bid] = np.array([[float(v) for v in next(it).split()] for _ in range(nj)])
        frames.append(bodies)
    return frames


@pytest.fixture(scope="module")
def raw(shared_data):
    return shared_data / "ntu_raw_sample"


@pytest.mark.parametrize("name", SAMPLES)
def test_real_file_matches_reference_parse(raw, name):
    path = raw / f"{name}.skeleton"
    sk, ref = read_skeleton(path), reference_parse(path)
    assert (sk.num_frames, sk.num_bodies) == EXPECTED[name]
    assert sk.name == name and len(ref) == sk.num_frames
    order = {bid: b for b, bid in enumerate(sk.body_ids)}
    seen = np.zeros_like(sk.present)
    for t, bodies in enumerate(ref):
        for bid, J in bodies.items():
            b = order[bid]
            seen[b, t] = True
            np.testing.assert_array_equal(sk.xyz[b, t], J[:, 0:3])
            np.testing.assert_array_equal(sk.depth_xy[b, t], J[:, 3:5])
            np.testing.assert_array_equal(sk.color_xy[b, t], J[:, 5:7])
            np.testing.assert_array_equal(sk.orientation[b, t], J[:, 7:11])
            np.testing.assert_array_equal(sk.tracking[b, t], J[:, 11].astype(np.int8))
    np.testing.assert_array_equal(sk.present, seen)
    assert not sk.xyz[~sk.present].any()  # absent (body, frame) entries are exactly zero
    assert sk.bodies_per_frame.tolist() == [len(b) for b in ref]
    assert set(sk.body_info) >= {"clipped_edges", "lean", "tracking_state"}
    assert sk.body_info["lean"].shape == (sk.num_bodies, sk.num_frames, 2)


def test_matches_official_txt2npy_output(raw):
    ref = np.load(raw / "S001C001P001R001A001.skeleton.npy", allow_pickle=True).item()
    sk = read_skeleton(raw / "S001C001P001R001A001.skeleton")
    np.testing.assert_array_equal(sk.xyz[0], ref["skel_body0"])
    assert sk.bodies_per_frame.tolist() == list(ref["nbodys"])


def test_two_body_file_keeps_both_ordered_by_motion_energy(raw):
    sk = read_skeleton(raw / "S001C003P008R002A058.skeleton")
    x = select_bodies(sk, max_persons=2)
    assert x.shape == (2, 70, 25, 3) and (np.abs(x).sum((1, 2, 3)) > 0).all()
    # energy recomputed independently: per-joint variance over time, summed
    energy = [sk.xyz[b].var(axis=0).sum() for b in range(2)]  # both bodies present in all 70 frames
    np.testing.assert_allclose(motion_energy(sk), energy)
    np.testing.assert_array_equal(x[0], sk.xyz[int(np.argmax(energy))])
    one = select_bodies(sk, max_persons=1)
    assert one.shape == (1, 70, 25, 3)


def test_single_body_is_zero_padded(raw):
    sk = read_skeleton(raw / "S001C001P001R001A011.skeleton")
    x = select_bodies(sk, 3, field="color_xy")
    assert x.shape == (3, 82, 25, 2)
    np.testing.assert_array_equal(x[0], sk.color_xy[0])
    assert not x[1:].any()


def test_motion_energy_picks_the_moving_body(tmp_path):
    rng = np.random.default_rng(0)
    T, lines = 6, []
    lines.append(str(T))
    for t in range(T):
        lines.append("3")
        for bid, amp in ((11, 0.0), (22, 0.5), (33, 0.05)):  # 22 moves most, 11 is a still object
            lines += [f"{bid} 0 1 1 1 1 0 0 0 2", "25"]
            xyz = 1.0 + amp * rng.standard_normal((25, 3))
            lines += [" ".join(f"{v:.6f}" for v in p) + " 1 2 3 4 1 0 0 0 2" for p in xyz]
    f = tmp_path / "S001C001P001R001A050.skeleton"
    f.write_text("\r\n".join(lines) + "\r\n")
    sk = read_skeleton(f)
    assert sk.body_ids == [11, 22, 33]
    x = select_bodies(sk, 2)
    np.testing.assert_array_equal(x[0], sk.xyz[1])
    np.testing.assert_array_equal(x[1], sk.xyz[2])


def test_parse_name_and_label():
    d = parse_name("S001C002P003R002A013")
    assert d == {"setup": 1, "camera": 2, "performer": 3, "replication": 2, "action": 13}
    assert parse_name("/some/dir/S018C001P045R001A120.skeleton")["action"] == 120
    for bad in ("S01C002P003R002A013", "hello", "S001C002P003R002A013x"):
        with pytest.raises(DataError, match="NTU sample name"):
            parse_name(bad)


def test_splits_follow_official_protocols():
    names = ["S001C001P001R001A001", "S001C002P003R001A001", "S002C003P045R002A010", "S018C001P045R001A061",
             "S019C003P103R001A100", "S020C002P104R001A100"]
    xs60 = ntu_split(names[:3], "xsub", "ntu60")
    assert xs60 == {"xsub_train": [names[0]], "xsub_val": [names[1], names[2]]}  # P045 is NTU-120 only
    xs120 = ntu_split(names, "xsub", "ntu120")
    assert xs120["xsub_train"] == [names[0], names[2], names[3], names[4]]
    assert ntu_split(names[:3], "xview")["xview_train"] == names[1:3]
    xset = ntu_split(names, "xset", "ntu120")
    assert xset["xset_train"] == [names[2], names[3], names[5]]  # even setups 2, 18, 20
    assert len(XSUB_TRAIN_60) == 20 and len(XSUB_TRAIN_120) == 53
    with pytest.raises(ValueError, match="protocols"):
        ntu_split(names, "xset", "ntu60")
    with pytest.raises(ValueError, match="protocols"):
        ntu_split(names, "xview", "ntu120")
    assert detect_dataset(names[:3]) == "ntu60" and detect_dataset(names) == "ntu120"


def test_official_missing_lists(tmp_path):
    m60, m120 = missing_samples("ntu60"), missing_samples("ntu120")
    assert len(m60) == 302 and len(m120) == 535 and m60 <= m120
    assert "S001C002P005R002A008" in m60 and "S032C003P067R002A077" in m120
    assert all(parse_name(n)["setup"] <= 17 for n in m60)
    # a user list in the official format (prose header) is read by name pattern
    f = tmp_path / "mine.txt"
    f.write_text('2 of the captured samples have "missing" skeletons.\n\nS001C001P001R001A001\r\nS002C001P003R001A003\n')
    assert missing_samples(path=f) == {"S001C001P001R001A001", "S002C001P003R001A003"}
    with pytest.raises(DataError, match="missing-sample list"):
        missing_samples(path=tmp_path / "nope.txt")


def test_class_names():
    assert len(NTU60_CLASSES) == 60 and len(NTU120_CLASSES) == 120
    assert NTU120_CLASSES[0] == "drink water" and NTU120_CLASSES[57] == "handshaking"
    assert NTU120_CLASSES[60] == "put on headphone" and NTU120_CLASSES[-1].startswith("finger-guessing")
    assert class_names("ntu60") == list(NTU60_CLASSES) and len(set(NTU120_CLASSES)) == 120


def test_convert_real_folder_is_exact_and_parallel_agrees(raw, tmp_path):
    rep = convert_ntu(raw, tmp_path / "a.pkl", workers=1, progress=False)
    assert rep.ok and rep.converted == 6 and not rep.skipped and rep.dataset == "ntu60"
    data = load_pyskl(tmp_path / "a.pkl")
    assert data["layout"] == "ntu25" and data["dataset"] == "ntu60" and len(data["class_names"]) == 60
    assert set(data["split"]) == {"xsub_train", "xsub_val", "xview_train", "xview_val"}
    assert sorted(data["split"]["xsub_val"]) == ["S002C001P003R001A003", "S004C002P003R001A017"]
    assert sorted(data["split"]["xview_train"]) == ["S001C003P008R002A058", "S004C002P003R001A017"]
    for ann in data["annotations"]:
        name = ann["frame_dir"]
        ref = reference_parse(raw / f"{name}.skeleton")
        assert ann["label"] == int(name[-3:]) - 1 and ann["total_frames"] == EXPECTED[name][0]
        persons = min(read_skeleton(raw / f"{name}.skeleton").num_bodies, 2)   # the clip's own count, no padding
        assert ann["keypoint"].shape == (persons, EXPECTED[name][0], 25, 3) and ann["keypoint"].dtype == np.float32
        assert tuple(ann["img_shape"]) == (1080, 1920) and ann["subject"] == int(name[9:12])
        first = {bid: J for bid, J in ref[0].items()}
        got = ann["keypoint"][:, 0]
        for J in first.values():  # every body of frame 0 is one of the kept persons, value-exact
            hit = [m for m in range(persons) if np.array_equal(got[m], J[:, :3].astype(np.float32))]
            assert hit, name
            assert np.array_equal(got[hit[0]].astype(np.float16), J[:, :3].astype(np.float16))
    rep2 = convert_ntu(raw, tmp_path / "b.pkl", workers=2, progress=False)
    data2 = load_pyskl(tmp_path / "b.pkl")
    assert rep2.converted == 6
    for a, b in zip(data["annotations"], data2["annotations"]):
        assert a["frame_dir"] == b["frame_dir"]
        np.testing.assert_array_equal(a["keypoint"], b["keypoint"])


def test_convert_color2d_and_missing_list_skips(raw, tmp_path):
    rep = convert_ntu(raw, tmp_path / "c.pkl", workers=1, progress=False, fields="color2d",
                      missing_list=["S001C001P001R001A011", "S001C003P008R002A058"])
    assert rep.converted == 4 and [s[0] for s in rep.skipped] == ["S001C001P001R001A011", "S001C003P008R002A058"]
    assert "missing" in rep.skipped[0][1] and not rep.bad
    data = load_pyskl(tmp_path / "c.pkl")
    assert {a["frame_dir"] for a in data["annotations"]}.isdisjoint({s[0] for s in rep.skipped})
    ann = next(a for a in data["annotations"] if a["frame_dir"] == "S001C001P001R001A001")
    sk = read_skeleton(raw / "S001C001P001R001A001.skeleton")
    assert sk.num_bodies == 1 and ann["keypoint"].shape == (1, 103, 25, 2)   # one person: not padded to 2
    np.testing.assert_array_equal(ann["keypoint"][0], sk.color_xy[0].astype(np.float32))
    expect = np.where(sk.tracking[0] == 2, 1.0, np.where(sk.tracking[0] == 1, 0.5, 0.0))
    np.testing.assert_array_equal(ann["keypoint_score"][0], expect)
    assert ann["keypoint_score"].shape == (1, 103, 25) and (sk.tracking[0] == 1).any()  # this file has inferred joints


# ------------------------------------------------------------ number parser, walks, benchmark pieces
def test_every_number_of_the_real_files_is_bit_exact(raw):
    """tokenize() on the raw bytes gives exactly float(token) for every token, incl. the E-05 ones."""
    for name in SAMPLES:
        data = (raw / f"{name}.skeleton").read_bytes()
        tok = tokenize(data)
        ref = np.array([float(t) for t in data.split()])
        got = tok.numbers(np.arange(ref.size))
        assert got.view(np.int64).tolist() == ref.view(np.int64).tolist(), name
        assert tok.count.tolist() == [len(ln.split()) for ln in data.split(b"\n")]
        assert tok.plain.mean() > 0.99  # almost everything takes the vectorised route


@settings(max_examples=150, deadline=None)
@given(st.lists(st.from_regex(r"-?[0-9]{0,9}\.?[0-9]{0,9}|[0-9.eE+-]{1,8}", fullmatch=True), min_size=1,
                max_size=40))
def test_decimal_tokens_match_float(tokens):
    tokens = [t for t in tokens if t]
    text = ("\r\n".join(" ".join(tokens[i:i + 5]) for i in range(0, len(tokens), 5)) + "\n").encode()
    tok = tokenize(text)
    got = tok.numbers(np.arange(len(tokens)))
    for t, v in zip(tokens, got):
        try:
            want = float(t)
        except ValueError:
            want = float("nan")
        assert np.float64(want).view(np.int64) == np.float64(v).view(np.int64) or np.isnan(want) and np.isnan(v), t


def test_tokenize_lines_and_routes():
    tok = tokenize(b"3\r\n\r\n 1 2\t-3.5 \n4")  # no final newline; a blank line
    assert tok.count.tolist() == [1, 0, 3, 1] and tok.numbers(np.arange(5)).tolist() == [3, 1, 2, -3.5, 4]
    assert tok.integer.tolist() == [True, True, True, False, True]
    for odd in (b"1\r2\n", b"1\x0b2\n", b"1\x002\n", "1\u00a02\n".encode()):  # str would split these lines
        assert tokenize(odd) is None, odd
    slow = Tokens.from_lines("1\u00a02\n3".splitlines())
    assert slow.count.tolist() == [2, 1] and slow.numbers(np.arange(3)).tolist() == [1, 2, 3]
    edge = ["0", "-0", "1.", ".5", "-.5", "123456789012345", "1234567890.1234", "-99999999.999999",
            "0.000000000000001", "1234567890123456", "9.999999999999999", "0.3", "2.675", "1/2", "/", "-",
            ".", "-.", "1-", "--1", "1.2.3", "0..1", "1e5", "nan", "-inf", "72057594037931101"]
    tok = tokenize(" ".join(edge).encode())
    got = tok.numbers(np.arange(len(edge)))
    for t, v in zip(edge, got):
        want = np.float64(float(t) if t not in ("1/2", "/", "-", ".", "-.", "1-", "--1", "1.2.3", "0..1")
                          else np.nan)
        assert want.view(np.int64) == v.view(np.int64) or np.isnan(want) and np.isnan(v), t
    assert tok.plain[:6].all() and not tok.plain[9]  # up to 15 digits vectorised, 16 through float()


@pytest.mark.parametrize("window", [7, 61, 4096, 100_000])
def test_windowed_reader_matches_one_window(raw, tmp_path, window, monkeypatch):
    """Issue 14: the reader scans and converts a file window by window (bounded memory); any window
    size, even one cutting every line or a lone token, gives bit-identical arrays and line tables."""
    from hetskel.data import ntu_text
    files = [raw / f"{n}.skeleton" for n in SAMPLES[:3]]
    if window < 1000:  # (thousands of windows a file: the first 4 frames of each are enough)
        for k, p in enumerate(files):
            lines, i = p.read_bytes().splitlines(keepends=True), 1
            for _ in range(4):
                i += 1 + (2 + 25) * int(lines[i])
            files[k] = tmp_path / f"{k}_{p.name}"
            files[k].write_bytes(b"4\r\n" + b"".join(lines[1:i]))
    odd = tmp_path / f"{SAMPLES[0]}.skeleton"  # LF, tabs, long runs of blanks, no final newline
    odd.write_bytes(files[0].read_bytes().replace(b"\r\n", b"\n").replace(b" ", b" \t" + b" " * 40).rstrip())
    ref = {p: read_skeleton(p) for p in files + [odd]}
    monkeypatch.setattr(ntu_text, "_WINDOW", window)
    for p, want in ref.items():
        got = read_skeleton(p)
        for key in ("xyz", "depth_xy", "color_xy", "orientation", "tracking", "present", "bodies_per_frame"):
            a, b = getattr(got, key), getattr(want, key)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (p.name, key)
        for key, v in want.body_info.items():
            assert got.body_info[key].tobytes() == v.tobytes(), (p.name, key)
        data = p.read_bytes()
        lines, tok = ntu_text.scan(data, window), tokenize(data)
        assert lines.count.tolist() == tok.count.tolist()
        np.testing.assert_array_equal(lines.head, tok.head)
        assert lines.start[:-1].tolist() == [0] + [k + 1 for k in range(len(data)) if data[k] == 10]


def test_fast_walk_agrees_with_the_careful_walk(raw):
    for name in SAMPLES:
        data = (raw / f"{name}.skeleton").read_bytes()
        tok = tokenize(data)
        L = int(np.flatnonzero(tok.count)[-1]) + 1
        fast = _fast_walk(tok, L, 6)
        careful = _careful_walk(data.decode().splitlines(), name, 6, tok)
        assert fast is not None and fast.ids == careful.ids
        for key in ("per_frame", "body", "frame", "info_line"):
            np.testing.assert_array_equal(getattr(fast, key), getattr(careful, key), err_msg=key)


def test_scratch_reuse_across_files_and_threads(raw):
    """The tokenizer's per-thread scratch buffers are reused: interleaved files and threads agree."""
    import concurrent.futures as cf

    paths = [raw / f"{n}.skeleton" for n in SAMPLES]
    ref = {p: naive_parse(p) for p in paths}
    with cf.ThreadPoolExecutor(3) as pool:
        for p, sk in zip(paths * 3, pool.map(read_skeleton, paths * 3)):
            np.testing.assert_array_equal(sk.xyz, ref[p])


def test_benchmark_pieces(raw):
    paths = [raw / f"{n}.skeleton" for n in SAMPLES[:2]]
    res = ntu_parse_speedup(paths, rounds=1)
    assert set(res) == {"files_per_s", "files_per_s_baseline", "speedup", "files"} and res["files"] == 2
    assert res["files_per_s"] > 0 and res["files_per_s_baseline"] > 0
    assert res["speedup"] == pytest.approx(res["files_per_s"] / res["files_per_s_baseline"])
    with pytest.raises(ValueError, match="at least one file"):
        ntu_parse_speedup([])
