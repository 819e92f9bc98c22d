"""Hostile NTU .skeleton input: every malformed file gives a DataError naming file, line, frame and field."""
from __future__ import annotations

import numpy as np
import pytest

from hetskel.data.errors import DataError
from hetskel.data.ntu import EmptySkeletonError, read_skeleton
from hetskel.data.ntu_convert import convert_ntu

NAME = "S001C001P001R001A001"


@pytest.fixture(autouse=True, params=["window", "tiny-windows"])
def windows(request, monkeypatch):
    """Every case also with 61-byte windows (issue 14: the reader converts a file window by window),
    so that windows end mid-line, mid-file and next to every kind of malformation."""
    if request.param == "tiny-windows":
        from hetskel.data import ntu_text
        monkeypatch.setattr(ntu_text, "_WINDOW", 61)


def fake_lines(bodies_per_frame, seed=0, bid0=100):
    """A valid file as a list of lines: frame t holds bodies_per_frame[t] bodies with IDs bid0, bid0+1, ..."""
    rng = np.random.default_rng(seed)
    lines = [str(len(bodies_per_frame))]
    for nb in bodies_per_frame:
        lines.append(str(nb))
        for b in range(nb):
            lines += [f"{bid0 + b} 0 1 1 1 1 0 0.01 -0.02 2", "25"]
            J = np.round(rng.uniform(-1, 4, (25, 11)), 5)
            lines += [" ".join(f"{v:g}" for v in row) + " 2" for row in J]
    return lines


def write(tmp_path, lines, name=NAME, eol="\r\n"):
    f = tmp_path / f"{name}.skeleton"
    f.write_text(eol.join(lines) + eol, newline="")
    return f


def joint_line(t, j, per_frame=1):
    """0-based list index of joint j of the first body of frame t, in a file of `per_frame` bodies/frame."""
    return 1 + t * (1 + 27 * per_frame) + 1 + 2 + j


def raises(path, match, **kw):
    with pytest.raises(DataError, match=match) as ei:
        read_skeleton(path, **kw)
    assert str(path) in str(ei.value)  # the message names the file
    return ei.value


def test_lf_and_crlf_parse_identically(tmp_path):
    lines = fake_lines([1, 2, 1])
    (tmp_path / "lf").mkdir()
    a = read_skeleton(write(tmp_path, lines, eol="\r\n"))
    b = read_skeleton(write(tmp_path / "lf", lines, eol="\n"))
    assert b"\r" in (tmp_path / f"{NAME}.skeleton").read_bytes()
    assert b"\r" not in (tmp_path / "lf" / f"{NAME}.skeleton").read_bytes()
    np.testing.assert_array_equal(a.xyz, b.xyz)
    np.testing.assert_array_equal(a.present, b.present)
    assert a.xyz.shape == (2, 3, 25, 3) and a.present.tolist() == [[1, 1, 1], [0, 1, 0]]


def test_truncated_inside_joint_block(tmp_path):
    lines = fake_lines([1, 1, 1])
    e = raises(write(tmp_path, lines[:joint_line(2, 10)]), "truncated")
    assert e.sample == "frame 2"


def test_truncated_mid_line(tmp_path):
    lines = fake_lines([1, 1])
    last = lines[-1].split()
    f = tmp_path / f"{NAME}.skeleton"
    f.write_bytes("\r\n".join(lines[:-1] + [" ".join(last[:5])]).encode())  # no final newline
    e = raises(f, "expected 12 fields, got 5")
    assert e.line == len(lines) and e.sample == "frame 1"


def test_frame_count_too_large_or_too_small(tmp_path):
    lines = fake_lines([1, 1])
    raises(write(tmp_path, ["3"] + lines[1:]), "truncated")
    e = raises(write(tmp_path, ["1"] + lines[1:]), "after the last of 1 frames")
    assert e.line == 2 + 27 + 1
    raises(write(tmp_path, ["-2"] + lines[1:]), "negative frame count")


def test_missing_joint_line(tmp_path):
    lines = fake_lines([1, 1, 1])
    del lines[joint_line(1, 5)]
    e = raises(write(tmp_path, lines), "expected 12 fields, got 1")
    # the block of frame 1 now swallows frame 2's body-count line, at 1-based line 2 + 28*1 + 27
    assert e.line == 2 + 28 + 27 and e.sample == "frame 1"


def test_extra_joint_line(tmp_path):
    lines = fake_lines([1, 1, 1])
    lines.insert(joint_line(0, 25), lines[joint_line(0, 24)])  # a 26th joint line in frame 0
    e = raises(write(tmp_path, lines), "body count")
    assert e.line == 2 + 28 and "joint line" in str(e)
    lines = fake_lines([1, 1])
    lines.append(lines[-1])  # extra line at the very end
    raises(write(tmp_path, lines), "after the last")


def test_joint_count_not_25(tmp_path):
    lines = fake_lines([1, 1])
    i = joint_line(1, 0) - 1
    lines[i] = "24"
    del lines[joint_line(1, 24)]
    e = raises(write(tmp_path, lines), "joint count is 24")
    assert e.field == "joint count" and e.line == i + 1


@pytest.mark.parametrize("value,field_index,field", [("abc", 1, "y"), ("nan", 0, "x"), ("inf", 5, "colorX"),
                                                      ("-inf", 10, "orientationZ"), ("1.2.3", 2, "z")])
def test_non_numeric_and_nonfinite_fields(tmp_path, value, field_index, field):
    lines = fake_lines([1, 2, 1])
    i = joint_line(1, 7, per_frame=1) + 27  # joint 7 of the SECOND body of frame 1
    row = lines[i].split()
    row[field_index] = value
    lines[i] = " ".join(row)
    e = raises(write(tmp_path, lines), "not a finite number")
    assert e.field == field and e.line == i + 1 and e.sample == "frame 1"


def test_bad_tracking_state_and_body_info(tmp_path):
    lines = fake_lines([1, 1])
    lines[joint_line(1, 3)] = lines[joint_line(1, 3)].rsplit(" ", 1)[0] + " 3"
    e = raises(write(tmp_path, lines), "tracking state")
    assert e.field == "trackingState" and e.line == joint_line(1, 3) + 1
    lines = fake_lines([1, 1])
    lines[joint_line(1, 0) - 2] = "123 0 1 1"
    e = raises(write(tmp_path, lines), "expected 10 fields, got 4")
    assert e.field == "body info"
    lines[joint_line(1, 0) - 2] = "x12 0 1 1 1 1 0 0 0 2"
    raises(write(tmp_path, lines), "integer body ID")


def test_duplicate_body_id_in_a_frame(tmp_path):
    lines = fake_lines([2])
    lines[2 + 27] = lines[2]  # second body gets the first body's info line (same ID)
    raises(write(tmp_path, lines), "appears twice")


def test_zero_body_frames_are_zero_filled(tmp_path):
    sk = read_skeleton(write(tmp_path, fake_lines([0, 1, 0, 1, 0])))
    assert sk.num_frames == 5 and sk.xyz.shape == (1, 5, 25, 3)
    assert sk.present.tolist() == [[False, True, False, True, False]]
    assert not sk.xyz[:, [0, 2, 4]].any() and sk.xyz[:, [1, 3]].any()


def test_file_without_bodies_is_empty(tmp_path):
    with pytest.raises(EmptySkeletonError, match="no body in any of the 4 frames"):
        read_skeleton(write(tmp_path, fake_lines([0, 0, 0, 0])))


def test_body_limit(tmp_path):
    f = write(tmp_path, fake_lines([1, 7]))
    e = raises(f, "7 bodies in one frame")
    assert e.field == "body count" and e.sample == "frame 1"
    f = write(tmp_path, fake_lines([5, 1]))
    assert read_skeleton(f).num_bodies == 5
    raises(f, r"allowed 0\.\.4", max_bodies_per_frame=4)


def test_empty_missing_and_binary_files(tmp_path):
    f = tmp_path / f"{NAME}.skeleton"
    f.write_bytes(b"")
    raises(f, "empty file")
    f.write_bytes(b"\r\n \r\n")
    raises(f, "empty file")
    f.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    raises(f, "not a text file")
    raises(tmp_path / "S001C001P001R001A002.skeleton", "no such file")
    f.write_text("hello\n")
    raises(f, "integer frame count")


def test_convert_reports_bad_and_skips_empty_writing_only_good(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write(src, fake_lines([1, 2]), name="S001C001P001R001A001")
    write(src, fake_lines([1, 1])[:40], name="S001C002P002R001A002")  # truncated
    write(src, fake_lines([0, 0]), name="S001C003P003R001A003")  # empty: skipped, not bad
    write(src, fake_lines([1]), name="not_an_ntu_name")
    write(src, fake_lines([1]), name="S001C001P001R001A004")  # on the user's missing list
    rep = convert_ntu(src, tmp_path / "out.pkl", workers=1, progress=False, missing_list=["S001C001P001R001A004"])
    assert rep.converted == 1 and not rep.ok and rep.out_path is not None
    bad = dict(rep.bad)
    assert len(bad) == 2 and any("not_an_ntu_name" in k for k in bad)
    truncated = next(v for k, v in bad.items() if "S001C002P002R001A002" in k)
    assert "S001C002P002R001A002.skeleton" in truncated and "truncated" in truncated
    assert dict(rep.skipped) == {"S001C003P003R001A003": "no body in any of the 2 frames (empty sample)",
                                 "S001C001P001R001A004": "on the missing-skeleton list"}
    from hetskel.data.pyskl import load_pyskl
    data = load_pyskl(tmp_path / "out.pkl")
    assert [a["frame_dir"] for a in data["annotations"]] == ["S001C001P001R001A001"]
    assert "bad: 2" in rep.format() and "truncated" in rep.format()


def test_convert_with_nothing_good_writes_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write(src, fake_lines([1, 1])[:10])
    rep = convert_ntu(src, tmp_path / "out.pkl", workers=1, progress=False)
    assert rep.converted == 0 and rep.out_path is None and not (tmp_path / "out.pkl").exists()
    assert "NOTHING WRITTEN" in rep.format()
    (tmp_path / "src2").mkdir()
    with pytest.raises(DataError, match="no \\*.skeleton files"):
        convert_ntu(tmp_path / "src2", tmp_path / "x.pkl", progress=False)
    with pytest.raises(DataError, match="not a directory"):
        convert_ntu(tmp_path / "nope", tmp_path / "x.pkl", progress=False)


# ------------------------------------------------------------------ the vectorised number parser
def test_exponents_and_other_odd_numbers_are_read_exactly(tmp_path):
    """Real NTU files hold values like 7.29689E-05; they (and other float() spellings) take the
    per-token float() route and must come out exactly as float() reads them."""
    lines = fake_lines([1, 1])
    odd = ["7.29689E-05", "-2.988477E-05", "+3", "1_0", "12345678901234567890", "0.1234567890123456789", "-0"]
    row = lines[joint_line(1, 4)].split()
    row[:len(odd)] = odd
    lines[joint_line(1, 4)] = " ".join(row)
    sk = read_skeleton(write(tmp_path, lines))
    got = np.concatenate([sk.xyz[0, 1, 4], sk.depth_xy[0, 1, 4], sk.color_xy[0, 1, 4]])
    assert got.tolist() == [float(v) for v in odd]
    assert np.signbit(sk.color_xy[0, 1, 4, 1])  # "-0" keeps its sign


def test_unusual_line_ends_and_whitespace_parse_like_crlf(tmp_path):
    """Old-Mac \\r line ends, non-ASCII whitespace, tabs: the str.split() route, same result."""
    lines = fake_lines([1, 2, 1], seed=3)
    ref = read_skeleton(write(tmp_path, lines))
    variants = {"cr": ("\r", lines), "nbsp": ("\r\n", [ln.replace(" ", "\u00a0") for ln in lines]),
                "tab": ("\n", [ln.replace(" ", "\t") for ln in lines])}
    for name, (eol, text_lines) in variants.items():
        (tmp_path / name).mkdir()
        sk = read_skeleton(write(tmp_path / name, text_lines, eol=eol))
        np.testing.assert_array_equal(sk.xyz, ref.xyz, err_msg=name)
        np.testing.assert_array_equal(sk.orientation, ref.orientation, err_msg=name)
        assert sk.body_ids == ref.body_ids


def test_control_byte_inside_a_value(tmp_path):
    lines = fake_lines([1, 1])
    row = lines[joint_line(1, 2)].split()
    row[3] = "277\x00.4"
    lines[joint_line(1, 2)] = " ".join(row)
    e = raises(write(tmp_path, lines), "not a finite number")
    assert e.field == "depthX" and e.line == joint_line(1, 2) + 1 and e.sample == "frame 1"


def test_huge_values_are_not_mistaken_for_infinities(tmp_path):
    lines = fake_lines([1])
    for j in range(25):  # finite, but their sum overflows float64
        row = lines[joint_line(0, j)].split()
        row[5:7] = ["1.7e308", "1.7e308"]
        lines[joint_line(0, j)] = " ".join(row)
    sk = read_skeleton(write(tmp_path, lines))
    assert (sk.color_xy[0, 0] == 1.7e308).all()


def test_huge_frame_count_in_a_short_file(tmp_path):
    lines = fake_lines([1])
    e = raises(write(tmp_path, ["72057594037931101"] + lines[1:]), "truncated")
    assert e.field == "body count" and e.sample == "frame 1"
