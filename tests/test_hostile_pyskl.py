"""Files that must be refused by hetskel.data.pyskl: broken structure, broken pickles, hostile pickles."""
import functools
import os
import pickle
import subprocess

import numpy as np
import pytest

from hetskel.data.errors import DataError
from hetskel.data.pyskl import load_pyskl, save_pyskl, validate_pyskl


def _good():
    rng = np.random.default_rng(1)
    anns = [{"frame_dir": f"v{i}", "label": i % 3, "keypoint": rng.normal(size=(2, 8, 25, 3)).astype(np.float32)}
            for i in range(4)]
    return {"split": {"xsub_train": ["v0", "v1", "v2"], "xsub_val": ["v3"]}, "annotations": anns}


def _write(tmp_path, obj, name="f.pkl"):
    p = tmp_path / name
    p.write_bytes(pickle.dumps(obj, protocol=4))
    return p


def _raises(tmp_path, data, match, **fields):
    p = _write(tmp_path, data)
    with pytest.raises(DataError, match=match) as e:
        load_pyskl(p)
    assert str(p) in str(e.value)
    for k, v in fields.items():
        assert getattr(e.value, k) == v, (k, str(e.value))
    return e.value


def test_good_file_loads(tmp_path):
    assert len(load_pyskl(_write(tmp_path, _good()))["annotations"]) == 4


def test_missing_top_level_keys(tmp_path):
    d = _good()
    del d["split"]
    _raises(tmp_path, d, "'split' and 'annotations'")
    _raises(tmp_path, [1, 2], "got a list")


@pytest.mark.parametrize("key", ["frame_dir", "label", "keypoint"])
def test_missing_annotation_key(tmp_path, key):
    d = _good()
    del d["annotations"][2][key]
    err = _raises(tmp_path, d, f"missing required key.*{key}")
    assert err.sample == ("#2" if key == "frame_dir" else "v2")


@pytest.mark.parametrize("shape", [(8, 25, 3), (1, 2, 8, 25, 3), (2, 8, 25, 4), (2, 0, 25, 3)])
def test_wrong_keypoint_shape(tmp_path, shape):
    d = _good()
    d["annotations"][1]["keypoint"] = np.zeros(shape, np.float32)
    _raises(tmp_path, d, "keypoint", sample="v1", field="keypoint")


def test_keypoint_of_strings_or_objects(tmp_path):
    d = _good()
    d["annotations"][0]["keypoint"] = np.array([["a"]])
    _raises(tmp_path, d, "dtype", sample="v0", field="keypoint")


def test_keypoint_score_shape_mismatch(tmp_path):
    d = _good()
    d["annotations"][3]["keypoint_score"] = np.ones((2, 7, 25), np.float32)
    _raises(tmp_path, d, r"\(M, T, V\)", sample="v3", field="keypoint_score")


def test_nan_and_inf_are_named(tmp_path):
    d = _good()
    d["annotations"][2]["keypoint"][1, 3, 4, 0] = np.inf
    _raises(tmp_path, d, "NaN/inf", sample="v2", field="keypoint")


def test_total_frames_mismatch(tmp_path):
    d = _good()
    d["annotations"][0]["total_frames"] = 9
    _raises(tmp_path, d, "T = 8", sample="v0", field="total_frames")


@pytest.mark.parametrize("label", [-1, 1.0, "3", True, None])
def test_bad_labels(tmp_path, label):
    d = _good()
    d["annotations"][1]["label"] = label
    _raises(tmp_path, d, "label", sample="v1", field="label")


def test_label_out_of_range_of_class_names(tmp_path):
    d = _good()
    d["class_names"] = ["a", "b"]  # labels go up to 2
    _raises(tmp_path, d, "out of range", sample="v2", field="label")


def test_one_based_labels_converted_or_refused(tmp_path):
    d = _good()
    for a in d["annotations"]:
        a["label"] += 1  # 1..3, no 0
    p = _write(tmp_path, d)
    assert [a["label"] for a in load_pyskl(p)["annotations"]] == [0, 1, 2, 0]
    d["annotations"][0]["label"] = 0  # now a 0 among them, but the caller insists on 1-based
    with pytest.raises(DataError, match="1-based"):
        load_pyskl(_write(tmp_path, d), label_base=1)


def test_split_naming_unknown_ids(tmp_path):
    d = _good()
    d["split"]["xsub_val"] = ["v3", "ghost_clip"]
    err = _raises(tmp_path, d, "xsub_val.*ghost_clip", field="split")
    assert "1 frame_dir" in str(err)


def test_duplicate_frame_dir(tmp_path):
    d = _good()
    d["annotations"][3]["frame_dir"] = "v1"
    _raises(tmp_path, d, "more than one", sample="v1")


def test_truncated_and_garbage_pickles(tmp_path):
    blob = pickle.dumps(_good(), protocol=4)
    for name, data in [("trunc.pkl", blob[: len(blob) // 2]), ("empty.pkl", b""),
                       ("text.pkl", b"split,annotations\n1,2\n")]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(DataError, match="truncated, corrupt or not a pickle") as e:
            load_pyskl(p)
        assert name in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file") as e:
        load_pyskl(tmp_path / "nope.pkl")
    assert "nope.pkl" in str(e.value)


# -- hostile pickles -------------------------------------------------------------------------
class _Payload:
    """Pickles as a call ``func(*args)``: what a hostile file would contain."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _hostile(marker):
    cmd = f"touch {marker}"
    return [
        ("posix.system" if os.name == "posix" else "system", _Payload(os.system, (cmd,))),
        ("subprocess.call", _Payload(subprocess.call, (["touch", str(marker)],))),
        ("builtins.eval", _Payload(eval, (f"open({str(marker)!r}, 'w')",))),
        ("builtins.exec", _Payload(exec, (f"open({str(marker)!r}, 'w')",))),
        ("functools.partial", _Payload(functools.partial(os.system, cmd), ())),
        ("builtins.__import__", _Payload(__import__, ("os",))),
    ]


def test_hostile_payload_is_live(tmp_path):
    """Control: plain pickle.loads really runs the payload, so the refusal tests below mean something."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_Payload(os.system, (f"touch {marker}",))))
    assert marker.exists()


@pytest.mark.parametrize("where", ["top", "annotation", "keypoint"])
@pytest.mark.parametrize("index", range(6))
def test_malicious_pickle_refused_and_nothing_runs(tmp_path, where, index):
    marker = tmp_path / "pwned"
    name, payload = _hostile(marker)[index]
    d = _good()
    if where == "top":
        obj = payload
    elif where == "annotation":
        d["annotations"][2]["extra"] = payload
        obj = d
    else:
        d["annotations"][0]["keypoint"] = payload
        obj = d
    p = _write(tmp_path, obj, "evil.pkl")
    with pytest.raises(DataError, match="refused to load: the pickle asks for") as e:
        load_pyskl(p, validate=False)  # refusal happens while unpickling, before any validation
    assert name.split(".")[-1] in str(e.value) and "evil.pkl" in str(e.value)
    assert not marker.exists()


def test_numpy_object_array_cannot_smuggle_a_call(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(1, dtype=object)
    arr[0] = _Payload(os.system, (f"touch {marker}",))
    d = _good()
    d["annotations"][0]["keypoint_score"] = arr
    with pytest.raises(DataError, match="refused"):
        load_pyskl(_write(tmp_path, d))
    assert not marker.exists()


def test_save_refuses_object_arrays(tmp_path):
    d = _good()
    d["annotations"][0]["extra"] = np.array([None, 1], dtype=object)
    with pytest.raises(DataError, match="dtype object"):
        save_pyskl(d, tmp_path / "x.pkl")
    with pytest.raises(DataError, match="dict"):
        validate_pyskl({"split": {}, "annotations": [[1, 2]]})
