"""Tracker and confirmer: one crossing = one track, k-frame confirmation, cooldown, neighbour dedupe."""

from __future__ import annotations

import numpy as np
import pytest

from actors.tracker import (
    Box,
    Confirmer,
    ConfirmerConfig,
    Detection,
    IoUTracker,
    TrackerConfig,
    alert_id,
    iou_matrix,
)


def walk(x0: float, y: float, dx: float, n: int, w: float = 40, h: float = 80) -> list[Box]:
    """Boxes of a person walking ``dx`` pixels per (sampled) frame."""
    return [(x0 + i * dx, y, x0 + i * dx + w, y + h) for i in range(n)]


def test_iou_matrix_values() -> None:
    m = iou_matrix([(0, 0, 10, 10), (0, 0, 10, 10)], [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)])
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(1.0) and m[0, 1] == pytest.approx(50 / 150) and m[0, 2] == 0
    assert iou_matrix([], [(0, 0, 1, 1)]).shape == (0, 1)


def test_one_person_crossing_is_one_track_two_people_two_tracks() -> None:
    t = IoUTracker("cam1")
    a = walk(0, 100, 15, 20)  # overlapping boxes frame to frame
    b = walk(600, 300, -25, 20)  # faster, little overlap at 2 fps: centre fallback keeps it
    ids_a, ids_b = set(), set()
    for i in range(20):
        out = t.update([Detection(b[i]), Detection(a[i])], ts=i * 0.5)
        ids_b.add(out[0][0])
        ids_a.add(out[1][0])
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_crossing_tracks_do_not_swap_and_labels_never_mix() -> None:
    t = IoUTracker("cam1")
    left = walk(0, 100, 20, 10)
    right = walk(400, 100, -20, 10)
    first = t.update([Detection(left[0]), Detection(right[0])], 0.0)
    lid, rid = first[0][0], first[1][0]
    for i in range(1, 10):
        out = t.update([Detection(right[i]), Detection(left[i])], i * 0.5)  # order shuffled
        assert out[0][0] == rid and out[1][0] == lid
    car = t.update([Detection(left[9], label="plate")], 5.0)
    assert car[0][0] not in (lid, rid)


def test_tracks_expire_and_a_new_crossing_is_a_new_track() -> None:
    t = IoUTracker("cam1", TrackerConfig(max_age_s=2.0))
    box = (100, 100, 140, 180)
    tid1 = t.update([Detection(box)], 0.0)[0][0]
    assert t.update([Detection(box)], 1.5)[0][0] == tid1
    tid2 = t.update([Detection(box)], 5.0)[0][0]
    assert tid2 != tid1 and t.ended == 1
    # deterministic ids: same camera and frame time -> same id (a restarted shard replays the same ids)
    assert IoUTracker("cam1").update([Detection(box)], 5.0)[0][0] == tid2


def test_confirmation_needs_k_matching_frames_of_one_track() -> None:
    c = Confirmer(ConfirmerConfig(min_matches=3, cooldown_s=60))
    assert c.observe("cam1", "t1", "wanted-7", 0.8, 0.0) is None
    assert c.observe("cam1", "t1", "other-2", 0.9, 0.5) is None  # another subject does not add up
    assert c.observe("cam1", "t1", "wanted-7", 0.9, 1.0) is None
    d = c.observe("cam1", "t1", "wanted-7", 0.7, 1.5)
    assert d is not None and d.decision == "alert" and d.n_matches == 3 and d.score == pytest.approx(0.9)
    assert d.first_ts == 0.0 and d.alert_id == alert_id("cam1", "t1", "wanted-7")
    assert c.observe("cam1", "t1", "wanted-7", 0.9, 2.0) is None  # one alert per track and subject
    # low-score matches do not count when a floor is set
    c2 = Confirmer(ConfirmerConfig(min_matches=2, min_match_score=0.5))
    assert c2.observe("c", "t", "s", 0.4, 0) is None and c2.observe("c", "t", "s", 0.4, 1) is None


def test_cooldown_per_subject_and_camera() -> None:
    c = Confirmer(ConfirmerConfig(min_matches=1, cooldown_s=60, neighbour_window_s=0))
    first = c.observe("cam1", "t1", "s1", 0.9, 100.0)
    assert first is not None and first.decision == "alert"
    again = c.observe("cam1", "t2", "s1", 0.9, 130.0)
    assert again is not None and again.decision == "suppressed-cooldown" and again.duplicate_of == first.alert_id
    assert c.observe("cam2", "t3", "s1", 0.9, 131.0).decision == "alert"  # other camera: own cooldown
    assert c.observe("cam1", "t4", "s2", 0.9, 132.0).decision == "alert"  # other subject
    assert c.observe("cam1", "t5", "s1", 0.9, 161.0).decision == "alert"  # cooldown over


def test_neighbour_dedupe_by_list_and_by_distance() -> None:
    c = Confirmer(ConfirmerConfig(min_matches=1, neighbours={"cam1": ["cam2"]}, neighbour_window_s=30))
    a = c.observe("cam1", "t1", "s1", 0.9, 0.0)
    b = c.observe("cam2", "t9", "s1", 0.9, 10.0)  # symmetric list
    assert b.decision == "suppressed-neighbour" and b.duplicate_of == a.alert_id
    assert c.observe("cam3", "t3", "s1", 0.9, 11.0).decision == "alert"  # not a neighbour
    assert c.observe("cam2", "t4", "s1", 0.9, 45.0).decision == "alert"  # window over
    # distance: 0.0005 deg of latitude is ~55 m
    pos = {"a": (100.50, 7.00), "b": (100.50, 7.0005), "far": (100.51, 7.00)}
    d = Confirmer(ConfirmerConfig(min_matches=1, neighbour_distance_m=80), positions=pos)
    assert d.neighbours_of("a") == {"b"}
    assert d.observe("a", "t", "s", 1, 0).decision == "alert"
    assert d.observe("b", "t", "s", 1, 5).decision == "suppressed-neighbour"
    assert d.observe("far", "t", "s", 1, 6).decision == "alert"


def test_end_to_end_tracked_frames_to_one_alert() -> None:
    """A watchlisted person crosses cam1 over 12 sampled frames, matched in 5 of them: exactly one alert."""
    tr = IoUTracker("cam1")
    conf = Confirmer(ConfirmerConfig(min_matches=3))
    rng = np.random.default_rng(0)
    decisions = []
    for i, box in enumerate(walk(0, 50, 18, 12)):
        matched = i in (2, 4, 5, 8, 11)
        dets = [Detection(box, subject_id="wanted-1" if matched else None, match_score=0.8 if matched else 0)]
        x = float(rng.integers(300, 600))
        dets.append(Detection((x, 400.0, x + 30, 460.0)))  # an unmatched passer-by elsewhere in the view
        decisions += conf.observe_frame("cam1", tr.update(dets, ts=i * 0.5), ts=i * 0.5)
    assert [d.decision for d in decisions] == ["alert"]
    assert decisions[0].ts == 2.5 and decisions[0].first_ts == 1.0


def test_tracker_and_confirmer_state_round_trips() -> None:
    """A restarted shard restores both and carries on: same track id, pending counts kept, cooldown kept."""
    import json

    t = IoUTracker("cam1")
    c = Confirmer(ConfirmerConfig(min_matches=3, cooldown_s=60))
    boxes = walk(0, 50, 10, 6)
    tid = t.update([Detection(boxes[0])], 0.0)[0][0]
    t.update([Detection(boxes[1])], 0.5)
    assert c.observe("cam1", tid, "W-1", 0.8, 0.0) is None and c.observe("cam1", tid, "W-1", 0.8, 0.5) is None
    assert c.observe("cam1", "other", "W-2", 0.9, 0.5) is None
    for k in range(3):
        c.observe("cam1", "old", "W-9", 0.9, k * 0.1)  # an alert raised before the crash
    t2, c2 = IoUTracker("cam1"), Confirmer(ConfirmerConfig(min_matches=3, cooldown_s=60))
    t2.load_state(json.loads(json.dumps(t.state())))
    c2.load_state(json.loads(json.dumps(c.state())))
    assert t2.update([Detection(boxes[2])], 1.0)[0][0] == tid
    d = c2.observe("cam1", tid, "W-1", 0.9, 1.0)  # third match: the two before the crash counted
    assert d is not None and d.decision == "alert" and d.n_matches == 3
    again = [c2.observe("cam1", "new", "W-9", 0.9, 5.0 + k) for k in range(3)]
    assert again[-1] is not None and again[-1].decision == "suppressed-cooldown"


def test_a_read_subject_keeps_a_fast_plate_on_its_track() -> None:
    """A car between sampled frames jumps farther than the box gate; the same hot-list read continues its track,
    an unread or different plate does not, and the link can be switched off."""
    boxes = [(100, 300, 210, 355), (140, 150, 255, 208), (180, 10, 300, 70)]  # no overlap, > 1 diagonal apart
    for link in (True, False):
        t = IoUTracker("lpr1", TrackerConfig(link_by_subject=link))
        ids = [t.update([Detection(b, 0.9, "plate", "H-1", 1.0)], i * 0.2)[0][0] for i, b in enumerate(boxes)]
        assert (len(set(ids)) == 1) is link
    t = IoUTracker("lpr1")
    first = t.update([Detection(boxes[0], 0.9, "plate", "H-1", 1.0)], 0.0)[0][0]
    assert t.update([Detection(boxes[1], 0.9, "plate", None, 0.0)], 0.2)[0][0] != first  # unread: box gate only
    assert t.update([Detection(boxes[2], 0.9, "plate", "H-2", 1.0)], 0.4)[0][0] != first  # another plate
    assert t.update([Detection(boxes[2], 0.9, "face", "H-1", 1.0)], 0.6)[0][0] != first  # labels never mix
    state = t.state()
    assert {s["subject_id"] for s in state} >= {"H-1", "H-2"}
    t2 = IoUTracker("lpr1")
    t2.load_state(state)
    assert t2.update([Detection((0, 0, 50, 20), 0.9, "plate", "H-1", 1.0)], 0.7)[0][0] == first


def test_plates_confirm_with_their_own_read_count() -> None:
    c = Confirmer(ConfirmerConfig(min_matches=3, min_matches_by_label={"plate": 2}))
    assert c.observe("lpr1", "t1", "H-1", 1.0, 0.0, label="plate") is None
    d = c.observe("lpr1", "t1", "H-1", 0.5, 0.2, label="plate")
    assert d is not None and d.decision == "alert" and d.n_matches == 2 and d.label == "plate"
    assert c.observe("cam1", "t2", "W-1", 0.8, 0.0) is None and c.observe("cam1", "t2", "W-1", 0.8, 0.5) is None
    assert c.observe("cam1", "t2", "W-1", 0.8, 1.0) is not None  # faces still need 3


def test_one_cameras_clock_never_expires_another_cameras_counts() -> None:
    """A shard's cameras do not share a clock (a simulated camera plays its scenario time, a file starts at 0, an RTSP
    stream where it started): a match on a camera whose stream time is far ahead must not reset the read count of a
    plate passing another camera. (``ssz eval --city hatyai --seed 0`` lost passes that way: face matches of
    hatyai-cam-0167 at scenario time 36,718 s came between the reads of hot-listed plate SIM-H-hatyai-015 at
    hatyai-lpr-032 at 23,842 s, and each reset its count to 1.)"""
    c = Confirmer(ConfirmerConfig(min_matches=3, min_matches_by_label={"plate": 2}, track_ttl_s=600))
    assert c.observe("lpr1", "lpr1:t", "H-15", 1.0, 23842.4, label="plate") is None
    assert c.observe("cam7", "cam7:t", "W-2", 0.9, 36718.1) is None  # 12,876 s ahead on its own clock
    d = c.observe("lpr1", "lpr1:t", "H-15", 1.0, 23842.6, label="plate")
    assert d is not None and d.decision == "alert" and d.n_matches == 2
    assert d.first_ts == 23842.4 and d.ts == 23842.6
    # the camera that is ahead keeps its own count too, though the other camera's clock is far behind it
    assert c.observe("cam7", "cam7:t", "W-2", 0.9, 36718.5) is None
    e = c.observe("cam7", "cam7:t", "W-2", 0.9, 36718.9)
    assert e is not None and e.decision == "alert" and e.n_matches == 3 and e.first_ts == 36718.1
    # counts still age on their own camera's clock: unseen for more than track_ttl_s there, a track starts again
    assert c.observe("lpr1", "lpr1:u", "H-1", 1.0, 30000.0, label="plate") is None
    assert c.observe("lpr1", "lpr1:v", "H-9", 1.0, 30700.0, label="plate") is None  # lpr1's clock moves on 700 s
    assert c.observe("lpr1", "lpr1:u", "H-1", 1.0, 30700.2, label="plate") is None  # the old count was forgotten
    f = c.observe("lpr1", "lpr1:u", "H-1", 1.0, 30700.4, label="plate")
    assert f is not None and f.n_matches == 2 and f.first_ts == 30700.2


def test_a_camera_whose_stream_restarts_at_0_confirms_again_and_its_old_state_ages_on_from_the_restart() -> None:
    """A camera's time going back (a stream restarted at pts 0, fed without the shard's StreamClock) moves what the
    camera holds back by the jump. Before, its clock stayed at the old time, so every new count was older than
    track_ttl_s on it and was forgotten at the next frame: the camera never alerted again for hours."""
    c = Confirmer(ConfirmerConfig(min_matches=3, cooldown_s=300, track_ttl_s=600))
    assert c.observe("A", "old", "S9", 0.9, 9990.0) is None  # an unconfirmed count: 10 s before the restart
    decided = [c.observe("A", "t1", "S1", 0.9, 10000.0 + k) for k in range(3)]
    assert [d and d.decision for d in decided] == [None, None, "alert"]
    # the stream restarts at pts 0: a new track confirms as on any camera
    decided = [c.observe("A", "t2", "S2", 0.9, float(k)) for k in range(3)]
    assert [d and d.decision for d in decided] == [None, None, "alert"]
    assert decided[2].first_ts == 0.0 and decided[2].n_matches == 3
    # the alert of S1, 0 s before the restart on the camera's continued clock, is still in its cooldown
    decided = [c.observe("A", "t3", "S1", 0.9, 3.0 + k) for k in range(3)]
    assert decided[2] is not None and decided[2].decision == "suppressed-cooldown"
    assert decided[2].reason == "S1 alerted on A 5s ago (cooldown 300s)"
    counts = {(cam, t, s): (n, first, last) for cam, t, s, n, _, first, last, _ in c.state()["counts"]}
    assert counts[("A", "old", "S9")] == (1, -12.0, -12.0)  # 10 s before the restart's last frame (t=10002)
    # ... until its end, 300 s after the alert on the camera's clock
    decided = [c.observe("A", "t4", "S1", 0.9, 300.0 + k) for k in range(3)]
    assert decided[2] is not None and decided[2].decision == "alert"
    # the old count expires track_ttl_s after its last frame on the continued clock, not hours later
    assert ("A", "old", "S9") in {tuple(r[:3]) for r in c.state()["counts"]}
    c.observe("A", "t5", "S5", 0.9, 589.0)
    assert ("A", "old", "S9") not in {tuple(r[:3]) for r in c.state()["counts"]}
    assert c.state()["clocks"] == {"A": 589.0}


def test_a_restored_confirmer_continues_each_cameras_clock() -> None:
    """The state keeps each camera's clock: a restored confirmer ages what it holds as the saved one would; a state
    saved without clocks takes each camera's latest held time (its alerts too, not only its pending counts)."""
    cfg = ConfirmerConfig(min_matches=2, cooldown_s=300, track_ttl_s=600)
    c = Confirmer(cfg)
    assert c.observe("A", "t1", "S1", 0.9, 1000.0) is None
    assert c.observe("A", "t1", "S1", 0.9, 1001.0).decision == "alert"
    assert c.observe("A", "t2", "S2", 0.9, 1500.0) is None
    c.observe("B", "u1", "S3", 0.9, 50.0)
    saved = c.state()
    assert saved["clocks"] == {"A": 1500.0, "B": 50.0}
    r = Confirmer(cfg)
    r.load_state(saved)
    assert r.state() == saved
    # the stream of A restarts at 0 after the restore: the cooldown of S1 (499 s old) is over on A's clock
    r.observe("A", "t3", "S1", 0.9, 0.0)
    assert r.observe("A", "t3", "S1", 0.9, 1.0).decision == "alert"
    # an older state, without clocks: B's clock is its alert's time, which a restart at 0 then moves back
    old = Confirmer(cfg)
    sent = ["S4", "B", "face-x", 2000.0]
    old.load_state({"counts": [], "last_alert": [sent], "recent": [sent]})
    assert old.state()["clocks"] == {"B": 2000.0}
    old.observe("B", "u2", "S4", 0.9, 10.0)
    d = old.observe("B", "u2", "S4", 0.9, 11.0)
    assert d.decision == "suppressed-cooldown" and d.reason == "S4 alerted on B 1s ago (cooldown 300s)"


def test_neighbour_dedupe_is_not_fooled_by_a_neighbour_whose_clock_is_far_ahead() -> None:
    """An alert of a neighbouring camera whose stream time is hours ahead is no duplicate 'within the window' (it
    suppressed every later alert of the subject, '-19900s ago'); within the window, either order is one."""
    c = Confirmer(ConfirmerConfig(min_matches=2, neighbours={"A": ["B"]}, neighbour_window_s=60))
    c.observe("A", "a1", "S1", 0.9, 20000.0)
    assert c.observe("A", "a1", "S1", 0.9, 20001.0).decision == "alert"
    c.observe("B", "b1", "S1", 0.9, 100.0)
    assert c.observe("B", "b1", "S1", 0.9, 101.0).decision == "alert"  # 19,900 s behind A's alert
    # clocks that agree: B confirms 30 s before the time of A's alert (its frames came later): a duplicate
    c.observe("B", "b2", "S2", 0.9, 500.0)
    assert c.observe("B", "b2", "S2", 0.9, 501.0).decision == "alert"
    c.observe("A", "a2", "S2", 0.9, 470.0)
    d = c.observe("A", "a2", "S2", 0.9, 471.0)
    assert d.decision == "suppressed-neighbour"
    assert d.reason == "S2 alerted on neighbouring camera B 30s after this frame (window 60s)"
