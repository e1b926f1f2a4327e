"""Self-contained kepler.gl HTML pages that render with no internet.

``keplergl.KeplerGl.save_to_html`` writes a page that loads React, kepler.gl and MapLibre from CDNs
(unpkg, esm.sh, jspm): offline it renders a blank page. The keplergl wheel, however, ships the whole
widget as one ES module (``keplergl/static/widget.js``, about 12 MB with React, kepler.gl, deck.gl and
MapLibre inside) written for anywidget: it exports ``render({model, el})`` and reads ``data``,
``config``, ``height``, ``theme``, ``mapbox_token`` and ``app_name`` from the widget model.

:func:`offline_html` inlines that module (gzip + base64, about 4 MB, decoded in the page with the
browser's ``DecompressionStream``) together with a tiny stand-in for the anywidget model holding the
datasets, so the page needs no server, no Jupyter and no network. Datasets are serialised exactly as the
widget serialises them (``keplergl.serializers.serialize_dataset``), so a map looks the same in Jupyter
and in the exported file.

Base-map tiles still need the internet: pass a config whose ``mapStyle.styleType`` is ``"no_map"``
(what :mod:`twin.maps` does by default) so the page draws the data layers on a plain background
instead of waiting for tiles that never come.

As shipped, the Jupyter widget does not work offline on a busy machine (seen in JupyterLab in headless
Chromium with the CPU throttled 6x, and on the loaded 2-core test machine); :class:`OfflineKeplerGl` fixes it:

- ``KeplerGl.__init__`` opens the widget's comm with empty ``data`` and ``config`` and sends them as later
  updates; a slow front end renders the view from the empty state, syncs kepler.gl's default config back to
  Python and never shows the data. :class:`OfflineKeplerGl` opens the comm with its full state.
- Three lines of the wheel's bundle are changed (:func:`offline_bundle`, used by the widget and the pages):
  the store starts on the ``dark-matter`` base map, fetched from a CDN before the map's own config
  (``no_map``) arrives, so the default becomes ``no_map``; the widget waits only 5 s for kepler.gl to register
  its instance before dispatching the datasets (to nobody, when slower), so the wait becomes 120 s; and the
  view syncs kepler.gl's config back to Python before its first datasets are loaded (overwriting the map's
  config with the empty default), so the sync waits until the first load is done.

Each change must match exactly; a keplergl release that moved them raises :class:`OfflineExportError`.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import keplergl
from keplergl.serializers import serialize_dataset

STATIC_DIR = Path(keplergl.__file__).resolve().parent / "static"
WIDGET_JS = STATIC_DIR / "widget.js"
WIDGET_CSS = STATIC_DIR / "widget.css"


class OfflineExportError(RuntimeError):
    """The kepler.gl bundle needed for an offline page is missing or not the expected anywidget module."""


# (pattern, replacement, what it fixes) applied to the wheel's widget.js; each must match at least once.
_PATCHES = (
    (r'(NO_BASEMAP\.png"\),[\w$.=]+=)"dark-matter"', r'\1"no_map"',
     "default base map dark-matter (fetched from a CDN before the config arrives) -> no_map"),
    (r'(Timeout waiting for instance registration"\),\w\(\)\},)5e3\)', r"\g<1>12e4)",
     "5 s wait for the kepler.gl instance (datasets lost on a busy machine) -> 120 s"),
    (r'(L_\("loadInitial: dispatched addDataToMap with datasets \+ config"\)\})\}', r"\1this.sszLoaded=!0}",
     "mark the end of the first load"),
    (r"syncConfigToPython\(\)\{if\(this\.isSyncingConfig\)return;",
     "syncConfigToPython(){if(this.isSyncingConfig||!this.sszLoaded)return;",
     "no config sync back to Python before the first load"),
)


@lru_cache(maxsize=1)
def offline_bundle() -> str:
    """The wheel's widget ES module with the two offline fixes of the module docs applied (cached)."""
    if not WIDGET_JS.exists():
        raise OfflineExportError(
            f"{WIDGET_JS} not found: the installed keplergl has no bundled widget; reinstall keplergl>=0.4")
    src = WIDGET_JS.read_text(encoding="utf-8")
    if "export{" not in src[-20000:] and "export {" not in src[-20000:]:
        raise OfflineExportError(f"{WIDGET_JS} is not an ES module exporting the anywidget render(); "
                                 f"keplergl {keplergl.__version__} is not supported by this exporter")
    for pattern, repl, what in _PATCHES:
        src, n = re.subn(pattern, repl, src)
        if n == 0:
            raise OfflineExportError(f"keplergl {keplergl.__version__}: cannot apply the offline fix '{what}' "
                                     f"to {WIDGET_JS}; pin keplergl 0.4.x or update twin/kepler_offline.py")
    return src


@lru_cache(maxsize=1)
def _bundle_b64() -> str:
    """The patched widget ES module, gzip-compressed and base64-encoded (cached: compressing takes ~1 s)."""
    src = offline_bundle().encode("utf-8")
    return base64.b64encode(gzip.compress(src, compresslevel=6, mtime=0)).decode("ascii")


class OfflineKeplerGl(keplergl.KeplerGl):
    """The keplergl Jupyter widget, fixed for offline and slow front ends (see the module docs).

    Its JavaScript is :func:`offline_bundle`, from the installed wheel through the kernel (no CDN); the comm
    opens with the datasets and config already in the state. Same arguments as ``keplergl.KeplerGl``.
    """

    _esm = offline_bundle()

    def __init__(self, data: dict[str, Any] | None = None, config: dict[str, Any] | None = None, height: int = 400,
                 mapbox_token: str = "", use_arrow: bool = False, theme: str = "", app_name: str = "kepler.gl",
                 **kwargs: Any) -> None:
        self._use_arrow = use_arrow  # read by keplergl's data serializer when the comm opens
        # anywidget.AnyWidget.__init__, not KeplerGl's: the traits go into the comm-open state
        super(keplergl.KeplerGl, self).__init__(data=dict(data or {}), config=dict(config or {}), height=height,
                                                mapbox_token=mapbox_token, theme=theme, app_name=app_name,
                                                **kwargs)


def _json_for_script(obj: Any) -> str:
    """JSON safe to place inside a <script> element: '<' only ever occurs inside JSON strings."""
    return json.dumps(obj, ensure_ascii=False, default=str, allow_nan=False).replace("<", "\\u003c")


def serialize_datasets(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Datasets in the anywidget wire format the bundle reads (``{"id", "data", "format"}`` per name).

    Accepts what ``KeplerGl(data=...)`` accepts: DataFrames, GeoDataFrames, GeoJSON dicts, CSV strings.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, ds in data.items():
        try:
            out[name] = serialize_dataset(ds, name)
        except ValueError as e:
            raise ValueError(f"dataset {name!r}: {e}; pass a DataFrame, GeoDataFrame or GeoJSON dict") from e
    return out


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
html, body {{ margin: 0; padding: 0; height: 100%; overflow: hidden; background: #242730; }}
#ssz-map {{ position: absolute; inset: 0; }}
#ssz-error {{ display: none; position: absolute; top: 8px; left: 8px; right: 8px; padding: 8px; z-index: 10;
  color: #fff; background: #a31515; font: 14px sans-serif; white-space: pre-wrap; }}
{css}
</style>
</head>
<body>
<div id="ssz-map"></div>
<div id="ssz-error"></div>
<script type="application/json" id="ssz-kepler-model">{model}</script>
<script type="text/plain" id="ssz-kepler-bundle">{bundle}</script>
<script type="module">
const showError = (e) => {{
  const box = document.getElementById('ssz-error');
  box.textContent = 'kepler.gl failed to start: ' + (e && e.stack ? e.stack : e);
  box.style.display = 'block';
  document.documentElement.dataset.sszKepler = 'error';
}};
try {{
  const b64 = document.getElementById('ssz-kepler-bundle').textContent.trim();
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const source = await new Response(stream).text();
  const url = URL.createObjectURL(new Blob([source], {{ type: 'text/javascript' }}));
  const widget = (await import(url)).default;
  const state = JSON.parse(document.getElementById('ssz-kepler-model').textContent);
  const el = document.getElementById('ssz-map');
  state.height = {height_js};
  const listeners = {{}};
  const emit = (name) => (listeners[name] || []).forEach((cb) => cb());
  // The few calls of the anywidget model API that the kepler.gl widget makes.
  const model = {{
    get: (k) => state[k],
    set: (k, v) => {{ state[k] = v; }},
    save_changes: () => {{}},
    send: () => {{}},
    on: (name, cb) => {{ (listeners[name] = listeners[name] || []).push(cb); }},
    off: (name, cb) => {{ listeners[name] = (listeners[name] || []).filter((f) => f !== cb); }},
  }};
  window.addEventListener('resize', () => {{ state.height = {height_js}; emit('change:height'); }});
  widget.render({{ model, el }});
  document.documentElement.dataset.sszKepler = 'started';
}} catch (e) {{
  showError(e);
}}
</script>
</body>
</html>
"""


def offline_html(data: dict[str, Any], config: dict[str, Any] | None = None, *, title: str = "kepler.gl map",
                 height: int | None = None, theme: str = "", app_name: str = "SSZ twin") -> str:
    """A self-contained HTML page of a kepler.gl map (datasets + config) that renders with no internet.

    ``height`` fixes the map height in pixels; by default the map fills the browser window.
    """
    model = {
        "data": serialize_datasets(data),
        "config": config or {},
        "height": height or 600,
        "mapbox_token": "",
        "theme": theme,
        "app_name": app_name,
    }
    css = WIDGET_CSS.read_text(encoding="utf-8") if WIDGET_CSS.exists() else ""
    return _PAGE.format(
        title=html.escape(title), css=css.replace("</", "<\\/"), model=_json_for_script(model),
        bundle=_bundle_b64(), height_js=str(int(height)) if height else "window.innerHeight",
    )


def save_offline_html(path: str | os.PathLike[str], data: dict[str, Any], config: dict[str, Any] | None = None,
                      **kwargs: Any) -> Path:
    """Write :func:`offline_html` to ``path`` (folders created) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(offline_html(data, config, **kwargs), encoding="utf-8")
    return p
