"""The report (figures and the comparison table with its aggregates) on synthetic results directories."""
import numpy as np
import pytest

from common.reporting.figures import plot_summary
from common.reporting.report import make_report
from common.reporting.results import collect
from common.reporting.scores import RANDOM_SCORES, beats, behavior_normalized, iqm, random_score
from common.reporting.table import summarize


def write_results(directory, env, seeds, bcq, sqv, behavioral, buffer):
    for k, seed in enumerate(seeds):
        np.save(directory / f"BCQ_{env}_{seed}.npy", np.array([bcq[k] / 2, bcq[k]]))
        np.save(directory / f"SQV_{env}_{seed}.npy", np.array([sqv[k] / 2, sqv[k]]))
        np.save(directory / f"behavioral_{env}_{seed}.npy", np.array([0.0, behavioral[k]]))
        np.save(directory / f"buffer_returns_{env}_{seed}.npy", np.array(buffer[k]))


def test_report_files_and_table_numbers(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_results(results, "CartPole-v1", [0, 1, 2], [100, 200, 300], [150, 250, 350], [500, 500, 400],
                  [[10, 20], [30, 40], [50, 60]])
    write_results(results, "PongNoFrameskip-v4", [0, 1], [-10, 0], [-5, 5], [20, 20], [[1], [3]])  # seed 2 missing
    write_results(results, "MinAtar_Breakout-v1", [0, 1, 2], [10, 10, 10], [5, 5, 5], [12, 12, 12], [[1], [1], [1]])
    report = make_report(str(results), str(tmp_path / "plots"))
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["CartPole-v1.png", "MinAtar_Breakout-v1.png", "PongNoFrameskip-v4.png", "aggregate.png",
                     "curves.png", "summary.png", "table.md"]
    assert all((tmp_path / "plots" / n).stat().st_size > 5000 for n in names if n.endswith(".png"))
    rows = {r["env"]: r for r in report["rows"]}
    cart = rows["CartPole-v1"]
    assert cart["BCQ"] == pytest.approx((200.0, 100.0, 3))  # the sample std (ddof=1)
    assert cart["buffer"] == pytest.approx((35.0, 20.0, 3))  # per-seed means first
    assert cart["vs_BCQ"]["SQV"] == pytest.approx((250 - 200) / 200)
    pong = rows["PongNoFrameskip-v4"]
    assert pong["SQV"][2] == 2 and pong["vs_BCQ"]["SQV"] == pytest.approx((0 - -5) / 5)
    assert rows["MinAtar_Breakout-v1"]["vs_BCQ"]["SQV"] == pytest.approx(-0.5)
    table = (tmp_path / "plots" / "table.md").read_text()
    assert "| env | behavioral | buffer | BCQ | SQV | SQV vs BCQ |" in table
    assert "| CartPole-v1 | 466.7 ± 57.7 (3) | 35.0 ± 20.0 (3) | 200.0 ± 100.0 (3) | 250.0 ± 100.0 (3) | +25.0% |" in table
    assert "Over 1 env: Atari games" in table  # Pong is an Atari game with published scores


def test_iqm_uses_games_both_algorithms_have_and_empty_buffers_are_skipped(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_results(results, "PongNoFrameskip-v4", [0, 1], [-10, 0], [-5, 5], [20, 20], [[1], []])  # seed 1: no episode
    np.save(results / "BCQ_BreakoutNoFrameskip-v4_0.npy", np.array([5.0]))  # BCQ only: left out of the IQM
    report = make_report(str(results), str(tmp_path / "plots"))
    assert "Over 1 env:" in report["markdown"] and "(the first 2 seeds of each env)" in report["markdown"]
    pong = {r["env"]: r for r in report["rows"]}["PongNoFrameskip-v4"]
    assert pong["buffer"][::2] == (1.0, 1) and np.isnan(pong["buffer"][1])  # one seed: no sample std
    assert "nan" not in report["markdown"]


def test_aug_runs_get_their_own_column_and_curve(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_results(results, "CartPole-v1", [0, 1], [100, 200], [150, 250], [500, 500], [[10], [30]])
    for seed, value in ((0, 120.0), (1, 180.0)):
        np.save(results / f"BCQaug_CartPole-v1_{seed}.npy", np.array([value / 2, value]))
    report = make_report(str(results), str(tmp_path / "plots"))
    assert report["rows"][0]["BCQaug"] == pytest.approx((150.0, np.sqrt(1800), 2))
    table = (tmp_path / "plots" / "table.md").read_text()
    assert "| env | behavioral | buffer | BCQ | BCQ+aug | SQV | BCQ+aug vs BCQ | SQV vs BCQ |" in table
    assert "| 150.0 ± 70.7 (2) | 150.0 ± 42.4 (2) | 200.0 ± 70.7 (2) | +0.0% | +33.3% |" in table
    assert "- BCQ+aug: " in table  # in the behavior-normalized IQM
    assert "- P(SQV > BCQ) = 0.75" in table and "- P(BCQ+aug > BCQ) = 0.50" in table  # 150, 250 and 120, 180 vs 100, 200
    # paired by seed (the same buffer), behavior-normalized by 500 − 22.54: SQV − BCQ+aug = 30 and 70
    scale = 500 - RANDOM_SCORES["CartPole-v1"][0]
    assert report["paired"]["other"][("SQV", "BCQaug")][0] == pytest.approx(50 / scale)
    assert report["paired"]["other"][("SQV", "BCQaug")][3] == 2 and "- SQV − BCQ+aug: +0.105 [" in table


def test_behavior_normalized_iqm_by_hand(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    random, behavioral = RANDOM_SCORES["CartPole-v1"][0], 222.54  # behavioral − random = 200
    write_results(results, "CartPole-v1", [0, 1], [22.54, 122.54], [222.54, 322.54], [behavioral] * 2, [[1], [2]])
    write_results(results, "MinAtar_Breakout-v1", [0, 1], [1.31, 2.31], [0.31, 0.31], [2.31, 2.31], [[1], [1]])
    write_results(results, "MinAtar_Asterix-v1", [0, 1], [9.0, 9.0], [9.0, 9.0], [0.5, 0.5], [[1], [1]])
    report = make_report(str(results), str(tmp_path / "plots"))
    bcq = report["iqm"]["other"]["BCQ"]
    # CartPole 0, 0.5 and Breakout 0.5, 1: Asterix's agent (0.5) is below random play (0.59), left out.
    assert bcq[3:] == (2, 2) and bcq[0] == pytest.approx(iqm([0.0, 0.5, 0.5, 1.0]))
    assert report["iqm"]["other"]["SQV"][0] == pytest.approx(iqm([1.0, 1.5, 0.0, 0.0]))
    assert "Atari" not in report["iqm"]
    assert behavior_normalized(random, random, behavioral) == 0.0
    assert random_score("MinAtar_Seaquest-v1") == random_score("MinAtar/Seaquest-v1") == (0.10, 0.033)
    assert random_score("Pendulum-v1") is None
    # within noise of random play: 0.7 ± 0.1 over 3 seeds against 0.59 ± 0.11 (Asterix's random play)
    assert not beats([0.6, 0.7, 0.8], (0.59, 0.11)) and beats([1.6, 1.7, 1.8], (0.59, 0.11))


def test_final_scores_can_average_the_last_evaluations(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for seed, curve in ((0, [0.0, 10.0, 20.0, 30.0]), (1, [0.0, 0.0, 40.0, 50.0])):
        np.save(results / f"BCQ_CartPole-v1_{seed}.npy", np.array(curve))
        np.save(results / f"SQV_CartPole-v1_{seed}.npy", np.array(curve) * 2)
    report = make_report(str(results), str(tmp_path / "plots"), last=2)
    row = report["rows"][0]
    assert row["BCQ"] == pytest.approx((35.0, np.sqrt(200), 2))  # seeds: (20 + 30) / 2 and (40 + 50) / 2
    assert row["SQV"][0] == pytest.approx(70.0)
    assert "mean of its last 2 evaluations" in report["markdown"]


def test_summary_shows_an_env_that_has_only_the_aug_control(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_results(results, "CartPole-v1", [0, 1], [100, 200], [150, 250], [500, 500], [[1], [1]])
    for seed in (0, 1):  # BCQ and BCQ+aug, no SQV
        np.save(results / f"BCQ_Acrobot-v1_{seed}.npy", np.array([-300.0, -200.0]))
        np.save(results / f"BCQaug_Acrobot-v1_{seed}.npy", np.array([-300.0, -100.0]))
    rows = summarize(collect(str(results)), 1)
    acrobot = next(r for r in rows if r["env"] == "Acrobot-v1")
    assert acrobot["vs_BCQ"] == {"BCQaug": pytest.approx(0.5)}
    assert plot_summary(rows, str(tmp_path / "summary.png")) == ["Acrobot-v1", "CartPole-v1"]
    assert (tmp_path / "summary.png").stat().st_size > 5000


def test_paired_differences_by_env_in_raw_scores(tmp_path):
    """Beside the pooled normalized difference, each env's own mean X − Y over its seeds, in raw scores."""
    results = tmp_path / "results"
    results.mkdir()
    write_results(results, "CartPole-v1", [0, 1, 2], [100, 200, 300], [150, 230, 340], [500] * 3, [[10]] * 3)
    write_results(results, "Acrobot-v1", [0, 1], [-200, -150], [-180, -150], [-80, -80], [[-300]] * 2)
    report = make_report(str(results), str(tmp_path / "plots"))
    by_env = report["paired_by_env"]["other"][("SQV", "BCQ")]
    mean, low, high, n = by_env["CartPole-v1"]  # 50, 30, 40: mean 40, sd 10, t(2) = 4.303
    assert (mean, n) == (pytest.approx(40.0), 3) and high - mean == pytest.approx(4.303 * 10 / np.sqrt(3), rel=1e-3)
    assert by_env["Acrobot-v1"][0] == pytest.approx(10.0) and by_env["Acrobot-v1"][3] == 2
    table = (tmp_path / "plots" / "table.md").read_text()
    assert "- SQV − BCQ: Acrobot-v1 +10.00 [" in table and "; CartPole-v1 +40.00 [+15.16, +64.84]" in table
