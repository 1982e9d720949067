"""`aid curves`: running means of a run's log.jsonl, a PNG per call, clear errors on folders without a log."""
import json
import math

import pytest
from PIL import Image

from aid import cli
from aid.guidance.curves import run_names, running_means


def write_log(run_dir, lines):
    run_dir.mkdir(parents=True)
    (run_dir / "log.jsonl").write_text("".join(json.dumps(q) + "\n" for q in lines))


LINES = [  # a run resumed after iteration 20: its clock restarted at 0
    {"iter": 10, "cost": 4.0, "td_abs": 1.0, "seconds": 20.0},
    {"iter": 20, "cost": 2.0, "td_abs": 3.0, "seconds": 60.0},
    {"iter": 30, "cost": 6.0, "td_abs": 5.0, "seconds": 10.0},
    {"iter": 40, "cost": 0.0, "td_abs": 7.0, "seconds": 40.0},
]


def test_running_means_over_the_window_and_a_restarted_clock():
    r = running_means(LINES, window=2)
    assert [q["iter"] for q in r] == [10, 20, 30, 40]
    assert [q["cost"] for q in r] == [4.0, 3.0, 4.0, 3.0]
    assert [q["td_abs"] for q in r] == [1.0, 2.0, 4.0, 6.0]
    # seconds per iteration: (20 + 40) / 20 over lines 1–2; line 3's clock went back, so line 3 alone has no time
    assert r[1]["sec_per_iter"] == pytest.approx(3.0)
    assert r[2]["sec_per_iter"] == pytest.approx(4.0)  # line 2 only: 40 s / 10
    assert r[3]["sec_per_iter"] == pytest.approx(3.0)  # line 4 only: 30 s / 10
    assert running_means(LINES[:1], window=1)[0]["sec_per_iter"] == pytest.approx(2.0)  # 20 s since the start / 10
    assert math.isnan(running_means(LINES[:3], window=1)[2]["sec_per_iter"])  # the clock went back: no time


def test_run_names_keep_two_parts_only_where_folder_names_clash():
    assert run_names(["a/run1", "b/run2"]) == ["run1", "run2"]
    assert run_names(["a/s0", "b/s0/"]) == ["a/s0", "b/s0"]


def test_aid_curves_writes_a_png_and_names_a_folder_without_a_log(tmp_path, capsys):
    write_log(tmp_path / "r0", LINES)
    write_log(tmp_path / "r1", LINES[:2])
    out = tmp_path / "curves.png"
    assert cli.main(["curves", str(tmp_path / "r0"), str(tmp_path / "r1"), "--out", str(out)]) == 0
    w, h = Image.open(out).size
    assert w > 200 and h > 200
    assert cli.main(["curves", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "has no log.jsonl" in capsys.readouterr().err
    write_log(tmp_path / "empty", [])
    assert cli.main(["curves", str(tmp_path / "empty"), "--out", str(out)]) == 1
    assert "is empty" in capsys.readouterr().err
    assert cli.main(["curves", str(tmp_path / "r0"), "--out", str(out), "--window", "0"]) == 1
    assert "--window must be >= 1" in capsys.readouterr().err


def test_a_denoising_runs_loss_gets_its_own_row_and_the_actor_critics_rows_stay(tmp_path):
    warm = [{"iter": 10, "denoise_loss": 3.0, "seconds": 5.0}, {"iter": 20, "denoise_loss": 1.0, "seconds": 9.0}]
    r = running_means(warm, window=2)
    assert [q["denoise_loss"] for q in r] == [3.0, 2.0] and math.isnan(r[1]["cost"]) and math.isnan(r[1]["td_abs"])
    assert math.isnan(running_means(LINES, window=2)[0]["denoise_loss"])
    write_log(tmp_path / "warm", warm)
    write_log(tmp_path / "ac", LINES)
    heights = {}
    for runs in (["warm"], ["ac"], ["warm", "ac"]):  # rows: loss + time; cost + |δ| + time; all four
        out = tmp_path / f"{'_'.join(runs)}.png"
        assert cli.main(["curves", *(str(tmp_path / d) for d in runs), "--out", str(out)]) == 0
        heights[len(runs), runs[0]] = Image.open(out).size[1]
    assert heights[1, "warm"] < heights[1, "ac"] < heights[2, "warm"]
