"""The learned recogniser's weights (shipped, SHA-256 checked, loadable from the models bucket) and a smoke
training run (seconds: the real training is `ssz train plates`, never run in CI)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace

import numpy as np
import pytest

from serve.plate.model import (
    MODELS_KEY,
    WEIGHTS_FILE,
    WEIGHTS_SHA_FILE,
    ModelWeightsError,
    Recogniser,
    ctc_decode,
    load_net,
    sha256_of,
)


def test_shipped_weights_are_small_and_match_their_recorded_digest():
    assert WEIGHTS_FILE.stat().st_size <= 20e6
    assert WEIGHTS_SHA_FILE.read_text().split()[0] == sha256_of(WEIGHTS_FILE)
    _net, meta = load_net()
    # measured on its validation mix (training fonts, every level up to beyond severe): whole plate 0.42
    assert meta["min_confidence"] > 0 and meta["validation"]["whole_exact"] > 0.35
    assert (WEIGHTS_FILE.parent / "MODEL_CARD.md").is_file()


def test_missing_or_corrupt_weights_name_the_file_and_the_rebuild_command(tmp_path, monkeypatch):
    with monkeypatch.context() as m:  # the shipped file missing: rebuild it or load it from the bucket
        m.setattr("serve.plate.model.WEIGHTS_FILE", tmp_path / "plate_recogniser.pt")
        with pytest.raises(ModelWeightsError, match=r"plate_recogniser.pt are missing: restore the shipped file "
                                                    r"\(`git checkout -- serve/plate/data/plate_recogniser.pt`.*"
                                                    r"models bucket.*ssz train plates"):
            load_net()
    with monkeypatch.context() as m:  # the shipped digest file missing: restore it, not a 2-hour retrain first
        m.setattr("serve.plate.model.WEIGHTS_SHA_FILE", tmp_path / "plate_recogniser.sha256")
        with pytest.raises(ModelWeightsError, match=r"plate_recogniser.sha256 \(the SHA-256 of plate_recogniser.pt\) "
                                                    r"is missing: restore the shipped file \(`git checkout -- "
                                                    r"serve/plate/data/plate_recogniser.sha256`"):
            load_net()
    with pytest.raises(ModelWeightsError, match=r"absent.pt does not exist: check the path$"):  # a mistyped path
        load_net(tmp_path / "absent.pt")
    with pytest.raises(ModelWeightsError, match=rf"{tmp_path} is a folder: give the weights file"):
        load_net(tmp_path)
    bad = _corrupt_copy(WEIGHTS_FILE, WEIGHTS_SHA_FILE, tmp_path / "plate_recogniser.pt")
    with pytest.raises(ModelWeightsError, match=rf"{bad}.*corrupt.*ssz train plates"):
        load_net(bad, expected_sha256=sha256_of(WEIGHTS_FILE))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelWeightsError, match="not a plate recogniser checkpoint"):
        load_net(junk, expected_sha256=sha256_of(junk))


def _corrupt_copy(weights, digest, dest):
    """``weights`` and its SHA-256 file copied to ``dest`` and beside it, with one byte of the copy flipped."""
    shutil.copy(weights, dest)
    shutil.copy(digest, dest.with_suffix(".sha256"))
    with open(dest, "r+b") as f:  # flip one byte in the middle
        f.seek(dest.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    return dest


def test_corrupt_weights_say_how_to_get_those_weights_back_not_the_default_schedule(tmp_path, monkeypatch):
    """Weights trained with their own options are not rebuilt by the default schedule: the message says to copy
    them again or rerun the command with the options that trained them, naming their model card when there is
    one; the shipped file is restored from the checkout first."""
    w = _corrupt_copy(WEIGHTS_FILE, WEIGHTS_SHA_FILE, tmp_path / "w.pt")
    with pytest.raises(ModelWeightsError) as e:
        load_net(w)
    assert str(e.value).endswith("copy the file again from where it came, or rerun `ssz train plates` with the "
                                 "options that trained it")
    (tmp_path / "w.MODEL_CARD.md").write_text("# Model card\n")
    with pytest.raises(ModelWeightsError) as e:
        load_net(w)
    assert str(e.value).endswith(f"rerun `ssz train plates` with the options that trained it (its model card "
                                 f"{tmp_path / 'w.MODEL_CARD.md'} lists them)")
    assert "default schedule" not in str(e.value)
    from serve.plate.corners import CORNERS_FILE

    other = tmp_path / "corners.pt"  # another network's checkpoint given as the recogniser: same advice
    shutil.copy(CORNERS_FILE, other)
    with pytest.raises(ModelWeightsError, match=r"corners.pt is not a plate recogniser checkpoint \(.*\): copy the "
                                                r"file again from where it came, or rerun `ssz train plates` with the "
                                                r"options that trained it$"):
        load_net(other, expected_sha256=sha256_of(other))
    junk = tmp_path / "junk.pt"  # unreadable, same advice
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelWeightsError, match=r"junk.pt is not a plate recogniser checkpoint \(torch cannot read "
                                                r"it.*\): copy the file again.*`ssz train plates` with the options"):
        load_net(junk, expected_sha256=sha256_of(junk))
    (tmp_path / "data").mkdir()  # the shipped file: restore it first
    shipped = _corrupt_copy(WEIGHTS_FILE, WEIGHTS_SHA_FILE, tmp_path / "data" / "plate_recogniser.pt")
    monkeypatch.setattr("serve.plate.model.WEIGHTS_FILE", shipped)
    monkeypatch.setattr("serve.plate.model.WEIGHTS_SHA_FILE", shipped.with_suffix(".sha256"))
    with pytest.raises(ModelWeightsError, match=r"are corrupt \(SHA-256 .*\): restore the shipped file \(`git "
                                                r"checkout -- serve/plate/data/plate_recogniser.pt`.*, or rebuild "
                                                r"them with `ssz train plates` \(the default schedule"):
        load_net()


def test_corrupt_corner_weights_name_their_own_command(tmp_path):
    from serve.plate.corners import CORNERS_FILE, CORNERS_SHA_FILE, load_corner_net

    w = _corrupt_copy(CORNERS_FILE, CORNERS_SHA_FILE, tmp_path / "corners.pt")
    with pytest.raises(ModelWeightsError) as e:
        load_corner_net(w)
    assert str(e.value).endswith("rerun `ssz train plate-corners` with the options that trained it")


def test_the_model_card_measures_motorcycles_against_cars_or_says_it_did_not():
    from serve.plate.train import _count, _motorcycle_line

    crops = {"clean": {"per_type": {"motorcycle": {"n": 20, "exact": 0.9}, "private": {"n": 60, "exact": 1.0},
                                    "green": {"n": 20, "exact": 0.95}}},
             "mild": {"per_type": {"motorcycle": {"n": 10, "exact": 0.8}, "private": {"n": 90, "exact": 0.9}}}}
    assert _motorcycle_line(crops) == ("whole plate right, clean 90.0% of 20 motorcycle plates against 98.8% of 80 "
                                       "car plates; mild 80.0% of 10 motorcycle plates against 90.0% of 90 car "
                                       "plates")
    assert _motorcycle_line({"clean": {"per_type": {"private": {"n": 5, "exact": 1.0}}}}) == (
        "the held-out table above drew no motorcycle plate at the clean and mild levels, so this card does not "
        "measure them")
    assert _motorcycle_line({}).startswith("the held-out table above drew no motorcycle plate")
    assert (_count(1, "negative"), _count(40, "negative"), _count(0, "negative")) == (
        "1 negative", "40 negatives", "0 negatives")


def test_weights_load_from_the_models_bucket(s3_store, tmp_path, monkeypatch):
    from serve.plate.ocr import LearnedEngine
    from twin.objectstore import MODELS_BUCKET

    monkeypatch.setenv("SSZ_HOME", str(tmp_path))
    s3_store.put_bytes(MODELS_BUCKET, MODELS_KEY, WEIGHTS_FILE.read_bytes())
    eng = LearnedEngine(store=s3_store, sha256=sha256_of(WEIGHTS_FILE))
    assert eng.meta["min_confidence"] > 0 and (tmp_path / "models" / MODELS_KEY).is_file()
    with pytest.raises(ModelWeightsError, match="corrupt"):
        LearnedEngine(store=s3_store, sha256="0" * 64)


def test_weights_from_the_models_bucket_are_checked_against_the_sha256_file_uploaded_beside_them(s3_store, tmp_path):
    """The two files ``ssz train plates`` writes, uploaded side by side: the download is checked against the
    digest (before, the SHA-256 file was never fetched, though the docstring said it was checked)."""
    from serve.plate.model import fetch_weights
    from twin.objectstore import MODELS_BUCKET

    key, side = "review-sha/plate_recogniser.pt", "review-sha/plate_recogniser.sha256"
    s3_store.put_bytes(MODELS_BUCKET, key, WEIGHTS_FILE.read_bytes())
    s3_store.put_bytes(MODELS_BUCKET, side, f"{'0' * 64}  plate_recogniser.pt\n".encode())
    path = fetch_weights(s3_store, key, cache_dir=tmp_path)
    assert path == tmp_path / key and (tmp_path / side).read_text() == f"{'0' * 64}  plate_recogniser.pt\n"
    assert sha256_of(path) == sha256_of(WEIGHTS_FILE)  # the whole object, written atomically and owner-only
    assert sorted(p.name for p in path.parent.iterdir()) == ["plate_recogniser.pt", "plate_recogniser.sha256"]
    assert {oct(p.stat().st_mode & 0o777) for p in path.parent.iterdir()} == {"0o600"}
    with pytest.raises(ModelWeightsError, match=r"are corrupt \(SHA-256 .*expected 0000000000000000\.\.\.\)"):
        load_net(path)
    s3_store.put_bytes(MODELS_BUCKET, side, WEIGHTS_SHA_FILE.read_bytes())
    assert load_net(fetch_weights(s3_store, key, cache_dir=tmp_path))[1]["min_confidence"] > 0
    # none in the bucket any more: the one an older download left is gone, not checked against other weights
    s3_store.client.remove_object(MODELS_BUCKET, side)
    (tmp_path / side).write_text(f"{'0' * 64}  plate_recogniser.pt\n")
    assert load_net(fetch_weights(s3_store, key, cache_dir=tmp_path))[1]["min_confidence"] > 0
    assert not (tmp_path / side).exists()


def test_ctc_decoding_collapses_repeats_and_keeps_per_character_confidence():
    from serve.plate.model import ALPHABET

    k = len(ALPHABET) + 1
    seq = [ALPHABET.index(c) + 1 if c != "_" else 0 for c in "กก_ข__11_1"]
    probs = np.full((len(seq), k), 0.01, np.float32)
    for t, s in enumerate(seq):
        probs[t, s] = 0.9 - 0.01 * t
    text, conf = ctc_decode(probs)
    assert text == "กข11" and len(conf) == 4 and conf[0] == pytest.approx(0.9)


def test_recogniser_batches_any_sizes(plate_engine):
    reads = plate_engine.read([np.zeros((150, 340, 3), np.uint8), np.full((170, 220), 200, np.uint8)])
    assert len(reads) == 2 and all(r.confidence < plate_engine.min_confidence for r in reads)
    assert isinstance(Recogniser, type)


def test_smoke_training_run_resumes_and_writes_checked_weights(tmp_path):
    from serve.plate.train import TrainConfig, train

    cfg = TrainConfig(samples=48, val_samples=16, steps=4, batch=8, checkpoint_every=2, workers=1, threads=1)
    res = train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert res["sha256"] == sha256_of(tmp_path / "w.pt") == (tmp_path / "w.sha256").read_text().split()[0]
    assert list((tmp_path / "cache").glob("ckpt-*.pt")) and res["validation"]["n"] > 0
    written = [p for p in tmp_path.rglob("*") if p.is_file()]  # weights, digest, checkpoint, rendered chunks
    assert sorted(p.suffix for p in written) == [".npz", ".npz", ".pt", ".pt", ".sha256"]  # no temporary file left
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {"0o600"}
    assert res["cpu_seconds"]["total"] >= res["cpu_seconds"]["data"] >= 0 and res["init"] is None
    again = train(cfg, cache=tmp_path / "cache", out=tmp_path / "w2.pt", progress=False)  # resumes at step 4: done
    assert again["seconds"]["train"] <= res["seconds"]["train"] + 1 and again["written"]
    # the same finished command again leaves its weights, digest and record of the run as they were
    before = (tmp_path / "w.pt").stat().st_mtime_ns
    same = train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert not same["written"] and same["sha256"] == res["sha256"] == sha256_of(tmp_path / "w.pt")
    assert same["seconds"] == res["seconds"] and same["trained_at"] == res["trained_at"]
    assert (tmp_path / "w.pt").stat().st_mtime_ns == before
    # other options (more steps) are another run: it trains and writes
    more = train(replace(cfg, steps=5), cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert more["written"] and more["sha256"] != res["sha256"]
    res = train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)  # the 4-step run's weights back
    assert res["written"]
    _net, meta = load_net(tmp_path / "w.pt", expected_sha256=res["sha256"])
    assert meta["config"]["steps"] == 4
    # a fine-tuning stage starts from those weights and records which
    tuned = train(TrainConfig(samples=48, val_samples=16, steps=2, batch=8, workers=1, threads=1,
                              init=str(tmp_path / "w.pt")), cache=tmp_path / "cache", out=tmp_path / "w3.pt",
                  progress=False)
    assert tuned["init"]["sha256"] == res["sha256"] and tuned["init"]["config"]["steps"] == 4
    # a third stage records the whole chain back to the random initialisation, and the model card lists it
    third = train(TrainConfig(samples=48, val_samples=16, steps=2, batch=8, workers=1, threads=1, easy_fraction=0.0,
                              init=str(tmp_path / "w3.pt")), cache=tmp_path / "cache", out=tmp_path / "w4.pt",
                  progress=False)
    assert third["init"]["sha256"] == tuned["sha256"] and third["init"]["init"]["sha256"] == res["sha256"]
    assert third["init"]["init"]["init"] is None
    from serve.plate.train import _init_lines

    lines = _init_lines(third["init"])
    assert len(lines) == 3 and lines[-1].startswith("- the 3 stages together")


def test_batchnorm_folding_keeps_the_outputs():
    import torch

    from serve.plate.model import fuse_batchnorm

    net, _ = load_net()
    fused = fuse_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.features.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.features.modules())  # the original is untouched
    x = torch.randn(4, 1, *net.input_size)
    with torch.inference_mode():
        for a, b in zip(net(x), fused(x), strict=True):
            assert float((a - b).abs().max()) < 1e-3


def test_residual_blocks_grow_trained_weights_without_changing_what_they_read(tmp_path):
    import torch

    from serve.plate.model import PlateNet, fuse_batchnorm
    from serve.plate.train import TrainConfig, grown, train

    start, _ = load_net()
    have = int(start.config.get("res_blocks", 0))
    bigger = grown(start, have + 1).eval()
    assert len(bigger.features) == len(start.features) + 1
    assert sum(p.numel() for p in bigger.parameters()) > sum(p.numel() for p in start.parameters())
    x = torch.randn(4, 1, *start.input_size)
    with torch.inference_mode():  # the added block is an identity until trained; folding BatchNorm inside it too
        for a, b, c in zip(start(x), bigger(x), fuse_batchnorm(bigger)(x), strict=True):
            assert torch.equal(a, b) and float((a - c).abs().max()) < 1e-3
    with pytest.raises(ModelWeightsError, match=r"--res-blocks 0 is fewer than the 1 residual block\(s\) of the "
                                                r"--init weights: a network only grows"):
        grown(PlateNet(res_blocks=1), 0)
    # a training stage grows its start and records the blocks, which loading rebuilds
    res = train(TrainConfig(samples=48, val_samples=16, steps=2, batch=8, workers=1, threads=1, easy_fraction=0.0,
                            init=str(WEIGHTS_FILE), res_blocks=have + 1), cache=tmp_path / "cache",
                out=tmp_path / "w.pt", progress=False)
    assert res["config"]["res_blocks"] == have + 1
    net, _ = load_net(tmp_path / "w.pt")
    assert net.config["res_blocks"] == have + 1 and len(net.features) == len(bigger.features)


def test_weights_written_by_training_are_checked_against_their_sha256_file(tmp_path):
    # `ssz train plates --out` writes <name>.sha256 beside the weights and the model card says it is checked at
    # every load: one flipped byte in such a copy must be refused, not read with a changed weight
    shutil.copy(WEIGHTS_FILE, tmp_path / "intact.pt")
    shutil.copy(WEIGHTS_SHA_FILE, tmp_path / "intact.sha256")
    load_net(tmp_path / "intact.pt")  # intact: loads
    w = _corrupt_copy(WEIGHTS_FILE, WEIGHTS_SHA_FILE, tmp_path / "w.pt")
    with pytest.raises(ModelWeightsError, match=rf"{w} are corrupt.*ssz train plates"):
        load_net(w)


def test_an_unreadable_training_checkpoint_is_a_clear_error(tmp_path):
    from serve.plate.train import TrainConfig, train

    cfg = TrainConfig(samples=16, val_samples=8, steps=1, batch=8, workers=1, threads=1)
    train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    (ckpt,) = (tmp_path / "cache").glob("ckpt-*.pt")
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # cut short (a disk that filled up, a partial copy)
    with pytest.raises(ModelWeightsError, match=rf"checkpoint {ckpt} is unreadable.*delete it"):
        train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)


def test_bf16_and_fp32_training_record_their_precision_and_a_resume_keeps_it(tmp_path, monkeypatch):
    import torch

    from serve.plate.train import TrainConfig, train

    base = dict(samples=16, val_samples=8, steps=1, batch=8, workers=1, threads=1)
    runs = {bf16: train(TrainConfig(**base, bf16=bf16), cache=tmp_path / "cache", out=tmp_path / f"w{bf16}.pt",
                        progress=False) for bf16 in (True, False)}
    assert runs[True]["config"]["bf16"] is True and runs[False]["config"]["bf16"] is False
    assert runs[True]["sha256"] != runs[False]["sha256"]  # the same step in two precisions: two sets of weights
    assert len(list((tmp_path / "cache").glob("ckpt-*.pt"))) == 2  # each precision keeps its own checkpoint
    # None is resolved from the CPU before the checkpoint key is made: a CPU without native bfloat16 trains in fp32
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    auto = train(TrainConfig(**base), cache=tmp_path / "cache", out=tmp_path / "auto.pt", progress=False)
    assert auto["config"]["bf16"] is False and auto["seconds"]["train"] <= runs[False]["seconds"]["train"] + 1
    assert len(list((tmp_path / "cache").glob("ckpt-*.pt"))) == 2  # it resumed the fp32 run (at its last step)


def test_a_float32_run_cut_short_before_bf16_existed_resumes_in_float32_by_default(tmp_path, monkeypatch):
    import hashlib
    import json
    from dataclasses import asdict, replace

    import torch

    from serve.plate.train import DATA_VERSION, TrainConfig, train

    cfg = TrainConfig(samples=16, val_samples=8, steps=2, batch=8, workers=1, threads=1, checkpoint_every=1)
    cache, said = tmp_path / "cache", []

    def ctrl_c_after_step_1(message):
        said.append(message)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(replace(cfg, bf16=False), cache=cache, out=tmp_path / "w.pt", progress=False, log=ctrl_c_after_step_1)
    # its checkpoint is where the code before --bf16 put it (key: every option but these three; bf16, res_blocks,
    # input_size, device, channels, hard_fraction and the focus options did not exist)
    old_key = {k: v for k, v in asdict(cfg).items()
               if k not in ("checkpoint_every", "workers", "threads", "bf16", "res_blocks", "input_size", "device",
                            "channels", "hard_fraction", "focus_letters", "focus_fraction")}
    old_key["init"] = None
    old = cache / f"ckpt-v{DATA_VERSION}-{hashlib.sha256(json.dumps(old_key).encode()).hexdigest()[:12]}.pt"
    assert [p.name for p in cache.glob("ckpt-*.pt")] == [old.name] and torch.load(old, weights_only=False)["step"] == 1
    # the same command again on a CPU with bfloat16 (the default, auto): the run goes on from step 1 in float32
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    said.clear()
    res = train(cfg, cache=cache, out=tmp_path / "w.pt", progress=False, log=said.append)
    assert res["config"]["bf16"] is False and said[0].startswith(f"resuming the float32 run of these options in {old}")
    assert said[1:] == [s for s in said[1:] if s.startswith("step 2/2 ")] and len(said) == 2  # one step left, not 2
    assert [p.name for p in cache.glob("ckpt-*.pt")] == [old.name]
    # once that run is finished, the default on this CPU is a bfloat16 run of its own
    res = train(cfg, cache=cache, out=tmp_path / "w16.pt", progress=False)
    assert res["config"]["bf16"] is True and len(list(cache.glob("ckpt-*.pt"))) == 2


def test_a_diverged_training_keeps_the_old_weights_and_says_to_lower_the_learning_rate(tmp_path):
    import dataclasses
    import math

    from serve.plate.train import TrainConfig, train

    cfg = TrainConfig(samples=16, val_samples=8, steps=1, batch=8, workers=1, threads=1)
    res = train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    before = (tmp_path / "w.pt").read_bytes()
    # an infinite learning rate (Python callers; the CLI refuses it) makes every weight inf or nan in one step
    with pytest.raises(ModelWeightsError, match=rf"diverged .* so {tmp_path / 'w.pt'} was not written: run again "
                                                r"with a lower --lr than inf"):
        train(dataclasses.replace(cfg, lr=math.inf), cache=tmp_path / "cache", out=tmp_path / "w.pt",
              progress=False)
    assert (tmp_path / "w.pt").read_bytes() == before and sha256_of(tmp_path / "w.pt") == res["sha256"]
    assert (tmp_path / "w.sha256").read_text().split()[0] == res["sha256"]


def test_the_threshold_keeps_at_least_the_promised_share_of_right_reads():
    from serve.plate.train import KEEP_CORRECT, keeping_threshold

    # np.quantile interpolates between two reads, so the rule kept 1842 of 1880 (97.98 %), fewer than promised
    for n in (1, 2, 49, 50, 99, 100, 1880):
        conf = np.random.default_rng(n).random(n)
        t = keeping_threshold(conf, KEEP_CORRECT)
        assert np.mean(conf >= t) >= KEEP_CORRECT, n
        assert not (conf > t).any() or np.mean(conf >= conf[conf > t].min()) < KEEP_CORRECT, n  # the highest such
    assert keeping_threshold(np.arange(100) / 100, 0.98) == 0.02  # keeps 0.02 .. 0.99: 98 of 100
    assert keeping_threshold(np.array([]), 0.98) == 0.0  # no right read: no lower bound


def test_a_threshold_outside_0_1_is_refused(plate_engine):
    from serve.plate.ocr import make_ocr_engine

    for bad in (-1.0, float("nan"), 5.0):
        with pytest.raises(ValueError, match=r"min_confidence .* between 0 and 1"):
            make_ocr_engine("model", min_confidence=bad)


def test_restroke_makes_a_third_of_the_training_plates_bolder_or_lighter():
    from serve.plate.render import draw_plate, random_plate
    from serve.plate.train import RESTROKE_P, _pick_face, restroke

    rng = np.random.default_rng(3)
    plate = draw_plate(random_plate(rng, "private"), _pick_face(rng, "train"), "private", "car", rng)
    ink = float((plate.min(axis=2) < 100).mean())
    changed, bolder, lighter = 0, 0, 0
    for seed in range(300):
        out = restroke(plate, np.random.default_rng(seed))
        assert out.shape == plate.shape and out.dtype == np.uint8
        if np.array_equal(out, plate):
            continue
        changed += 1
        share = float((out.min(axis=2) < 100).mean())
        bolder += share > ink  # erosion of the light ground: dark strokes grow
        lighter += share < ink
    assert abs(changed / 300 - RESTROKE_P) < 0.1 and bolder + lighter == changed and bolder > 25 and lighter > 25


def test_negative_samples_have_an_empty_target_and_no_vehicle():
    from serve.plate.train import NEGATIVE_P, make_sample

    negatives = [s for s in (make_sample(seed) for seed in range(400)) if s[4] == "negative"]
    assert abs(len(negatives) / 400 - NEGATIVE_P) < 0.05
    assert all(s[1] == "" and s[3] == -100 and s[0].shape == negatives[0][0].shape for s in negatives)


def test_model_card_lists_the_residual_blocks_of_each_stage():
    # the card says its stages are reproduced by running them in turn "(options as listed)": a stage that grew
    # residual blocks must list --res-blocks, or following the card rebuilds a network without them
    from serve.plate.train import _init_lines, _trained_line

    first = {"sha256": "a" * 64, "trained_at": "t0", "config": {"seed": 0, "samples": 8, "steps": 2, "batch": 8,
                                                                "lr": 0.003, "res_blocks": 0}, "init": None}
    older = {"sha256": "b" * 64, "trained_at": "t1", "config": {"seed": 1, "samples": 8, "steps": 2, "batch": 8,
                                                                "lr": 0.001}, "init": first}  # before blocks existed
    grown_stage = {"sha256": "c" * 64, "trained_at": "t2", "config": {"seed": 7, "samples": 8, "steps": 2, "batch": 8,
                                                                      "lr": 0.0007, "res_blocks": 1}, "init": older}
    lines = _init_lines(grown_stage)
    assert "--res-blocks 1" in lines[0] and "1 residual block" in lines[0]
    assert not any("res-blocks" in line for line in lines[1:])
    top = {"trained_at": "t3", "data_version": 7, "config": {"seed": 8, "samples": 8, "steps": 2, "batch": 8,
                                                             "lr": 0.0005, "ema": 0.999, "res_blocks": 3}}
    assert "3 residual blocks (--res-blocks 3)" in _trained_line(top)
    assert "res-blocks" not in _trained_line({**top, "config": {**top["config"], "res_blocks": 0}})
    # the schedule's warm-up and curriculum are options too (a fine-tuning stage: --warmup 0.1 --easy-fraction 0)
    tuned = {**top, "config": {**top["config"], "warmup": 0.1, "easy_fraction": 0.0}}
    assert "--warmup 0.1, --easy-fraction 0, 3 residual blocks (--res-blocks 3)" in _trained_line(tuned)
    # each stage's precision is an option too, phrased the same on the top line and on the stages below it
    assert ", float32 (--fp32));" in _trained_line({**top, "config": {**top["config"], "bf16": False}})
    assert ", bfloat16 (--bf16), " in _init_lines({**grown_stage, "config": {**grown_stage["config"], "bf16": True}})[0]
    assert "--bf16" not in _trained_line(top) and "--fp32" not in _trained_line(top)  # metadata before the option
    assert "--warmup 0.1, --easy-fraction 0" in _init_lines({**grown_stage, "config": tuned["config"]})[0]
    # each stage's precision when it recorded one; the closing line says which commit rebuilds older data versions
    precise = _init_lines({**grown_stage, "config": {**grown_stage["config"], "bf16": True},
                           "init": {**older, "config": {**older["config"], "bf16": False}}})
    assert ", bfloat16 (--bf16)," in precise[0] and ", float32 (--fp32)," in precise[1]
    assert "bf16" not in lines[0] and "fp32" not in lines[0]  # not recorded: nothing said
    from serve.plate.train import DATA_VERSION

    assert f"renders data version {DATA_VERSION} only" in lines[-1] and "git log -- serve/plate/data" in lines[-1]


def test_a_negative_block_count_is_refused(tmp_path):
    # through Python (the CLI's --res-blocks has min=0) -1 built a network without blocks whose weights' config, and
    # so its model card, said -1 residual blocks
    from serve.plate.model import PlateNet
    from serve.plate.train import TrainConfig, train

    with pytest.raises(ValueError, match="res_blocks -1: a number of residual blocks is 0 or more"):
        PlateNet(res_blocks=-1)
    with pytest.raises(ValueError, match="res_blocks -1"):  # before any rendering: nothing is written
        train(TrainConfig(samples=8, val_samples=8, steps=1, batch=8, workers=1, threads=1, res_blocks=-1),
              cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert not list(tmp_path.iterdir())


def test_reshape_glyph_bends_a_glyph_but_keeps_its_line_height_baseline_and_ink():
    from serve.plate.fonts import font_faces
    from serve.plate.render import _BASELINE, _glyph_mask, reshape_glyph

    g = _glyph_mask(str(font_faces("train")[0].thai), "ก", 0)
    ink, bottom = float(g.sum()), np.flatnonzero(g.max(axis=1) > 0)[-1]
    assert bottom >= _BASELINE - 2  # ก sits on the baseline
    assert np.array_equal(reshape_glyph(g, np.random.default_rng(0), 0.0), g)  # strength 0: every change is identity
    for seed in range(20):
        out = reshape_glyph(g, np.random.default_rng(seed), 1.0)
        assert out.shape[0] == g.shape[0] and out.dtype == np.uint8
        assert not np.array_equal(out, g)
        assert 0.75 < out.sum() / ink < 1.3  # bent, not erased or smeared
        assert 0.75 < out.shape[1] / g.shape[1] < 1.5  # ±15 % width, plus a slant of up to 0.15 of its height
        # the ±3 px shift and ±3° turn about the baseline keep its foot within a few px of it
        assert abs(np.flatnonzero(out.max(axis=1) > 0)[-1] - bottom) <= 8


def test_reshape_changes_the_glyphs_of_a_line_and_needs_a_training_rng():
    from dataclasses import replace

    from serve.plate.render import TextLook, _line_mask, draw_plate, random_plate
    from serve.plate.train import _pick_face

    rng = np.random.default_rng(5)
    plate, face = random_plate(rng, "private"), _pick_face(rng, "train")
    look = TextLook()
    # the same rng state, reshape strength 0 vs 0.8: only reshape_glyph can make the two lines differ
    flat = _line_mask("กข 1234", face, look, np.random.default_rng(9))
    assert np.array_equal(flat, _line_mask("กข 1234", face, look))
    bent = _line_mask("กข 1234", face, replace(look, reshape=0.8), np.random.default_rng(9))
    assert not np.array_equal(bent, flat) and 0.8 < bent.sum() / flat.sum() < 1.25
    assert abs(bent.shape[1] - flat.shape[1]) < 0.3 * flat.shape[1]
    # without an rng the look is nominal, so reshape (training only) has nothing to draw from
    nominal = draw_plate(plate, face, "private", "car", None, 0.5)
    assert np.array_equal(nominal, draw_plate(plate, face, "private", "car", None, 0.5, reshape=True))


def test_training_device_names_what_torch_can_train_on():
    import torch

    from serve.plate.train import training_device

    assert training_device("cpu") == training_device("cpu:1") == torch.device("cpu")  # every CPU name is the CPU
    for bad, said in (("gpu", "is not a torch device"), ("tpu:0", "is not a torch device"),
                      ("meta", "cpu or an NVIDIA GPU")):
        with pytest.raises(ValueError, match=said):
            training_device(bad)
    if not torch.cuda.is_available():  # this CI machine: a GPU asked for is refused, saying to use the CPU
        with pytest.raises(ValueError, match=r"torch sees no CUDA GPU.*--device cpu"):
            training_device("cuda")
    else:  # a GPU machine: a GPU number beyond those torch sees is refused
        n = torch.cuda.device_count()
        assert training_device("cuda:0") == torch.device("cuda:0")
        with pytest.raises(ValueError, match=f"sees {n} CUDA GPU"):
            training_device(f"cuda:{n}")


def test_the_device_is_not_in_the_checkpoint_key_so_a_run_resumes_on_another(tmp_path):
    from serve.plate.train import TrainConfig, _checkpoint_path

    cfg = TrainConfig(samples=16, steps=1)
    assert _checkpoint_path(tmp_path, cfg, None) == _checkpoint_path(tmp_path, replace(cfg, device="cuda:1"), None)
    assert _checkpoint_path(tmp_path, cfg, None) != _checkpoint_path(tmp_path, replace(cfg, seed=1), None)


def test_hard_fraction_fills_that_share_of_each_batch_with_severe_samples_and_keeps_older_runs_as_they_were(tmp_path):
    import numpy as np

    from serve.plate.train import TrainConfig, _checkpoint_path, _stage_options, draw_batch

    n, easy, hard = 1000, np.arange(0, 600), np.arange(800, 1000)
    plain, tilted = TrainConfig(steps=100, batch=64, easy_fraction=0.1), TrainConfig(steps=100, batch=64,
                                                                                      easy_fraction=0.1,
                                                                                      hard_fraction=0.25)
    # after the curriculum: the first 16 of 64 drawn from the hard samples, the other 48 from all, as before
    idx = draw_batch(np.random.default_rng([0, 50]), tilted, 50, n, easy, hard)
    before = draw_batch(np.random.default_rng([0, 50]), plain, 50, n, easy, hard)
    assert idx.shape == (64,) and np.isin(idx[:16], hard).all() and (idx[16:] == before[16:]).all()
    assert np.isin(before, hard).mean() < 0.5  # ~20 % by chance: the share is what the option adds
    # 0 draws exactly what a run from before the option drew (the same calls on the generator)
    assert (before == np.random.default_rng([0, 50]).integers(0, n, 64)).all()
    # during the curriculum only the easy samples, whatever the share; no hard sample at all: the plain draw
    assert np.isin(draw_batch(np.random.default_rng([0, 5]), tilted, 5, n, easy, hard), easy).all()
    assert (draw_batch(np.random.default_rng([0, 50]), tilted, 50, n, easy, hard[:0]) == before).all()
    # the checkpoint key and the model card's recipe name it only when it is not 0
    assert _checkpoint_path(tmp_path, plain, None) == _checkpoint_path(tmp_path, replace(plain, hard_fraction=0.0),
                                                                       None)
    assert _checkpoint_path(tmp_path, plain, None) != _checkpoint_path(tmp_path, tilted, None)
    assert "--hard-fraction 0.25" in _stage_options({"hard_fraction": 0.25})
    assert "hard" not in _stage_options({"hard_fraction": 0.0}) and "hard" not in _stage_options({})


def test_hard_fraction_never_draws_negatives_refuses_a_share_of_no_sample_and_says_an_empty_pool(tmp_path):
    import numpy as np

    from serve.plate.train import (
        TrainConfig,
        _curriculum_line,
        first_seeds,
        hard_count,
        hard_indices,
        make_sample,
        train,
    )

    # a share rounds half up; one that rounds to no sample is refused before any work (nothing rendered)
    assert hard_count(TrainConfig(batch=64, hard_fraction=0.3)) == 19
    assert hard_count(TrainConfig(batch=8, hard_fraction=0.0625)) == 1 and hard_count(TrainConfig(batch=8)) == 0
    with pytest.raises(ValueError, match=r"--hard-fraction 0.01 of a batch of 8 is no sample .* at least 0.0625"):
        train(TrainConfig(samples=16, val_samples=8, steps=1, batch=8, workers=1, threads=1, hard_fraction=0.01),
              cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()
    # the hard pool holds plates only (a negative's level is drawn at random and means nothing)
    data = {"level": np.int8([3, 4, 3, 1, 4, 0]), "ptype": np.array(["private", "negative", "negative", "red",
                                                                      "motorcycle", "negative"])}
    assert hard_indices(data).tolist() == [0, 4]
    # a run whose samples hold no severe or harsher plate says so and draws every batch from all of them
    seed = next(s for s in range(50) if (lambda x: x[4] == "negative" or x[5] < 3)(make_sample(first_seeds(s)[0])))
    said: list[str] = []
    res = train(TrainConfig(seed=seed, samples=1, val_samples=8, steps=1, batch=8, workers=1, threads=1,
                            easy_fraction=0.0, hard_fraction=0.5), cache=tmp_path / "cache", out=tmp_path / "w.pt",
                progress=False, log=said.append)
    assert res["config"]["hard_fraction"] == 0.5
    assert any("--hard-fraction 0.5: the 1 training samples hold no severe or harsher plate" in m for m in said), said
    # the model card's sentence on the schedule names the share
    assert _curriculum_line(0.0, 0.3).endswith(
        "clean to severe. Every batch has 30% of its samples drawn from the severe and harshest plates alone "
        "(--hard-fraction).")
    assert _curriculum_line(0.15, 0.3).endswith(
        "of the steps. After it, every batch has 30% of its samples drawn from the severe and harshest plates alone "
        "(--hard-fraction).")
    assert "hard" not in _curriculum_line(0.15, 0.0) and "hard" not in _curriculum_line(0.0)


def test_older_weights_without_the_hard_and_focus_records_are_still_found_as_their_finished_run(tmp_path):
    from serve.plate.model import PlateNet, save_weights
    from serve.plate.train import DATA_VERSION, TrainConfig, finished_weights

    cfg = TrainConfig(samples=16, steps=1, bf16=False, res_blocks=0, input_size=(64, 160), channels=(24, 32, 64, 96))
    # the record of a run from before --hard-fraction and the focus options (stages 1-11 of the shipped chain)
    older = {k: v for k, v in asdict(cfg).items() if k not in ("hard_fraction", "focus_letters", "focus_fraction")}
    save_weights(PlateNet(), tmp_path / "w.pt", {"config": older, "data_version": DATA_VERSION, "init": None})
    done = finished_weights(tmp_path / "w.pt", cfg, None)
    assert done is not None and done["written"] is False
    for other in (replace(cfg, hard_fraction=0.3), replace(cfg, focus_letters="ฎฏ", focus_fraction=0.25)):
        assert finished_weights(tmp_path / "w.pt", other, None) is None


def test_focus_letters_fill_their_share_after_the_hard_share_and_keep_older_runs_as_they_were(tmp_path):
    import numpy as np

    from serve.plate.train import TrainConfig, _checkpoint_path, _curriculum_line, _stage_options, draw_batch

    n, easy, hard, focus = 1000, np.arange(0, 600), np.arange(800, 900), np.arange(900, 1000)
    plain = TrainConfig(steps=100, batch=64, easy_fraction=0.1)
    focused = replace(plain, focus_letters="ฎฏ", focus_fraction=0.25)
    before = draw_batch(np.random.default_rng([0, 50]), plain, 50, n, easy, hard)
    # after the curriculum: the first 16 of 64 drawn from the focus plates, the other 48 from all, as before
    idx = draw_batch(np.random.default_rng([0, 50]), focused, 50, n, easy, hard, focus)
    assert idx.shape == (64,) and np.isin(idx[:16], focus).all() and (idx[16:] == before[16:]).all()
    # with a hard share too: hard first, then the focus plates, then all
    both = draw_batch(np.random.default_rng([0, 50]), replace(focused, hard_fraction=0.125), 50, n, easy, hard, focus)
    assert np.isin(both[:8], hard).all() and np.isin(both[8:24], focus).all() and (both[24:] == before[24:]).all()
    # the same draws as the measured run that put the focus plates in the hard pool at the same share
    stand_in = draw_batch(np.random.default_rng([0, 50]), replace(plain, hard_fraction=0.25), 50, n, easy, focus)
    assert (idx == stand_in).all()
    # no focus pool (None or empty) or the curriculum: the plain draws
    assert (draw_batch(np.random.default_rng([0, 50]), focused, 50, n, easy, hard, focus[:0]) == before).all()
    assert (draw_batch(np.random.default_rng([0, 50]), focused, 50, n, easy, hard) == before).all()
    assert np.isin(draw_batch(np.random.default_rng([0, 5]), focused, 5, n, easy, hard, focus), easy).all()
    # the checkpoint key and the model card name them only when set
    assert _checkpoint_path(tmp_path, plain, None) == _checkpoint_path(
        tmp_path, replace(plain, focus_letters="", focus_fraction=0.0), None)
    assert _checkpoint_path(tmp_path, plain, None) != _checkpoint_path(tmp_path, focused, None)
    assert _stage_options({"focus_letters": "ฎฏ", "focus_fraction": 0.25}) == \
        ", --focus-letters ฎฏ --focus-fraction 0.25"
    assert "focus" not in _stage_options({"focus_letters": "", "focus_fraction": 0.0}) + _stage_options({})
    assert _curriculum_line(0.0, 0.0, "ฎฏ", 0.25).endswith(
        "clean to severe. Every batch has 25% of its samples drawn from the plates whose registration holds ฎ or ฏ "
        "(--focus-letters, --focus-fraction).")
    assert "focus" not in _curriculum_line(0.15, 0.3, "", 0.0)
    # with the batch, each share is also the whole samples it draws (rounded half up, as draw_batch draws them)
    assert _curriculum_line(0.0, 0.3, "ฎฏ", 0.25, batch=64).endswith(
        "Every batch has 30% (19 of 64) of its samples drawn from the severe and harshest plates alone "
        "(--hard-fraction). Every batch has 25% (16 of 64) of its samples drawn from the plates whose registration "
        "holds ฎ or ฏ (--focus-letters, --focus-fraction).")


def test_focus_indices_are_the_plates_holding_the_letters_and_bad_focus_options_are_refused_before_any_work(
        tmp_path):
    import numpy as np

    from serve.plate.train import TrainConfig, check_shares, focus_count, focus_indices, train

    data = {"target": np.array(["กข12", "ฎค5", "", "9ฏ", "12", "ฏฎ1"])}
    assert focus_indices(data, "ฎฏ").tolist() == [1, 3, 5] and focus_indices(data, "1").tolist() == [0, 4, 5]
    assert focus_indices(data, "").tolist() == []
    assert focus_count(TrainConfig(batch=64, focus_letters="ฎ", focus_fraction=0.3)) == 19
    check_shares(TrainConfig(batch=64, focus_letters="ฎฏ", focus_fraction=0.25))  # passes
    for letters, share, hard, says in (
            ("ab", 0.25, 0.0, r"'ab' is not a registration character"),
            ("ฎ-", 0.25, 0.0, r"'-' is not a registration character"),
            ("ฎฏ", 0.0, 0.0, r"give both .* or neither"),
            ("", 0.25, 0.0, r"give both .* or neither"),
            ("ฎ", 0.001, 0.0, r"--focus-fraction 0.001 of a batch of 64 is no sample .* at least 0.00781"),
            ("ฎ", 0.5, 0.6, r"fill 38 \+ 32 of a batch of 64 \(each share rounded to whole samples\): give shares "
                        r"that fill at most 64 together")):
        cfg = TrainConfig(samples=16, val_samples=8, steps=1, batch=64, workers=1, threads=1, focus_letters=letters,
                          focus_fraction=share, hard_fraction=hard)
        with pytest.raises(ValueError, match=says):
            check_shares(cfg)
        with pytest.raises(ValueError, match=says):
            train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "w.pt").exists()


def test_input_size_is_checked_and_kept_in_the_weights_config_only_when_not_the_default():
    import torch

    from serve.plate.model import INPUT_H, INPUT_W, LINE2_CLASSES, PlateNet, check_input_size

    assert check_input_size([96, 216]) == (96, 216) and check_input_size((INPUT_H, INPUT_W)) == (64, 160)
    for bad in ((100, 216), (96, 250), (16, 160), (96, 220), (96, 240), (152, 160), (96,), (96, 216, 1), "96x216", None,
                (96.5, 216), (float("inf"), 216)):  # above 144 x 216 the service would hand it enlarged plates
        with pytest.raises(ValueError, match="multiple of 8"):
            check_input_size(bad)
    assert "input_size" not in PlateNet().config  # a default-size network's config names no size, as before the option
    net = PlateNet(input_size=(96, 216)).eval()
    assert net.config["input_size"] == [96, 216] and net.input_size == (96, 216)
    with torch.inference_mode():
        logits, l2, veh = net(torch.zeros(2, 1, 96, 216))
    assert logits.shape[:2] == (2, 3 * 54) and l2.shape == (2, len(LINE2_CLASSES)) and veh.shape == (2, 2)


def test_a_network_of_another_input_size_trains_saves_loads_and_reads_at_its_size(tmp_path):
    from serve.plate.model import Recogniser, load_net
    from serve.plate.train import (
        DATA_VERSION,
        TrainConfig,
        _checkpoint_path,
        _init_lines,
        _stage_options,
        _trained_line,
        make_sample,
        train,
    )

    small, big = make_sample(7), make_sample(7, (96, 216))
    assert small[0].shape == (64, 160) and big[0].shape == (96, 216) and small[1:] == big[1:]  # the same sample
    cfg = TrainConfig(samples=16, val_samples=8, steps=1, batch=8, workers=1, threads=1, input_size=(96, 216))
    res = train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert res["config"]["input_size"] == (96, 216)
    folders = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir())
    assert folders == [f"train-v{DATA_VERSION}-0-96x216", f"val-v{DATA_VERSION}-50000000-96x216"]  # at that size
    net, _ = load_net(tmp_path / "w.pt")
    assert net.input_size == (96, 216)
    rec = Recogniser(tmp_path / "w.pt")
    assert rec.input_size == (96, 216) and len(rec.recognise([big[0], small[0]])) == 2  # any size is resized to it
    # the default size keeps the checkpoint key of a run that never named it
    plain = TrainConfig(samples=16, steps=1)
    assert _checkpoint_path(tmp_path, plain, None) == _checkpoint_path(tmp_path, replace(plain, input_size=(64, 160)),
                                                                       None)
    assert _checkpoint_path(tmp_path, plain, None) != _checkpoint_path(tmp_path, replace(plain, input_size=(96, 216)),
                                                                       None)
    # the model card's recipe rebuilds the size (nothing said at the default)
    assert _stage_options(res["config"]).endswith(", input 96 x 216 (--input-size 96x216)")
    assert "input" not in _stage_options({**res["config"], "input_size": [64, 160]})
    # a stage whose --init has another size starts from that network resized, and says so
    said: list[str] = []
    res2 = train(replace(cfg, init=str(tmp_path / "w.pt"), input_size=(64, 160)), cache=tmp_path / "cache",
                 out=tmp_path / "w2.pt", progress=False, log=said.append)
    assert res2["config"]["input_size"] == (64, 160) and load_net(tmp_path / "w2.pt")[0].input_size == (64, 160)
    assert any("the --init weights read plates at 96x216; starting from them resized" in line for line in said)
    # asked again, the finished run at its own size is found (its checkpoint key is not the 96 x 216 run's)
    again = train(replace(cfg, init=str(tmp_path / "w.pt"), input_size=(64, 160)), cache=tmp_path / "cache",
                  out=tmp_path / "w2.pt", progress=False)
    assert again["written"] is False and again["sha256"] == res2["sha256"]
    # the card's recipe says the stage was resized, back to the default size too (else following it would keep 96 x 216)
    assert _stage_options(res2["config"], {"input_size": [96, 216]}).endswith(
        ", input 64 x 160, resized from the start's 96 x 216 (--input-size 64x160)")
    assert _stage_options({"input_size": [80, 192]}, {}).endswith(  # a start that predates the option: 64 x 160
        ", input 80 x 192, resized from the start's 64 x 160 (--input-size 80x192)")
    assert "input" not in _stage_options({"input_size": [64, 160]}, {})
    assert "resized from the start's 96 x 216 (--input-size 64x160)" in _trained_line(load_net(tmp_path / "w2.pt")[1])
    chain = _init_lines({"sha256": "a" * 64, "config": {"input_size": [96, 216]}, "init": {"config": {}}})
    assert "input 96 x 216, resized from the start's 64 x 160 (--input-size 96x216)" in chain[0]
    # a refused option is one error, not a resize said first
    said.clear()
    with pytest.raises(ModelWeightsError, match="keeps its network's channels"):
        train(replace(cfg, init=str(tmp_path / "w.pt"), input_size=(80, 192), channels=(16, 24, 48, 96)),
              cache=tmp_path / "cache", out=tmp_path / "w3.pt", progress=False, log=said.append)
    assert said == [] and not (tmp_path / "w3.pt").exists()


def test_a_network_resized_to_another_input_size_keeps_its_weights_and_still_reads(tmp_path):
    """serve.plate.model.resized: the size-free tensors copied, the row prior and the second-line classifier resampled;
    the shipped network (96 x 216; figures measured with stage 10) resized back to stage 9's 80 x 192, before any
    training step, still reads most validation crops (measured 96.5 % of 200 clean, against 98.5 % for the shipped
    network itself; stage 9 resized up to 96 x 216 read 97.5 %, stage 8 up to 80 x 192 95.5 %; at least 80 % of 48
    asserted, to leave room for the seeds drawn)."""
    import torch

    from serve.plate.evaluate import score
    from serve.plate.model import resized, save_weights
    from serve.plate.ocr import LearnedEngine
    from serve.plate.render import render_plate
    from serve.plate.service import PlateService

    net, meta = load_net()
    assert net.input_size == (96, 216)
    small = resized(net, (80, 192))
    a, b = net.state_dict(), small.state_dict()
    assert small.input_size == (80, 192) and small.config == {**net.config, "input_size": [80, 192]}
    changed = sorted(k for k in a if a[k].shape != b[k].shape)
    assert changed == ["l2_fc.weight", "row_prior"]
    assert all(torch.equal(a[k], b[k]) for k in a if k not in changed)
    assert b["row_prior"].shape == (4, 10) and torch.allclose(b["row_prior"][:, [0, -1]], a["row_prior"][:, [0, -1]])
    assert b["l2_fc.weight"].shape == (a["l2_fc.weight"].shape[0], 32 * 48)
    # a feature spread evenly over the plate gives about the same second-line logits at both sizes (the linear
    # resampling weights the end columns half: within 1 % of the largest logit)
    x, y = torch.ones(32 * 54) @ a["l2_fc.weight"].T, torch.ones(32 * 48) @ b["l2_fc.weight"].T
    assert (x - y).abs().max() < 0.01 * x.abs().max() and x.argmax() == y.argmax()
    same = resized(net, net.input_size)
    assert all(torch.equal(v, same.state_dict()[k]) for k, v in a.items())
    save_weights(small, tmp_path / "small.pt", meta)  # with the shipped confidence threshold
    svc = PlateService(engine=LearnedEngine(tmp_path / "small.pt"))
    crops = [render_plate(500_000 + i, "clean", fonts="train") for i in range(48)]
    right = sum(score(c.plate, r)[0] for c, r in zip(crops, svc.read_crops([c.image for c in crops]), strict=True))
    assert right >= 0.8 * len(crops), right


def test_channels_are_checked_and_a_network_of_other_channels_reads():
    import torch

    from serve.plate.model import CHANNELS, PlateNet, check_channels

    assert CHANNELS == (24, 32, 64, 96) and PlateNet().config["channels"] == [24, 32, 64, 96]
    assert check_channels([16, 24, 48, 96]) == (16, 24, 48, 96) and check_channels((8, 8, 256, 256)) == (8, 8, 256, 256)
    for bad in ((16, 24, 48), (16, 24, 48, 96, 128), (12, 24, 48, 96), (0, 24, 48, 96), (-16, 24, 48, 96),
                (16, 24, 48, 264), (16.5, 24, 48, 96), ("16", 24, 48, 96), "16,24,48,96", None, 16):
        with pytest.raises(ValueError, match="each a multiple of 8 from 8 to 256"):
            check_channels(bad)
    net = PlateNet(channels=(16, 24, 48, 96), input_size=(96, 216)).eval()
    assert net.config["channels"] == [16, 24, 48, 96] and net.features[0][0].out_channels == 16
    with torch.inference_mode():
        logits, _l2, _veh = net(torch.zeros(2, 1, 96, 216))
    assert logits.shape[:2] == (2, 3 * 54)


def test_the_row_prior_spread_scales_with_the_input_height_and_is_unchanged_at_the_default():
    import torch

    from serve.plate.model import PlateNet

    def prior_before(h):  # the prior as PlateNet made it before its spread scaled (1.2 rows at every size)
        centres = torch.tensor([0.2, 0.5, 0.8, 0.78]) * (h - 1)
        ys = torch.arange(h, dtype=torch.float32)
        return -((ys[None, :] - centres[:, None]) ** 2) / (2 * 1.2 ** 2)

    default = PlateNet().row_prior.detach()
    assert default.shape == (4, 8) and torch.equal(default, prior_before(8))  # bit for bit
    big = PlateNet(input_size=(96, 216)).row_prior.detach()  # 12 feature rows: spread 1.2 * 12 / 8 = 1.8
    centres = torch.tensor([0.2, 0.5, 0.8, 0.78]) * 11
    want = -((torch.arange(12.0)[None, :] - centres[:, None]) ** 2) / (2 * 1.8 ** 2)
    assert big.shape == (4, 12) and torch.allclose(big, want) and not torch.allclose(big, prior_before(12))


def _augment_before(x, rng):
    """_augment as it was before its shifts scaled with the crop size (a verbatim copy)."""
    n = len(x)
    f = x.astype(np.float32)
    for i in np.flatnonzero(rng.random(n) < 0.3):
        f[i] = np.roll(f[i], (int(rng.integers(-3, 4)), int(rng.integers(-4, 5))), axis=(0, 1))
    g = np.where(rng.random(n) < 0.25, rng.uniform(0.6, 1.6, n), 1.0).astype(np.float32)[:, None, None]
    f = 255.0 * (f / 255.0) ** g
    sigma = np.where(rng.random(n) < 0.3, rng.uniform(2.0, 10.0, n), 0.0).astype(np.float32)[:, None, None]
    f += rng.standard_normal(f.shape, dtype=np.float32) * sigma
    return np.clip(f, 0, 255).astype(np.uint8)


class _SpyRng:
    """A numpy Generator that records the bounds of each ``integers`` call (the augmentation's shifts)."""

    def __init__(self, seed):
        self.rng, self.bounds = np.random.default_rng(seed), []

    def integers(self, lo, hi=None, *args, **kwargs):
        self.bounds.append((lo, hi))
        return self.rng.integers(lo, hi, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.rng, name)


def test_the_augmentation_shifts_scale_with_the_crop_size_and_are_unchanged_at_the_default():
    from serve.plate.train import _augment

    crops = np.random.default_rng(5).integers(0, 256, (64, 64, 160), dtype=np.uint8)
    for seed in range(6):  # the same draws and values as before at the default size
        assert np.array_equal(_augment(crops, np.random.default_rng(seed)),
                              _augment_before(crops, np.random.default_rng(seed))), seed
    spy = _SpyRng(0)
    _augment(crops, spy)
    assert len(spy.bounds) > 20 and set(spy.bounds) == {(-3, 4), (-4, 5)}  # row then column shift, +-3 and +-4
    big = np.random.default_rng(5).integers(0, 256, (64, 96, 216), dtype=np.uint8)
    spy = _SpyRng(0)
    out = _augment(big, spy)
    # round(3 * 96 / 64) = round(4.5) = 4 rows (half to even), round(4 * 216 / 160) = round(5.4) = 5 columns
    assert out.shape == big.shape and set(spy.bounds) == {(-4, 5), (-5, 6)}
    assert spy.bounds[0::2] == [(-4, 5)] * (len(spy.bounds) // 2)  # each crop: its row shift, then its column shift
    spy = _SpyRng(0)
    _augment(np.zeros((64, 128, 80), np.uint8), spy)  # round(6.0) rows, round(2.0) columns
    assert set(spy.bounds) == {(-6, 7), (-2, 3)}
    # the same crops are shifted at every size: the first draw picks them, as before
    assert len(spy.bounds) == 2 * int((np.random.default_rng(0).random(64) < 0.3).sum())


def test_the_loss_log_reads_deferred_losses_as_the_same_floats():
    import torch

    from serve.plate.train import LossLog

    losses = [torch.tensor(v, dtype=torch.float32, requires_grad=True) * 1.0 for v in (2.5, 1.0 / 3.0, 7e-5, 123.456)]
    now, later = LossLog(), LossLog(deferred=True)
    for i, loss in enumerate(losses):
        now.add(loss)
        later.add(loss)
        if i == 1:
            assert later.values() == now.values() == [float(t.detach()) for t in losses[:2]]
    assert len(later._pending) == 2 and len(now._pending) == 0  # read only when asked, without their graphs
    assert not any(t.requires_grad for t in later._pending)
    assert later.values() == now.values() == [float(t.detach()) for t in losses] and not later._pending
    assert later.values() == now.values() and len(now.values()) == 4  # asking again reads nothing new


def test_narrower_channels_train_save_load_read_and_keep_the_default_checkpoint_key(tmp_path):
    import hashlib
    import json
    from dataclasses import asdict

    from serve.plate.model import CHANNELS, save_weights
    from serve.plate.train import DATA_VERSION, TrainConfig, _checkpoint_path, _stage_options, finished_weights, train

    cfg = TrainConfig(samples=16, val_samples=8, steps=1, batch=8, workers=1, threads=1, channels=(16, 24, 48, 96))
    res = train(cfg, cache=tmp_path / "cache", out=tmp_path / "w.pt", progress=False)
    assert res["config"]["channels"] == (16, 24, 48, 96) and res["config"]["input_size"] == (64, 160)
    net, _ = load_net(tmp_path / "w.pt")
    assert net.config["channels"] == [16, 24, 48, 96] and net.features[0][0].out_channels == 16
    reads = Recogniser(tmp_path / "w.pt").recognise([np.zeros((150, 340, 3), np.uint8)] * 2)
    assert len(reads) == 2
    # the checkpoint of that run is keyed by its channels; the default or None leaves every existing key as it was
    resolved = TrainConfig(**res["config"])
    assert [p.name for p in (tmp_path / "cache").glob("ckpt-*.pt")] == [_checkpoint_path(tmp_path / "cache",
                                                                                         resolved, None).name]
    for plain in (TrainConfig(samples=16, steps=1), TrainConfig(samples=16, steps=1, bf16=True, res_blocks=1,
                                                                input_size=(96, 216))):
        before = {k: v for k, v in asdict(plain).items()  # the key as computed before --channels and --hard-fraction
                  if k not in ("checkpoint_every", "workers", "threads", "device", "channels", "hard_fraction",
                               "focus_letters", "focus_fraction")
                  and not (k in ("bf16", "res_blocks") and not v)
                  and not (k == "input_size" and (v is None or tuple(v) == (64, 160)))}
        before["init"] = None
        old = f"ckpt-v{DATA_VERSION}-{hashlib.sha256(json.dumps(before).encode()).hexdigest()[:12]}.pt"
        assert _checkpoint_path(tmp_path, plain, None).name == old
        assert _checkpoint_path(tmp_path, replace(plain, channels=CHANNELS), None).name == old
        assert _checkpoint_path(tmp_path, replace(plain, channels=[24, 32, 64, 96]), None).name == old
        assert _checkpoint_path(tmp_path, replace(plain, channels=(16, 24, 48, 96)), None).name != old
    # the model card's recipe rebuilds the channels (nothing said at the default)
    assert _stage_options(res["config"]).endswith(", channels 16, 24, 48, 96 (--channels 16,24,48,96)")
    assert "channels" not in _stage_options({**res["config"], "channels": [24, 32, 64, 96]})
    assert "channels" not in _stage_options({k: v for k, v in res["config"].items() if k != "channels"})
    # a fine-tuning stage keeps its network's channels: None takes them, others are refused naming both
    with pytest.raises(ModelWeightsError, match=r"^--channels 24,32,64,96: the --init weights .*w\.pt have channels "
                                                r"16,24,48,96, and a fine-tuning stage keeps its network's channels"):
        train(replace(cfg, init=str(tmp_path / "w.pt"), channels=(24, 32, 64, 96)), cache=tmp_path / "cache",
              out=tmp_path / "w2.pt", progress=False)
    assert not (tmp_path / "w2.pt").exists()
    tuned = train(replace(cfg, init=str(tmp_path / "w.pt"), channels=None), cache=tmp_path / "cache",
                  out=tmp_path / "w2.pt", progress=False)
    assert tuned["config"]["channels"] == (16, 24, 48, 96) and tuned["init"]["sha256"] == res["sha256"]
    # weights whose record predates --channels still count as the finished run (default-channel runs written before
    # this option keep their weights when asked again)
    meta = {k: v for k, v in res.items() if k in ("config", "data_version", "validation", "init", "min_confidence",
                                                   "alphabet", "line2_classes", "seconds", "cpu_seconds",
                                                   "trained_at")}
    save_weights(net, tmp_path / "old.pt", {**meta, "config": {k: v for k, v in res["config"].items()
                                                                if k != "channels"}})
    assert finished_weights(tmp_path / "old.pt", resolved, None) is not None
    assert finished_weights(tmp_path / "old.pt", replace(resolved, steps=2), None) is None


def _stage_meta(seed: int, init: dict | None = None) -> dict:
    """The metadata of a tiny stage as train() writes it (the fields the model card reads)."""
    from serve.plate.train import DATA_VERSION

    return {"config": {"seed": seed, "samples": 8, "steps": 1, "batch": 8, "lr": 0.001, "threads": 1},
            "data_version": DATA_VERSION, "trained_at": f"2026-12-03T0{seed}:00:00Z", "seconds": {"train": seed},
            "init": init}


def test_average_weights_writes_the_mean_of_the_weights_its_threshold_and_their_records(tmp_path):
    import torch

    from serve.plate.model import PlateNet, load_net, save_weights, sha256_of
    from serve.plate.train import _averaged_lines, average_weights

    torch.manual_seed(0)
    nets = [PlateNet(channels=(8, 8, 16, 16)) for _ in range(2)]
    start = {"sha256": "s" * 64, **_stage_meta(0)}  # both fine-tuned from one start
    for k, net in enumerate(nets, 1):
        save_weights(net, tmp_path / f"{k}.pt", _stage_meta(k, start))
    res = average_weights([tmp_path / "1.pt", tmp_path / "2.pt"], out=tmp_path / "avg.pt", seed=3, val_samples=8,
                          cache=tmp_path / "cache", workers=1, progress=False)
    avg, meta = load_net(tmp_path / "avg.pt")
    first, second = (n.state_dict() for n in nets)
    for k, v in avg.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, (first[k] + second[k]) / 2), k
    assert res["sha256"] == sha256_of(tmp_path / "avg.pt") and res["written"] is True
    assert [p["sha256"] for p in meta["averaged"]] == [sha256_of(tmp_path / "1.pt"), sha256_of(tmp_path / "2.pt")]
    assert meta["averaged"][1]["config"]["seed"] == 2 and meta["init"] is None
    assert meta["config"]["seed"] == 3 and meta["config"]["channels"] == [8, 8, 16, 16]
    assert meta["validation"]["n"] + meta["validation"]["negatives"] == 8  # seed 3's validation renders
    assert meta["min_confidence"] == meta["validation"]["min_confidence"]
    # the model card says how it was made and lists both averaged weights, then how to rebuild it
    lines = _averaged_lines(meta)
    assert lines[0].startswith(f"- averaged {meta['trained_at']} by `ssz train plates-average --seed 3 --val-samples "
                               "8` (the confidence threshold chosen on those validation renders): the uniform mean of "
                               "the parameters of 2 weights")
    assert lines[1].startswith(f"- averaged weights 1: `{meta['averaged'][0]['sha256'][:16]}...` (trained "
                               "2026-12-03T01:00:00Z: seed 1, 8 renders of data version")
    assert lines[2].startswith(f"- fine-tuned from weights `{'s' * 16}...` (trained 2026-12-03T00:00:00Z: seed 0,")
    assert lines[3].startswith(f"- averaged weights 2: `{meta['averaged'][1]['sha256'][:16]}...` (trained "
                               "2026-12-03T02:00:00Z: seed 2,")
    assert lines[4] == f"- fine-tuned from weights `{'s' * 16}...`, listed above"
    assert lines[5].startswith("- the 3 stages together and the average are what `ssz train plates` and `ssz train "
                               "plates-average` cost from scratch: run `ssz train plates` without --init") and \
        "and `ssz train plates-average` with the options given on the weights it names" in lines[5]
    assert len(lines) == 6


def test_a_card_lists_a_stage_shared_by_averaged_weights_once_and_a_stage_fine_tuned_from_an_average():
    from serve.plate.train import _averaged_lines, _init_lines

    start = {"sha256": "s" * 64, **_stage_meta(1)}
    meta = {"config": {"seed": 14, "val_samples": 3000}, "trained_at": "2026-12-03T09:00:00Z",
            "averaged": [{"sha256": "a" * 64, **_stage_meta(2, start), "rebuild_note": "rebuilt at commit abc"},
                         {"sha256": "b" * 64, **_stage_meta(3, start)}]}
    lines = _averaged_lines(meta)
    assert lines[1].startswith(f"- averaged weights 1: `{'a' * 16}...` (trained 2026-12-03T02:00:00Z: seed 2,")
    assert lines[1].endswith("1 torch thread(s); rebuilt at commit abc)")
    assert lines[2].startswith(f"- fine-tuned from weights `{'s' * 16}...` (trained 2026-12-03T01:00:00Z: seed 1,")
    assert lines[3].startswith(f"- averaged weights 2: `{'b' * 16}...` (trained 2026-12-03T03:00:00Z")
    assert lines[4] == f"- fine-tuned from weights `{'s' * 16}...`, listed above"
    assert lines[5].startswith("- the 3 stages together and the average are what") and len(lines) == 6
    # a stage fine-tuned from the average: the average, its weights, their shared start once
    chain = _init_lines({"sha256": "m" * 64, **meta, "init": None})
    assert chain[0] == (f"- fine-tuned from weights `{'m' * 16}...` (averaged 2026-12-03T09:00:00Z by `ssz train "
                        "plates-average --seed 14 --val-samples 3000` from 2 weights)")
    assert chain[1].startswith(f"- its averaged weights 1: `{'a' * 16}...`")
    assert chain[3].startswith(f"- its averaged weights 2: `{'b' * 16}...`") and chain[4].endswith("listed above")
    assert chain[5].startswith("- the 4 stages together and the average are what")
    # an average of that average and another stage lists the first average once
    twice = _averaged_lines({"config": {"seed": 1, "val_samples": 8}, "trained_at": "T",
                             "averaged": [{"sha256": "m" * 64, **meta}, {"sha256": "n" * 64, **_stage_meta(4, {
                                 "sha256": "m" * 64, **meta})}]})
    assert twice[-2] == f"- fine-tuned from weights `{'m' * 16}...`, listed above"
    assert twice[-1].startswith("- the 4 stages together and the 2 averages are what")


def test_average_weights_refuses_one_file_the_same_weights_twice_and_two_networks(tmp_path):
    from serve.plate.model import ModelWeightsError, PlateNet, save_weights
    from serve.plate.train import average_weights

    start = {"sha256": "s" * 64, **_stage_meta(0)}
    save_weights(PlateNet(channels=(8, 8, 16, 16)), tmp_path / "a.pt", _stage_meta(1, start))
    save_weights(PlateNet(channels=(8, 8, 16, 24)), tmp_path / "wide.pt", _stage_meta(2, start))
    save_weights(PlateNet(channels=(8, 8, 16, 16)), tmp_path / "apart.pt", _stage_meta(3))  # from scratch
    (tmp_path / "copy.pt").write_bytes((tmp_path / "a.pt").read_bytes())
    (tmp_path / "copy.sha256").write_bytes((tmp_path / "a.sha256").read_bytes().replace(b"a.pt", b"copy.pt"))
    for files, says in (([tmp_path / "a.pt"], "at least two weights files, got 1"),
                        ([tmp_path / "a.pt", tmp_path / "copy.pt"], "is given twice"),
                        ([tmp_path / "a.pt", tmp_path / "wide.pt"], "is another network than"),
                        ([tmp_path / "a.pt", tmp_path / "apart.pt"], "share no stage they were fine-tuned from")):
        with pytest.raises(ValueError, match=says):
            average_weights(files, out=tmp_path / "avg.pt", cache=tmp_path / "cache", progress=False)
    with pytest.raises(ValueError, match=r"--out .*a\.pt is one of the averaged files"):  # it would lose a stage
        average_weights([tmp_path / "a.pt", tmp_path / "wide.pt"], out=tmp_path / "a.pt", cache=tmp_path / "cache",
                        progress=False)
    with pytest.raises(ValueError, match=r"weights file ~nosuchuser-ssz/a\.pt: .* give the full path"):
        average_weights([tmp_path / "a.pt", "~nosuchuser-ssz/a.pt"], out=tmp_path / "avg.pt", progress=False)
    with pytest.raises(ModelWeightsError, match=r"missing\.pt"):
        average_weights([tmp_path / "a.pt", tmp_path / "missing.pt"], out=tmp_path / "avg.pt",
                        cache=tmp_path / "cache", progress=False)
    assert not (tmp_path / "avg.pt").exists() and not (tmp_path / "cache").exists()  # refused before any work


def test_average_weights_takes_a_start_with_its_own_fine_tune(tmp_path):
    """A stage averaged with the weights it was fine-tuned from shares that start (it is one of them)."""
    from serve.plate.model import PlateNet, save_weights, sha256_of
    from serve.plate.train import average_weights

    save_weights(PlateNet(channels=(8, 8, 16, 16)), tmp_path / "start.pt", _stage_meta(1))
    start = {"sha256": sha256_of(tmp_path / "start.pt"), **_stage_meta(1)}
    save_weights(PlateNet(channels=(8, 8, 16, 16)), tmp_path / "tuned.pt", _stage_meta(2, start))
    res = average_weights([tmp_path / "start.pt", tmp_path / "tuned.pt"], out=tmp_path / "avg.pt", seed=3,
                          val_samples=8, cache=tmp_path / "cache", workers=1, progress=False)
    assert [p["sha256"] for p in res["averaged"]] == [start["sha256"], sha256_of(tmp_path / "tuned.pt")]


def test_a_path_of_an_unknown_users_home_is_a_clear_error(tmp_path):
    from serve.plate.train import TrainConfig, expanded, train

    assert expanded("~/w.pt", "--out").name == "w.pt" and not str(expanded("~/w.pt", "--out")).startswith("~")
    with pytest.raises(ValueError, match=r"--init ~nosuchuser-ssz/w\.pt: .* give the full path"):
        train(TrainConfig(samples=8, steps=1, init="~nosuchuser-ssz/w.pt"), cache=tmp_path / "c", out=tmp_path / "w.pt",
              progress=False)
