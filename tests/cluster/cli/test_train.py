"""`ssz train plates`: bad input is a clear error before any work (the real training never runs in tests; the smoke
run is tests/serve/test_plate_model.py)."""

from __future__ import annotations

from typer.testing import CliRunner

from cluster.cli import app


def test_train_plates_refuses_init_weights_that_are_not_a_recogniser(tmp_path):
    bogus = tmp_path / "not-weights.pt"
    bogus.write_bytes(b"hello")
    res = CliRunner().invoke(app, ["train", "plates", "--init", str(bogus), "--samples", "8", "--steps", "1",
                                   "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "w.pt")])
    assert res.exit_code == 2, res.output
    assert "not-weights.pt" in res.output and "ssz train plates" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()  # failed before rendering


def test_train_plates_help_lists_the_options():
    res = CliRunner().invoke(app, ["train", "plates", "--help"])
    assert res.exit_code == 0
    for opt in ("--seed", "--samples", "--steps", "--batch", "--lr", "--warmup", "--easy-fraction", "--init", "--out",
                "--cache"):
        assert opt in res.output, opt
