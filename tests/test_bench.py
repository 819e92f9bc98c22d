"""``python -m hetskel.bench``: the quick run end to end (one subprocess, shared by the tests), the
JSON's keys and sanity of its values, the Markdown table, and the baseline comparison."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hetskel.bench import performance as bench
from hetskel.bench.report import compare, evaluate_targets
from hetskel.io import save_json, shared_data_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run([sys.executable, "-m", "hetskel.bench", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(out.read_text()), proc.stdout


def test_quick_run_keys_and_values(quick):
    _, res, _ = quick
    assert res["mode"] == "quick" and res["command"].startswith("python -m hetskel.bench --quick")
    # the paper preset's fused encoder at 30 joints, and the 25-joint (UmURL) configuration <= 2.54G
    assert res["gflops_fused_paper"] == pytest.approx(2.774, rel=0.01)
    assert res["gflops_fused_paper_25j"] == pytest.approx(2.536, rel=0.005)
    assert res["gflops_three_streams_paper_25j"] == pytest.approx(5.22, rel=0.01)
    assert len(res["flops_table"]) == 8  # 7 modality subsets + the three single streams
    assert res["synth_samples_per_s"] > 0 and res["synth"]["samples"] == 1000
    t = res["train_cpu"]
    assert res["train_samples_per_s_cpu"] > 0 and t["preset"] == "small" and t["steps"] >= 2
    assert res["train_samples_per_s_cpu"] == pytest.approx(t["batch_size"] / t["step_s_median"])
    # a Pretrainer step counted by the FLOP counter: K+1 = 4 streams of the small encoder plus the
    # processor (lifter) on 4 views; forward+backward is about 3x forward
    assert 0.2 < t["fwd_gflops_per_sample"] < 5
    assert 0 < t["fwd_processor_fraction"] < 1 and 0 < t["data_fraction"] < 1
    assert 2 < t["fwd_bwd_gflops_per_sample_counted"] / t["fwd_gflops_per_sample"] < 4
    one = res["train_cpu_1thread"]
    assert one["samples_per_s"] > 0 and one["samples_per_cpu_s"] > 0
    a = res["augment"]
    assert a["batched_samples_per_s"] > 0 and a["loop_samples_per_s"] > 0
    m = res["machine"]
    assert m["cores"] >= 1 and m["torch"] and m["torch_threads"] >= 1 and "cpu" in m
    ntu = res["ntu_parse_speedup"]
    if (shared_data_dir() or Path("/nonexistent")).joinpath("ntu_raw_sample").is_dir():
        assert ntu["files"] >= 1 and ntu["files_per_s"] > 0 and ntu["files_per_s_baseline"] > 0
        assert ntu["speedup"] > 1
    else:
        assert "skipped" in ntu
    if "skipped" in res["train_gpu"]:
        assert res.get("train_samples_per_s_gpu") is None
    else:
        assert res["train_samples_per_s_gpu"] > 0 and 0 < res["mfu_gpu"] < 1
    status = {r["target"]: r["status"] for r in res["targets"]}
    assert status["fused J+C+S GFLOPs, paper preset, 30 joints"] == "pass"
    assert status["pretraining samples/s, small preset, CPU"] == "recorded"
    p = res["train_cpu_paper"]
    assert set(p["rows"]) == {"J+M+B", "J+C+S"} and p["rows"]["J+C+S"]["per_clip"]
    assert res["jcs_vs_jmb_cpu_paper"] == pytest.approx(p["ratio"]) and p["ratio"] > 0
    # the paper preset's default lifter (width 512, 4 layers) on 2 persons x 64 frames, once per clip
    assert p["lifter_width"] == 512 and p["lifter_gflops_per_sample"] == pytest.approx(0.1473, rel=0.01)
    assert p["encoder_gflops_per_sample"] == pytest.approx(2.774, rel=0.01)


def test_markdown_written_and_printed(quick):
    path, _, stdout = quick
    md = path.with_suffix(".md").read_text()
    assert "| target | value | goal | status |" in md and "| gflops_fused_paper | 2.774 |" in md
    assert "| 3 single streams | J+C+S |" in md
    assert md.strip() in stdout


def test_baseline_flags_a_20_percent_drop(quick, tmp_path, capsys):
    path, res, _ = quick
    rate = res["train_samples_per_s_cpu"]
    slow = tmp_path / "faster_baseline.json"
    save_json(slow, {**res, "train_samples_per_s_cpu": rate / 0.8})   # now is 20% below it
    out = tmp_path / "cmp.json"
    code = bench.main(["--results", str(path), "--baseline", str(slow), "--out", str(out), "--fail-on-regression"])
    assert code == 1
    cmp = json.loads(out.read_text())
    row = next(r for r in cmp["regressions"] if r["metric"] == "train_samples_per_s_cpu")
    assert row["regressed"] and row["change"] == pytest.approx(-0.2)
    assert not any(r["regressed"] for r in cmp["regressions"] if r["metric"] != "train_samples_per_s_cpu")
    assert "train_cpu_1thread.samples_per_cpu_s" in {r["metric"] for r in cmp["regressions"]}
    assert "fail (regressed)" in {t["status"] for t in cmp["targets"]}
    assert "REGRESSION" in out.with_suffix(".md").read_text()
    assert "train_samples_per_s_cpu" in capsys.readouterr().err
    # a 5% drop is within the tolerance
    ok = tmp_path / "close_baseline.json"
    save_json(ok, {**res, "train_samples_per_s_cpu": rate / 0.95})
    assert bench.main(["--results", str(path), "--baseline", str(ok), "--fail-on-regression"]) == 0


def test_compare_and_targets_on_plain_dicts():
    old = {"train_samples_per_s_cpu": 100.0, "synth_samples_per_s": 50.0,
           "ntu_parse_speedup": {"files_per_s": 300.0}, "augment": {"batched_samples_per_s": 10.0}}
    new = {"train_samples_per_s_cpu": 89.0, "synth_samples_per_s": 60.0,
           "ntu_parse_speedup": {"skipped": "absent"}, "augment": {"batched_samples_per_s": 9.5}}
    rows = {r["metric"]: r for r in compare(new, old)}
    assert rows["train_samples_per_s_cpu"]["regressed"] and not rows["synth_samples_per_s"]["regressed"]
    assert not rows["augment.batched_samples_per_s"]["regressed"]
    assert "ntu_parse_speedup.files_per_s" not in rows and "train_samples_per_s_gpu" not in rows
    # quick and full runs use other batch sizes: compared, never flagged
    rows = compare({**new, "mode": "quick"}, {**old, "mode": "full"})
    assert rows and all(r["regressed"] is None for r in rows)
    t = {r["target"]: r["status"] for r in evaluate_targets(
        {"gflops_fused_paper": 2.9, "gflops_fused_paper_25j": 2.536, "ntu_parse_speedup": {"skipped": "absent"},
         "train_samples_per_s_gpu": 6000.0, "train_gpu": {"gpu": "NVIDIA A100-SXM4-80GB"}})}
    assert t["fused J+C+S GFLOPs, paper preset, 30 joints"] == "fail"
    assert t["fused J+C+S GFLOPs, 25 joints (UmURL setting)"] == "pass"
    assert t["NTU reader speedup vs line-by-line"] == "skipped: absent"
    assert t["pretraining samples/s, paper preset, H200 bf16"].startswith("n/a")
    assert t["pretraining samples/s, small preset, CPU"] == "skipped"


def test_gpu_check_smoke_runs_on_cpu(tmp_path):
    """``--gpu-check --smoke``: the prepared GPU check end to end, tiny, on whatever device is here."""
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "hetskel.bench", "--gpu-check", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["smoke"] and res["batch_size"] == 4 and res["epochs"] == 451
    runs = {(r["model"], r["compile"]): r for r in res["runs"]}
    assert set(runs) == {(m, c) for m in ("J+C+S", "J+M+B") for c in (False, True)}
    for r in runs.values():
        assert r["samples_per_s"] > 0 and 0 < r["data_fraction"] and r["projected_wall_h"] > 0
    assert runs[("J+C+S", False)]["train_gflops_per_sample"] > runs[("J+M+B", False)]["train_gflops_per_sample"]


def test_profile_lists_the_top_operators_of_a_step(capsys):
    assert bench.main(["--profile", "J+C+S", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "J+C+S step at the small preset, batch 4" in out and "| operator | self CPU ms / step |" in out
    res = bench.profile_step("small", batch_size=2, steps=1, lifter_width=16, row_limit=5, model="J+M+B")
    assert len(res["rows"]) == 5 and res["step_ms"] > 0
    shares = [r["share"] for r in res["rows"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1
    assert any(r["op"].startswith("aten::") for r in res["rows"])
