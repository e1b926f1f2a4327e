"""The analyst's copies of the shipped notebooks (``ssz lab``'s folder): made once, an analyst's change never
overwritten, a shipped change offered beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster import notebookcopies as nc


def _shipped(tmp_path: Path, text: str) -> Path:
    d = tmp_path / "shipped"
    d.mkdir(exist_ok=True)
    (d / "a.ipynb").write_text(text)
    return d


def test_every_shipped_notebook_is_copied_once_owner_only(tmp_path: Path) -> None:
    work = tmp_path / "work" / "notebooks"  # made with its parents
    r = nc.working_copies(work)
    names = sorted(p.name for p in nc.SHIPPED.glob("*.ipynb"))
    assert r.folder == work and r.copied == names and len(names) == 9 and not r.updated and not r.notices
    for n in names:
        assert (work / n).read_bytes() == (nc.SHIPPED / n).read_bytes()
        assert (work / n).stat().st_mode & 0o777 == 0o600
    assert sorted(json.loads((work / nc.RECORD).read_text())) == names
    again = nc.working_copies(work)
    assert (again.copied, again.updated, again.notices) == ([], [], [])


def test_an_edited_copy_is_never_overwritten_the_new_version_is_offered_beside_it(tmp_path: Path) -> None:
    shipped, work = _shipped(tmp_path, "v1"), tmp_path / "work"
    assert nc.working_copies(work, shipped).copied == ["a.ipynb"]
    (work / "a.ipynb").write_text("v1 and my analysis")
    assert nc.working_copies(work, shipped).notices == []  # shipped unchanged: nothing to say
    (shipped / "a.ipynb").write_text("v2")
    r = nc.working_copies(work, shipped)
    assert (work / "a.ipynb").read_text() == "v1 and my analysis" and (work / "a.new.ipynb").read_text() == "v2"
    assert r.notices == ["a.ipynb: the shipped version changed since your copy was made; yours is kept as it is "
                         "and the shipped one is beside it as a.new.ipynb (rename it over yours to take it, or "
                         "delete it)"]
    assert nc.working_copies(work, shipped).notices == []  # said once
    (work / "a.new.ipynb").unlink()  # declined: not offered again until the shipped version changes again
    assert nc.working_copies(work, shipped).notices == [] and not (work / "a.new.ipynb").exists()


def test_an_unchanged_copy_follows_the_shipped_version(tmp_path: Path) -> None:
    shipped, work = _shipped(tmp_path, "v1"), tmp_path / "work"
    nc.working_copies(work, shipped)
    (shipped / "a.ipynb").write_text("v2")
    r = nc.working_copies(work, shipped)
    assert r.updated == ["a.ipynb"] and not r.notices and (work / "a.ipynb").read_text() == "v2"
    assert not (work / "a.new.ipynb").exists()


def test_a_file_not_copied_by_ssz_lab_is_kept_and_an_offer_in_the_way_is_said_each_start(tmp_path: Path) -> None:
    shipped, work = _shipped(tmp_path, "v1"), tmp_path / "work"
    work.mkdir()
    (work / "a.ipynb").write_text("the analyst's own a")
    r = nc.working_copies(work, shipped)
    assert (work / "a.ipynb").read_text() == "the analyst's own a" and (work / "a.new.ipynb").read_text() == "v1"
    assert r.notices and "differs from your file of that name" in r.notices[0]
    (work / "a.new.ipynb").write_text("edited the offer")
    (shipped / "a.ipynb").write_text("v2")
    for _ in range(2):
        r = nc.working_copies(work, shipped)
        assert r.notices == ["a.ipynb: the shipped version changed since your copy was made, but a.new.ipynb is "
                             "in the way (a file you made or changed): rename or delete it and start ssz lab "
                             "again to get it"]
        assert (work / "a.new.ipynb").read_text() == "edited the offer"


def test_the_shipped_folder_or_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(nc.NotebookCopyError, match="the project's own notebooks folder"):
        nc.working_copies(nc.SHIPPED)
    (tmp_path / "f").write_text("")
    with pytest.raises(nc.NotebookCopyError, match=r"/f is a file, not a folder"):
        nc.working_copies(tmp_path / "f")


def test_an_older_offer_left_untouched_is_replaced_by_the_newer_one(tmp_path: Path) -> None:
    shipped, work = _shipped(tmp_path, "v1"), tmp_path / "work"
    nc.working_copies(work, shipped)
    (work / "a.ipynb").write_text("mine")
    (shipped / "a.ipynb").write_text("v2")
    nc.working_copies(work, shipped)
    (shipped / "a.ipynb").write_text("v3")
    r = nc.working_copies(work, shipped)
    assert (work / "a.new.ipynb").read_text() == "v3" and (work / "a.ipynb").read_text() == "mine"
    assert len(r.notices) == 1 and "beside it as a.new.ipynb" in r.notices[0]


def test_a_notebook_no_longer_shipped_is_kept_and_said_once(tmp_path: Path) -> None:
    shipped, work = _shipped(tmp_path, "v1"), tmp_path / "work"
    (shipped / "b.ipynb").write_text("b1")
    nc.working_copies(work, shipped)
    (shipped / "a.ipynb").rename(shipped / "a2.ipynb")  # renamed in a new version
    r = nc.working_copies(work, shipped)
    assert r.copied == ["a2.ipynb"] and (work / "a.ipynb").read_text() == "v1"
    assert r.notices == ["a.ipynb is no longer shipped (renamed or removed in this version): your copy is kept as "
                         "it is; delete it if you do not need it"]
    assert nc.working_copies(work, shipped).notices == []


@pytest.mark.parametrize("record", ["[]", "null", '{"a.ipynb": 5}', "{not json", b"\xff\xfe"])
def test_an_unreadable_record_is_said_and_nothing_is_overwritten(tmp_path: Path, record: str | bytes) -> None:
    shipped, work = _shipped(tmp_path, "v1"), tmp_path / "work"
    work.mkdir()
    (work / "a.ipynb").write_text("mine")
    (work / nc.RECORD).write_bytes(record if isinstance(record, bytes) else record.encode())
    r = nc.working_copies(work, shipped)
    assert len(r.notices) == 2 and r.notices[0].startswith(f"{nc.RECORD} in {work} is unreadable (")
    assert (work / "a.ipynb").read_text() == "mine" and (work / "a.new.ipynb").read_text() == "v1"
    assert json.loads((work / nc.RECORD).read_text()) == {"a.ipynb": nc._digest(b"v1")}  # written afresh
    assert nc.working_copies(work, shipped).notices == []


def test_a_folder_that_cannot_be_written_is_refused_with_what_to_do(tmp_path: Path) -> None:
    shipped, work = _shipped(tmp_path, "v1"), tmp_path / "work"
    work.mkdir()
    (work / nc.RECORD).mkdir()  # the record cannot be written (as a read-only or full folder fails)
    with pytest.raises(nc.NotebookCopyError, match=r"cannot write the notebook copies in .*/work \(.*\): pass a "
                                                   "folder you can write"):
        nc.working_copies(work, shipped)
