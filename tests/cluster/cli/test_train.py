"""`ssz train plates`: bad input is a clear error before any work (the real training never runs in tests; the smoke
run is tests/serve/test_plate_model.py)."""

from __future__ import annotations

import re
from pathlib import Path

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
    for opt in ("--seed", "--samples", "--val-samples", "--steps", "--batch", "--lr", "--warmup", "--easy-fraction",
                "--hard-fraction", "--focus-letters", "--focus-fraction", "--init", "--res-blocks", "--input-size",
                "--channels", "--device", "--out",
                "--cache"):
        assert opt in res.output, opt


def test_train_plates_help_shows_the_defaults_of_the_training_config():
    from dataclasses import fields

    from serve.plate.train import TrainConfig

    res = CliRunner().invoke(app, ["train", "plates", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())  # the help box's wrapped lines as one text
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for opt in ("samples", "val_samples", "steps", "batch", "lr", "warmup", "easy_fraction", "hard_fraction",
                "focus_fraction", "workers", "threads"):
        assert f"[default: {defaults[opt]}]" in text, (opt, text)
    assert "[default: random initialisation]" in text and "[default: $SSZ_HOME/train/plates]" in text


def _train(tmp_path, *args):
    return CliRunner().invoke(app, ["train", "plates", "--samples", "8", "--steps", "1", "--cache",
                                    str(tmp_path / "cache"), *args])


def test_train_plates_refuses_out_of_range_options_before_any_work(tmp_path):
    for opt, bad in (("--samples", "0"), ("--val-samples", "0"), ("--steps", "0"), ("--batch", "0"), ("--workers", "0"),
                     ("--threads", "0"), ("--card-n", "0"), ("--hard-fraction", "1.5"), ("--hard-fraction", "abc"),
                     ("--hard-fraction", "-0.1"), ("--focus-fraction", "1.5"), ("--focus-fraction", "-0.1"),
                     ("--lr", "0"), ("--lr", "-0.1"),
                     ("--lr", "inf"), ("--lr", "nan")):
        res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), opt, bad)
        assert res.exit_code == 2, (opt, bad, res.output)
        want = "must be a finite number above 0" if opt == "--lr" else "Invalid value"
        assert opt in res.output and want in res.output and "Traceback" not in res.output, (opt, res.output)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()


def test_train_plates_refuses_a_device_it_cannot_train_on_before_any_work(tmp_path):
    import torch

    bad = [("gpu", "is not a torch device")] + ([] if torch.cuda.is_available() else
                                                 [("cuda", "torch sees no CUDA GPU")])
    for device, said in bad:
        res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--device", device)
        assert res.exit_code == 2 and said in res.output and "Traceback" not in res.output, (device, res.output)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()


def test_train_plates_refuses_an_input_size_a_network_cannot_take_before_any_work(tmp_path):
    for bad in ("96", "95x216", "96x250", "96x240", "152x160", "abc", "96x216x3", "-96x216", "8x160"):
        res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--input-size", bad)
        assert res.exit_code == 2 and "--input-size" in res.output and "96x216" in res.output.replace("\n", ""), \
            (bad, res.output)
        assert "Traceback" not in res.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()


def test_train_plates_refuses_channels_a_training_run_cannot_take_before_any_work(tmp_path):
    for bad in ("16,24,48", "16,24,48,96,128", "12,24,48,96", "0,24,48,96", "16,24,48,264", "-16,24,48,96",
                "16.0,24,48,96", "16;24;48;96", "16x24x48x96", "a,b,c,d", "", "16,,48,96"):
        res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--channels", bad)
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and f"--channels {bad!r}" in text, (bad, res.output)
        assert "each a multiple of 8 from 8 to 256" in text and "16,24,48,96" in text, (bad, res.output)
        assert "Traceback" not in res.output and res.output.count("error:") == 1, res.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()


def test_train_plates_trains_other_channels_names_them_in_the_card_and_refuses_them_with_other_init(tmp_path):
    import json

    import numpy as np

    from serve.plate.model import Recogniser, load_net

    args = ["--val-samples", "8", "--batch", "8", "--workers", "1", "--threads", "1", "--card-n", "1"]
    res = _train(tmp_path, *args, "--out", str(tmp_path / "w.pt"), "--channels", " 16,24, 48,96")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    net, meta = load_net(tmp_path / "w.pt", expected_sha256=out["sha256"])
    assert net.config["channels"] == [16, 24, 48, 96] and meta["config"]["channels"] == (16, 24, 48, 96)
    assert len(Recogniser(tmp_path / "w.pt").recognise([np.zeros((64, 160), np.uint8)] * 2)) == 2
    card = (tmp_path / "w.MODEL_CARD.md").read_text()
    assert ", channels 16, 24, 48, 96 (--channels 16,24,48,96)" in card
    # a fine-tuning stage of those weights with other channels: one line naming both, nothing rendered or written
    res = CliRunner().invoke(app, ["train", "plates", "--samples", "8", "--steps", "1", "--cache",
                                   str(tmp_path / "cache2"), "--out", str(tmp_path / "w2.pt"), "--init",
                                   str(tmp_path / "w.pt"), "--channels", "24,32,64,96"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert (f"--channels 24,32,64,96: the --init weights {tmp_path / 'w.pt'} have channels 16,24,48,96, and a "
            "fine-tuning stage keeps its network's channels") in text, res.output
    assert not (tmp_path / "cache2").exists() and not (tmp_path / "w2.pt").exists()


def test_train_plates_refuses_an_unwritable_out_before_rendering(tmp_path):
    (tmp_path / "a-file").write_text("x")
    res = _train(tmp_path, "--out", str(tmp_path / "a-file" / "w.pt"))
    assert res.exit_code == 2, res.output
    assert "error:" in res.output and "--out" in res.output and "a-file is a file, not a folder" in res.output
    (tmp_path / "weights-dir").mkdir()
    res = _train(tmp_path, "--out", str(tmp_path / "weights-dir"))
    assert res.exit_code == 2 and "weights-dir is a folder" in res.output, res.output
    # /proc refuses new files even to root, whom os.access always lets through
    res = _train(tmp_path, "--out", "/proc/w.pt")
    assert res.exit_code == 2 and "/proc refuses new files" in res.output, res.output
    # an existing cache folder is probed itself, not its parent: / takes files, /proc does not
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--cache", "/proc")
    assert res.exit_code == 2 and "--cache" in res.output and "/proc refuses new files" in res.output, res.output
    assert not (tmp_path / "cache").exists()  # nothing rendered


def test_check_writable_refuses_a_device_a_pipe_and_a_broken_link(tmp_path):
    import os

    import pytest

    from serve.plate.train import check_writable

    # a device or a pipe would be replaced by the weights (as root: /dev/null for the whole machine)
    os.mkfifo(tmp_path / "pipe")
    for out in (Path("/dev/null"), tmp_path / "pipe"):
        with pytest.raises(OSError, match=f"^--out {re.escape(str(out))} is not a regular file"):
            check_writable(out, "--out", folder=False)
    # a link to nothing on the way: its folders cannot be made (for --out: found after the training)
    (tmp_path / "gone").symlink_to(tmp_path / "no-such-target")
    for path, folder in ((tmp_path / "gone" / "w.pt", False), (tmp_path / "gone" / "c", True),
                         (tmp_path / "gone", True)):
        broken = f"{tmp_path / 'gone'} is a link to {tmp_path / 'no-such-target'}, which does not exist"
        with pytest.raises(OSError, match=re.escape(broken)):
            check_writable(path, "--x", folder=folder)
    check_writable(tmp_path / "gone", "--out", folder=False)  # a link as --out is replaced by the file: fine
    assert (tmp_path / "pipe").is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["gone", "pipe"]


def test_train_plates_refuses_a_pipe_or_a_broken_link_before_rendering(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe")
    res = _train(tmp_path, "--out", str(tmp_path / "pipe"))
    assert res.exit_code == 2 and "--out" in res.output and "pipe is not a regular file" in res.output, res.output
    (tmp_path / "gone").symlink_to(tmp_path / "no-such-target")
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--cache", str(tmp_path / "gone" / "cache"))
    assert res.exit_code == 2 and "--cache" in res.output and "gone is a link to" in res.output, res.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()  # nothing rendered, nothing written


def test_train_plates_init_path_mistakes_name_the_path_not_the_rebuild(tmp_path):
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--init", str(tmp_path / "nope.pt"))
    assert res.exit_code == 2, res.output
    assert "nope.pt does not exist" in res.output and "models bucket" not in res.output
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--init", str(tmp_path))
    assert res.exit_code == 2 and "is a folder" in res.output and "missing" not in res.output, res.output
    assert not (tmp_path / "cache").exists()


def test_train_plates_init_refuses_a_checkpoint_holding_pickled_objects(tmp_path):
    import pathlib

    import torch

    sneaky = tmp_path / "sneaky.pt"  # loading it with weights_only=False would build any pickled object
    torch.save({"config": {}, "state_dict": {}, "meta": {"x": pathlib.PurePosixPath("x")}}, sneaky)
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--init", str(sneaky))
    assert res.exit_code == 2, res.output
    assert "sneaky.pt is not a plate recogniser checkpoint" in res.output and "UnpicklingError" in res.output
    assert not (tmp_path / "cache").exists()


def test_model_card_says_when_a_stage_has_no_curriculum():
    from serve.plate.train import _curriculum_line

    assert _curriculum_line(0.15) == "Curriculum: clean to moderate samples only for the first 15% of the steps."
    for none in (0, 0.0, None):
        line = _curriculum_line(none)
        assert line.startswith("No curriculum in this stage (a fine-tuning stage)") and "0%" not in line


def test_model_card_names_the_gpu_a_stage_trained_on():
    from serve.plate.train import _init_lines, _precision, _trained_line

    assert _precision({"bf16": True}) == _precision({"bf16": True, "device": "cpu"}) == ", bfloat16 (--bf16)"
    assert _precision({"bf16": True, "device": "cuda:0"}) == ", bfloat16 (--bf16), on a GPU (--device cuda:0)"
    assert _precision({}) == ""  # a stage whose metadata predates both options
    meta = {"config": {"seed": 1, "bf16": True, "device": "cuda:0", "threads": 2},
            "seconds": {"data": 90, "train": 200}, "cpu_seconds": {"data": 1400, "total": 1700}}
    line = _trained_line(meta)  # a GPU run's CPU time counts its waits on the GPU: no 2-core estimate from it
    assert "on the GPU machine that trained it: data 90 s, training 200 s" in line and "2 dedicated cores" not in line
    cpu = {**meta, "config": {**meta["config"], "device": "cpu"}}
    assert "this shared machine" in _trained_line(cpu) and "about 14 min of wall time on 2 dedicated cores" in \
        _trained_line(cpu)
    (stage, _) = _init_lines({**meta, "sha256": "ab" * 32})
    assert stage.endswith("200 s of training wall time on the GPU machine that trained it)")


def test_train_plates_expands_a_quoted_tilde_in_out_cache_and_init(tmp_path, monkeypatch):
    # '~/w.pt' quoted on the command line reaches the program unexpanded: it is the home folder, not a folder '~'
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "a-file").write_text("x")
    (work / "~").write_text("a file named ~ where the command runs")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--init", "~/nope.pt")
    assert res.exit_code == 2 and f"{home / 'nope.pt'} does not exist" in res.output, res.output
    res = _train(tmp_path, "--out", "~/a-file/w.pt")
    assert res.exit_code == 2 and "--out" in res.output, res.output
    assert f"{home / 'a-file'} is a file, not a folder" in res.output, res.output
    res = CliRunner().invoke(app, ["train", "plates", "--samples", "8", "--steps", "1", "--out", str(tmp_path / "w.pt"),
                                   "--cache", "~/a-file/cache"])
    assert res.exit_code == 2 and "--cache" in res.output, res.output
    assert f"{home / 'a-file'} is a file, not a folder" in res.output, res.output
    assert [p.name for p in work.iterdir()] == ["~"] and (work / "~").is_file()  # no folder '~' made
    assert sorted(p.name for p in home.iterdir()) == ["a-file"] and not (tmp_path / "cache").exists()


def test_check_writable_refuses_what_the_save_writes_beside_the_weights(tmp_path):
    import os

    import pytest

    from serve.plate.train import check_writable

    out = tmp_path / "w.pt"
    # each is written after the training: the digest, the model card
    for name, role in (("w.sha256", "SHA-256 file"), ("w.MODEL_CARD.md", "model card")):
        (tmp_path / name).mkdir()
        with pytest.raises(OSError, match=re.escape(f"--out {out} cannot be saved: its {role} {tmp_path / name}, "
                                                    f"written beside it, is a folder; move {tmp_path / name} away")):
            check_writable(out, "--out", folder=False)
        (tmp_path / name).rmdir()
    os.mkfifo(tmp_path / "w.sha256")  # writing the digest into a pipe would wait for a reader for ever
    with pytest.raises(OSError, match=re.escape(f"its SHA-256 file {tmp_path / 'w.sha256'}, written beside it, is "
                                                "not a regular file")):
        check_writable(out, "--out", folder=False)
    (tmp_path / "w.sha256").unlink()
    # an --out named like what the save writes beside it: the digest or the card would replace the weights
    with pytest.raises(OSError, match=re.escape("the save writes its SHA-256 file under that very name")):
        check_writable(tmp_path / "w.sha256", "--out", folder=False)
    (tmp_path / "w.sha256").write_text("old digest\n")  # regular files there are replaced: fine
    (tmp_path / "w.MODEL_CARD.md").write_text("old card\n")
    check_writable(out, "--out", folder=False)
    (tmp_path / "w.tmp").mkdir()  # the save's temporary files have random names: no fixed name to block
    check_writable(out, "--out", folder=False)
    (tmp_path / "c.tmp").mkdir()  # a folder's own neighbours do not matter
    check_writable(tmp_path / "c", "--cache", folder=True)


def test_train_plates_refuses_a_folder_where_the_save_writes_its_digest_before_rendering(tmp_path):
    (tmp_path / "w.sha256").mkdir()  # found after an hour of training, before this check
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"))
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    text = " ".join(res.output.split())
    assert f"its SHA-256 file {tmp_path / 'w.sha256'}, written beside it, is a folder" in text, res.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()  # nothing rendered, nothing written


def test_each_weights_file_gets_its_own_model_card(tmp_path):
    from serve.plate.model import WEIGHTS_FILE
    from serve.plate.train import card_path

    assert card_path(WEIGHTS_FILE) == WEIGHTS_FILE.parent / "MODEL_CARD.md"  # the shipped card keeps its name
    assert card_path(tmp_path / "plate_recogniser.pt") == tmp_path / "MODEL_CARD.md"
    # two trained files in one folder: two cards (one MODEL_CARD.md was overwritten by the second run)
    assert card_path(tmp_path / "w.pt") == tmp_path / "w.MODEL_CARD.md"
    assert card_path(tmp_path / "night.pt") == tmp_path / "night.MODEL_CARD.md"


def test_train_plate_corners_refuses_bad_output_and_a_broken_checkpoint_before_any_work(tmp_path):
    """`ssz train plate-corners`: an unwritable --out, --out named as its own digest file, a negative seed and an
    unreadable checkpoint are one clear error each, before or instead of a 12-minute run."""
    from serve.plate.train_corners import CornerTrainConfig, _checkpoint_path

    base = ["train", "plate-corners", "--samples", "8", "--val-samples", "4", "--steps", "1", "--workers", "1"]
    res = CliRunner().invoke(app, [*base, "--out", "/proc/c.pt", "--cache", str(tmp_path / "cache")])
    assert res.exit_code == 2 and "/proc/c.pt cannot be written" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "cache").exists()  # refused before rendering
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "c.sha256"), "--cache", str(tmp_path / "cache")])
    assert res.exit_code == 2 and "SHA-256 file under that very name" in res.output
    res = CliRunner().invoke(app, [*base, "--seed", "-3"])
    assert res.exit_code == 2 and "--seed" in res.output
    import torch

    cache = tmp_path / "cache2"
    cache.mkdir()
    cfg = CornerTrainConfig(samples=8, val_samples=4, steps=1, workers=1)
    _checkpoint_path(cache, cfg, bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())).write_bytes(b"garbage")
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "c.pt"), "--cache", str(cache)])
    assert res.exit_code == 2 and "is unreadable" in res.output and "delete it" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "c.pt").exists()


def test_train_plates_run_again_when_finished_keeps_its_weights_and_card(tmp_path):
    import json

    args = ["--val-samples", "8", "--batch", "8", "--workers", "1", "--threads", "1", "--card-n", "1", "--out",
            str(tmp_path / "w.pt")]
    first = _train(tmp_path, *args)
    assert first.exit_code == 0, first.output
    card = tmp_path / "w.MODEL_CARD.md"
    stamp = (card.stat().st_mtime_ns, (tmp_path / "w.pt").stat().st_mtime_ns)
    text = card.read_text()  # a one-plate test: its known limits say what it measured, not the shipped card's words
    assert "motorcycles read below car plates" not in text
    assert re.search(r"px a row: (whole plate right, (clean|mild) \d+\.\d% of \d+ motorcycle plates? against|the "
                     r"held-out table above drew no motorcycle plate)", text), text
    m = re.search(r"n = (\d+) plates \+ (\d+) negatives?: whole plate", text)
    assert m and int(m[1]) + int(m[2]) == 8 and (f"{m[2]} negative" + ("" if m[2] == "1" else "s")) in text, text
    again = _train(tmp_path, *args)
    assert again.exit_code == 0, again.output
    out = json.loads(again.stdout[again.stdout.index("{"):])
    assert out["sha256"] == json.loads(first.stdout[first.stdout.index("{"):])["sha256"]
    assert (card.stat().st_mtime_ns, (tmp_path / "w.pt").stat().st_mtime_ns) == stamp  # neither rewritten
    assert "already holds the weights of this finished run" in again.stderr


def test_a_hard_fraction_that_rounds_to_no_sample_is_refused_before_any_work(tmp_path):
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--batch", "16", "--hard-fraction", "0.02")
    assert res.exit_code != 0 and "Traceback" not in res.output
    text = " ".join(res.output.split())
    assert "--hard-fraction 0.02 of a batch of 16 is no sample" in text and "at least 0.0312" in text, text
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()


def test_focus_letters_that_are_no_registration_characters_are_refused_before_any_work(tmp_path):
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--focus-letters", "ab", "--focus-fraction", "0.25")
    assert res.exit_code != 0 and "Traceback" not in res.output
    text = " ".join(res.output.split())
    assert "--focus-letters 'ab': 'ab' is not a registration character" in text and "e.g. ฎฏ" in text, text
    res = _train(tmp_path, "--out", str(tmp_path / "w.pt"), "--focus-letters", "ฎฏ")
    assert res.exit_code != 0 and "give both" in " ".join(res.output.split()), res.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()


def test_train_plates_average_refuses_a_single_file_without_a_traceback(tmp_path):
    from serve.plate.model import PlateNet, save_weights

    save_weights(PlateNet(channels=(8, 8, 16, 16)), tmp_path / "a.pt", {"config": {}, "init": None})
    res = CliRunner().invoke(app, ["train", "plates-average", str(tmp_path / "a.pt"), "--out",
                                   str(tmp_path / "avg.pt"), "--cache", str(tmp_path / "cache")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "averaging needs at least two weights files, got 1" in " ".join(res.output.split()), res.output
    assert not (tmp_path / "avg.pt").exists()
    help_text = CliRunner().invoke(app, ["train", "plates-average", "--help"]).output
    for opt in ("--seed", "--val-samples", "--out", "--cache", "--card-n"):
        assert opt in help_text, opt


def test_a_path_of_an_unknown_users_home_is_refused_without_a_traceback(tmp_path):
    res = _train(tmp_path, "--out", "~nosuchuser-ssz/w.pt")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "--out ~nosuchuser-ssz/w.pt" in res.output and "give the full path" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["train", "plates-average", str(tmp_path / "a.pt"), "~nosuchuser-ssz/b.pt"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "give the full path" in " ".join(
        res.output.split()), res.output
    res = CliRunner().invoke(app, ["train", "plate-corners", "--cache", "~nosuchuser-ssz/c"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "--cache ~nosuchuser-ssz/c" in res.output and \
        "give the full path" in " ".join(res.output.split()), res.output
