"""plot.py, the command: the table and the paths it prints, and its one-line errors (the report itself:
tests/reporting/test_report.py; its statistics: tests/reporting/test_scores.py)."""
import numpy as np

import plot


def test_prints_the_table_then_every_file_it_wrote(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for seed in (0, 1):
        np.save(results / f"BCQ_CartPole-v1_{seed}.npy", np.array([1.0, 2.0 + seed]))
        np.save(results / f"SQV_CartPole-v1_{seed}.npy", np.array([1.0, 3.0 + seed]))
    assert plot.main(["--results_dir", str(results), "--out_dir", str(tmp_path / "plots"), "--last", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| env | behavioral | buffer | BCQ | SQV | SQV vs BCQ |"
    assert out[-2:] == [str(tmp_path / "plots" / "summary.png"), str(tmp_path / "plots" / "table.md")]
    assert "\n".join(out).startswith((tmp_path / "plots" / "table.md").read_text().rstrip("\n"))


def test_arguments_that_cannot_make_a_report_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for argv, message in ((["--last", "0"], "error: --last must be at least 1, not 0"),
                          (["--results_dir", str(tmp_path / "none")], f"error: no results directory {tmp_path / 'none'}"),
                          (["--results_dir", str(tmp_path), "--out_dir", str(tmp_path / "file" / "plots")],
                           f"error: --out_dir {tmp_path / 'file' / 'plots'}: {tmp_path / 'file'} is a file"),
                          (["--results_dir", str(tmp_path), "--out_dir", str(tmp_path / "plots")],
                           "error: no results files (BCQ_*, SQV_*, behavioral_*) in")):
        assert plot.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err
