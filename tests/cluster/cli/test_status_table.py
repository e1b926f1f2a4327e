"""`ssz status` / `ssz run`'s status table on a real shard: a failed camera says why; ids are never markup."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from actors.detectors import LocalDetector
from actors.shard import ShardConfig, ShardCore
from actors.sources import CameraSpec
from cluster.cli.run import status_table
from tests.actors.sources.clips import encode


def test_the_status_table_shows_why_a_camera_failed_and_prints_any_id(tmp_path: Path) -> None:
    good = encode(tmp_path / "good.mp4", [(160, 120)] * 3)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cams = [CameraSpec(id="gate [/north]", url=str(good)), CameraSpec(id="cam [red]2", url=str(empty))]
    core = ShardCore(ShardConfig(shard_id="s[/]1", cameras=cams, block_when_full=True),
                     LocalDetector(lambda images: [[] for _ in images])).start()
    try:
        deadline = time.time() + 30
        while not core.finished() and time.time() < deadline:
            time.sleep(0.05)
        stats = [core.stats()]
    finally:
        core.stop()
    console = Console(record=True, width=400)
    console.print(status_table(stats))  # "[/north]" and "[/]" raised rich.errors.MarkupError
    text = console.export_text()
    assert "gate [/north]" in text and "cam [red]2" in text and "s[/]1" in text
    assert "failed: camera cam [red]2: video file" in text and "is empty (0 bytes)" in text
