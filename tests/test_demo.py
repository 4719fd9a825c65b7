# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""The README's demonstration command, at its default size (about 5 s)."""

import pytest

from pyro_expfam.demo import main


def test_demo_recovers_planted_bars_and_saves_figure(tmp_path, capsys):
    figure = tmp_path / "demo.png"
    accuracy = main(["--no-progress", "--figure", str(figure)])
    # the finite model recovers >= 95% of the 2000 membership entries (96.5% measured; the ceiling
    # for this data, given pixel noise, is about 96.5%)
    assert accuracy >= 0.95
    out = capsys.readouterr().out
    assert "membership accuracy" in out and "truth vs learned" in out
    assert figure.stat().st_size > 10_000
    with open(figure, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_demo_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        main(["--steps", "0"])
    with pytest.raises(SystemExit):
        main(["--prior", "nonsense"])


def test_demo_labels_a_progress_bar_per_initialisation_and_reports_the_kept_run(capsys):
    main(["--points", "60", "--clusters", "3", "--steps", "4", "--no-figure"])
    captured = capsys.readouterr()
    assert "init 1/2" in captured.err and "init 2/2" in captured.err
    # both runs stop at --steps, so the report's step count is the one of either bar
    assert "the best of 2 initialisations: 4 SVI steps" in captured.out
