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
