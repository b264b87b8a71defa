"""plot.py --against: two results folders of the same settings compared run for run (common/reporting/compare.py)."""
import numpy as np
import pytest
from scipy import stats

import plot
from common.errors import UserError
from common.reporting.compare import compare


def write(folder, name, values):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / name, np.asarray(values, dtype=float))


@pytest.fixture
def folders(tmp_path):
    """A (with the behavioral agent's results) and B: BCQ on CartPole seeds 0-2 in both, SQV seed 0 only in A,
    MinAtar Breakout only in B."""
    a, b = tmp_path / "a", tmp_path / "b"
    for seed, (x, y) in enumerate([(100.0, 90.0), (200.0, 230.0), (300.0, 250.0)]):
        write(a, f"BCQ_CartPole-v1_{seed}.npy", [0.0, 50.0, x])  # --last 1: only the final evaluation counts
        write(b, f"BCQ_CartPole-v1_{seed}.npy", [999.0, 7.0, y])
        write(a, f"behavioral_CartPole-v1_{seed}.npy", [400.0 + seed, 420.0 + seed])
    write(a, "SQV_CartPole-v1_0.npy", [5.0])
    write(b, "BCQ_MinAtar_Breakout-v1_0.npy", [3.0])
    return a, b


def test_paired_differences_by_hand(folders):
    a, b = folders
    result = compare(str(a), str(b))
    assert len(result["rows"]) == 1  # SQV and Breakout have no partner
    row = result["rows"][0]
    assert (row["env"], row["algo"], row["seeds"], row["a"], row["b"]) == ("CartPole-v1", "BCQ", [0, 1, 2], 200.0,
                                                                           190.0)
    d = np.array([10.0, -30.0, 50.0])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(row["difference"], (10.0, 10.0 - half, 10.0 + half, 3))
    # pooled, behavior-normalized: the differences over (behavioral mean − random), the random score cancelling
    scale = np.mean([420.0, 421.0, 422.0]) - 22.54
    np.testing.assert_allclose(result["pooled"]["BCQ"], (10.0 / scale, (10.0 - half) / scale,
                                                         (10.0 + half) / scale, 3))


def test_last_averages_the_final_evaluations(folders):
    a, b = folders
    row = compare(str(a), str(b), last=2)["rows"][0]
    # A's seeds: mean of (50, x); B's: mean of (7, y)
    expected = np.mean([(50 + 100) / 2 - (7 + 90) / 2, (50 + 200) / 2 - (7 + 230) / 2, (50 + 300) / 2 - (7 + 250) / 2])
    assert row["difference"][0] == pytest.approx(expected)


def test_plot_against_prints_and_writes_the_table(folders, tmp_path, capsys):
    a, b = folders
    assert plot.main(["--results_dir", str(a), "--against", str(b), "--out_dir", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "| CartPole-v1 | BCQ | 0,1,2 | 200.00 | 190.00 | +10.000 [" in out
    assert out.rstrip().endswith(str(tmp_path / "plots" / "against.md"))
    assert (tmp_path / "plots" / "against.md").read_text().startswith(f"A = {a}, B = {b}")


def test_folders_without_a_common_run_are_one_line_errors(folders, tmp_path, capsys):
    a, _ = folders
    other = tmp_path / "other"
    write(other, "BCQ_Acrobot-v1_0.npy", [1.0])
    with pytest.raises(UserError, match="no arm, env and seed in common"):
        compare(str(a), str(other))
    for argv, message in (([str(a), str(other)], "error: "), ([str(a), str(tmp_path / "none")],
                                                               f"error: no results directory {tmp_path / 'none'}")):
        assert plot.main(["--results_dir", argv[0], "--against", argv[1], "--out_dir", str(tmp_path / "p")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "p" / "against.md").exists()


def test_runs_of_unequal_length_are_left_out_and_named(folders):
    a, b = folders
    write(b, "BCQ_CartPole-v1_1.npy", [1.0])  # B's seed 1: one evaluation of three (a run still going)
    result = compare(str(a), str(b))
    assert result["rows"][0]["seeds"] == [0, 2]
    assert result["unequal"] == ["CartPole-v1 BCQ seed 1 (3 evaluations in A, 1 in B)"]
