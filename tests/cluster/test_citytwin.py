"""The twin a notebook reads: built when missing, registry layers added to field data committed before a build."""

from __future__ import annotations

import pyarrow as pa
import pytest

from cluster import citytwin
from cluster.city import CityModel
from cluster.citytwin import TwinNotBuilt, twin_snapshot
from cluster.sim.fielddata import demo_layers
from twin.layers import TwinState
from twin.snapshots import SnapshotStore

pytestmark = pytest.mark.services  # a real S3 store and a city's street graph


def test_field_data_before_any_build_gets_the_registry_layers_and_keeps_its_own(s3_store: object,
                                                                              capsys: pytest.CaptureFixture[str]
                                                                              ) -> None:
    model = CityModel.load("sukhothai")
    alerts = demo_layers(model, seed=3)["alerts"]
    st = TwinState(model.id)
    st.append_table("alerts", pa.Table.from_pandas(alerts, preserve_index=False), strict=True)
    snaps = SnapshotStore(s3_store, model.id)  # type: ignore[arg-type]
    field_only = snaps.create(st, message="a run's alerts, no twin built yet")
    snap = twin_snapshot(model, message="test")
    assert snap.manifest.author.startswith("notebook")  # not marked as `ssz twin build`
    assert f"snapshot {snap.id}" in capsys.readouterr().out  # says what it committed
    assert snap.id != field_only.id
    assert snap.table("cameras").num_rows == model.config.camera_count > 0
    assert snap.table("zones").num_rows == 1
    assert snap.table("alerts").num_rows == len(alerts)  # the run's alerts are kept
    assert twin_snapshot(model).id == snap.id  # a twin with cameras is read as it is


def test_an_external_store_is_only_read_a_twin_with_no_camera_is_a_clear_error(
        s3_store: object, monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = SnapshotStore(s3_store, "betong")  # type: ignore[arg-type]  # no test builds betong's twin
    monkeypatch.setattr(citytwin, "_store_is_embedded", lambda: False)
    with pytest.raises(TwinNotBuilt, match=r"run `ssz twin build --city betong`"):
        twin_snapshot("betong")
    assert snaps.latest() is None  # nothing committed
