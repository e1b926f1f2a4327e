"""The analyst's own copies of the shipped notebooks, the folder ``ssz lab`` opens (``$SSZ_HOME/notebooks`` by
default), so that running and saving a notebook never writes into the project's checkout and two analysts on
one machine never share a file.

On every start :func:`working_copies` brings the folder up to date with the shipped notebooks (the
repository's ``notebooks/``), never losing an analyst's work:

* a shipped notebook not in the folder is copied in;
* a copy the analyst has not changed since it was copied follows the shipped version when that changes;
* a copy the analyst has changed (or a file of that name that is not a copy) is never overwritten: when the
  shipped version differs from it and has not been offered before, the shipped version is written beside it
  as ``<name>.new.ipynb`` and a notice says so (rename it over yours to take it, or delete it to keep yours);
  an older offer left untouched is replaced by the newer one, one the analyst changed is kept (and said);
* a copy of a notebook no longer shipped (renamed or removed) is kept, and said once.

What was copied is remembered in the folder's ``.ssz-shipped.json`` (notebook name -> SHA-256 of the shipped
file when it was copied or offered); an unreadable record is said and written afresh (nothing is overwritten).
Copies are owner-only (0600).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from serve.keys import write_private

SHIPPED = Path(__file__).resolve().parents[1] / "notebooks"
RECORD = ".ssz-shipped.json"


class NotebookCopyError(ValueError):
    """The working folder cannot hold the copies: the message names the folder and what to do."""


@dataclass
class CopyReport:
    """What :func:`working_copies` did: names copied in or updated, and one notice per notebook whose shipped
    version the analyst has not taken (the file names and what to do)."""

    folder: Path
    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder(folder: Path, shipped: Path) -> Path:
    folder = folder.expanduser().resolve()
    if folder == shipped.resolve():
        raise NotebookCopyError(f"{folder} is the project's own notebooks folder (tracked in git): ssz lab opens "
                                "copies of it; pass another folder, or none for $SSZ_HOME/notebooks")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotebookCopyError(f"notebook folder {folder} is a file, not a folder: pass a folder") from None
    except OSError as e:
        raise NotebookCopyError(f"cannot make the notebook folder {folder} ({e.strerror}): pass a folder you "
                                "can write") from None
    return folder


def working_copies(folder: Path, shipped: Path = SHIPPED) -> CopyReport:
    """Bring ``folder`` up to date with the shipped notebooks (``*.ipynb`` in ``shipped``) as the module says.

    Returns
    -------
    CopyReport
        The folder (absolute), the notebook names copied in or updated, and the notices to show the analyst.

    Raises
    ------
    NotebookCopyError
        when ``folder`` is the shipped folder itself, a file, or cannot be made or written.
    """
    folder = _folder(folder, shipped)
    report, record_path = CopyReport(folder), folder / RECORD
    record = _read_record(record_path, report)
    try:
        sources = sorted(shipped.glob("*.ipynb"))
        for src in sources:
            _bring_up_to_date(src, folder, record, report)
        for name in sorted(set(record) - {src.name for src in sources}):
            del record[name]  # said once
            if (folder / name).exists():
                report.notices.append(f"{name} is no longer shipped (renamed or removed in this version): your "
                                      "copy is kept as it is; delete it if you do not need it")
        write_private(record_path, json.dumps(record, indent=1, sort_keys=True).encode())
    except OSError as e:
        raise NotebookCopyError(f"cannot write the notebook copies in {folder} ({e.strerror or e}): pass a "
                                "folder you can write") from None
    return report


def _read_record(path: Path, report: CopyReport) -> dict[str, str]:
    """The folder's record (notebook name -> SHA-256); an unreadable one is said and judged as empty (then every
    copy is compared with the shipped file alone: nothing is overwritten)."""
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or "not JSON"
    else:
        if isinstance(record, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in record.items()):
            return record
        why = "not a JSON object of notebook names and SHA-256 digests"
    report.notices.append(f"{path.name} in {path.parent} is unreadable ({why}), so ssz lab cannot tell which "
                          "notebooks you changed: none is overwritten, a shipped one that differs from yours is "
                          "written beside it as NAME.new.ipynb, and the record is written afresh")
    return {}


def _bring_up_to_date(src: Path, folder: Path, record: dict[str, str], report: CopyReport) -> None:
    data = src.read_bytes()
    new, name = _digest(data), src.name
    dest = folder / name
    if not dest.exists():
        write_private(dest, data, exclusive=True)  # exclusive: a file made meanwhile is not overwritten
        record[name] = new
        report.copied.append(name)
        return
    if record.get(name) == new:
        return  # shipped unchanged since it was copied (or offered): the copy is the analyst's
    mine = _digest(dest.read_bytes())
    if mine == new:
        record[name] = new
    elif name in record and mine == record[name]:  # not changed by the analyst: it follows the shipped version
        write_private(dest, data)
        record[name] = new
        report.updated.append(name)
    else:
        offer = dest.with_name(f"{dest.stem}.new.ipynb")
        why = ("changed since your copy was made" if name in record else "differs from your file of that name")
        offered = _digest(offer.read_bytes()) if offer.exists() else None
        if offered is not None and offered == record.get(name):  # an older offer as written, untouched: replaced
            write_private(offer, data)
        elif offered is not None and offered != new:
            report.notices.append(f"{name}: the shipped version {why}, but {offer.name} is in the way (a file you "
                                  f"made or changed): rename or delete it and start ssz lab again to get it")
            return
        if offered is None:
            write_private(offer, data, exclusive=True)
        record[name] = new
        report.notices.append(f"{name}: the shipped version {why}; yours is kept as it is and the shipped one is "
                              f"beside it as {offer.name} (rename it over yours to take it, or delete it)")
