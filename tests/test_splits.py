"""The validation split carved from the training subjects (PretrainSpec(validation=...))."""
import pytest

from hetskel.data.errors import DataError
from hetskel.data.splits import carve_by, carve_validation, subject_of


def _data(subjects, per_subject=3, ntu_names=False):
    anns, train = [], []
    for s in subjects:
        for k in range(per_subject):
            fd = f"S001C001P{s:03d}R001A{k + 1:03d}" if ntu_names else f"clip_{s}_{k}"
            a = {"frame_dir": fd}
            if not ntu_names:
                a["subject"] = s
            anns.append(a)
            train.append(fd)
    return {"xsub_train": train, "xsub_val": ["other"]}, anns


@pytest.mark.parametrize("ntu_names", [False, True])
def test_carves_whole_subjects_disjoint_and_complete(ntu_names):
    splits, anns = _data(range(1, 11), ntu_names=ntu_names)
    out = carve_validation(splits, anns, "xsub_train", 0.3, seed=1)
    fit, val = out["xsub_train_fit"], out["xsub_train_validation"]
    assert sorted(fit + val) == sorted(splits["xsub_train"]) and not set(fit) & set(val)
    subj = {a["frame_dir"]: subject_of(a) for a in anns}
    assert len({subj[f] for f in val}) == 3                       # 30% of 10 subjects
    assert not {subj[f] for f in val} & {subj[f] for f in fit}    # nobody on both sides
    assert out["xsub_val"] == ["other"] and splits["xsub_train"] == out["xsub_train"]  # test split untouched
    assert carve_by(anns, splits["xsub_train"]) == "subject"
    assert out == carve_validation(splits, anns, "xsub_train", 0.3, seed=1)   # deterministic
    assert out != carve_validation(splits, anns, "xsub_train", 0.3, seed=2)


def test_without_subjects_it_carves_clips_and_never_takes_everything():
    splits = {"train": [f"c{i}" for i in range(10)]}
    anns = [{"frame_dir": f"c{i}"} for i in range(10)]
    assert carve_by(anns, splits["train"]) == "clip"
    out = carve_validation(splits, anns, "train", 0.2)
    assert len(out["train_validation"]) == 2 and len(out["train_fit"]) == 8
    one_subject = [{"frame_dir": f"c{i}", "subject": 7} for i in range(10)]
    out = carve_validation(splits, one_subject, "train", 0.99)
    assert len(out["train_fit"]) == 1      # at least one left to train on


@pytest.mark.parametrize("fraction, split, needle", [(0.0, "xsub_train", "fraction"), (1.0, "xsub_train", "fraction"),
                                                     (0.2, "nope", "has no split 'nope'")])
def test_bad_requests_are_one_clear_error(fraction, split, needle):
    splits, anns = _data(range(1, 5))
    with pytest.raises(DataError, match=needle):
        carve_validation(splits, anns, split, fraction, where="my.pkl")


def test_pretrain_spec_validation_trains_and_evaluates_on_the_carved_split():
    from hetskel.experiment.pretrain import load_data
    from hetskel.experiment.spec import PretrainSpec

    spec = PretrainSpec(num_samples=120, validation=0.25, preset="tiny", modalities="J")
    assert spec.split_names() == ("xsub_train_fit", "xsub_train_validation")
    fit, val = load_data(spec)
    train, test = load_data(PretrainSpec(num_samples=120, preset="tiny", modalities="J"))
    assert len(fit) + len(val) == len(train) and len(val) > 0
    with pytest.raises(Exception, match="validation"):
        PretrainSpec(validation=1.0).validate()
