"""Deploying the recognition services: face + plate Serve apps behind the token-protected HTTP API.

``ssz api up`` joins (or starts) the Ray cluster, starts Serve's HTTP proxy on 127.0.0.1 (``--host`` to
expose it deliberately), and runs one Serve application ``ssz`` with the face deployment (MTCNN + dlib,
warrant watchlist), the plate deployment (Tesseract Thai, hotlist) and the FastAPI ingress. Watchlist,
hotlist and their audit logs live in ``<state>/serve``. API tokens live in ``<state>/api/tokens.json``
(owner-only) or come from ``SSZ_API_TOKENS=user:token,...``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

from cluster.state import state_dir
from serve.auth import TokenTable, new_token

APP_NAME = "ssz"


class ApiStatus(BaseModel):
    """Where the API listens and which users have tokens (never the tokens themselves)."""

    url: str | None
    running: bool
    users: list[str]
    watchlist_path: str
    hotlist_path: str


def _tokens_file() -> Path:
    return state_dir("api") / "tokens.json"


def tokens() -> dict[str, str]:
    """``{user: token}`` from ``SSZ_API_TOKENS`` or the state file (an ``admin`` token is made on first use)."""
    env = os.environ.get("SSZ_API_TOKENS")
    if env:
        pairs = [p.split(":", 1) for p in env.split(",") if p.strip()]
        bad = [p[0] for p in pairs if len(p) != 2 or not p[1]]
        if bad:
            raise ValueError(f"SSZ_API_TOKENS must be 'user:token,...'; entries without a token: {bad}")
        return {u.strip(): t.strip() for u, t in pairs}
    f = _tokens_file()
    if f.exists():
        return json.loads(f.read_text())
    return add_user("admin")


def add_user(user: str) -> dict[str, str]:
    """Create (or rotate) the token of ``user`` in the state file; returns all tokens."""
    f = _tokens_file()
    current = json.loads(f.read_text()) if f.exists() else {}
    current[user] = new_token()
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(current, fh, indent=2)
    return current


def _paths() -> dict[str, str]:
    d = state_dir("serve")
    return {"watchlist": str(d / "warrants.json"), "watchlist_audit": str(d / "watchlist-audit.jsonl"),
            "hotlist": str(d / "hotlist.json"), "hotlist_audit": str(d / "hotlist-audit.jsonl")}


def build_app(max_batch_size: int = 8, num_gpus: float = 0.0, num_cpus: float = 0.5) -> object:
    """The bound Serve application: face and plate deployments behind the API ingress.

    ``num_cpus`` is what each model replica reserves: half a CPU by default, so that on a small machine the
    camera shards still find room next to the models (the OS shares the cores; Ray only books them).
    """
    from serve.api import ApiConfig, build_api_app
    from serve.face.deployment import FaceAppConfig, build_face_app
    from serve.face.service import FaceServiceConfig
    from serve.plate.deployment import PlateAppConfig, build_plate_app

    p = _paths()
    face = build_face_app(FaceAppConfig(
        service=FaceServiceConfig(watchlist_path=p["watchlist"], audit_path=p["watchlist_audit"],
                                  device="cuda" if num_gpus > 0 else "cpu"),
        max_batch_size=max_batch_size, num_gpus=num_gpus, num_cpus=num_cpus))
    plate = build_plate_app(PlateAppConfig(hotlist_path=p["hotlist"], audit_path=p["hotlist_audit"],
                                           max_batch_size=max_batch_size, num_cpus=num_cpus))
    return build_api_app(face, plate, ApiConfig(tokens=TokenTable.from_tokens(tokens())))


def up(host: str = "127.0.0.1", port: int = 8000, max_batch_size: int = 8, num_gpus: float = 0.0) -> ApiStatus:
    """Deploy the ``ssz`` application on the connected Ray cluster and return where it listens."""
    from ray import serve

    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(max_batch_size, num_gpus), name=APP_NAME, route_prefix="/")
    url = _proxy_url(host, port)
    (state_dir("api") / "url").write_text(url)
    return status(url)


def ensure_up() -> str:
    """The URL of the ``ssz`` application, deploying it with the defaults when it is not running (the demo,
    the simulation and ``ssz run`` need the models but must not redeploy one an operator started)."""
    st = status()
    url = st.url if st.running else up().url
    if url is None:
        raise RuntimeError("the ssz API is deployed but where it listens was not recorded: run `ssz api up` again")
    return url


def _proxy_url(host: str, port: int) -> str:
    """Where Serve's HTTP proxy really listens: a cluster whose Serve already runs keeps its own host and port."""
    import logging

    from ray.serve.context import _get_global_client

    http = _get_global_client().http_config
    real_host, real_port = http.host or host, int(http.port)
    if (real_host, real_port) != (host, port):
        logging.getLogger(__name__).warning(
            "Serve was already listening on %s:%s in this Ray cluster; the API is there, not on %s:%s "
            "(restart the cluster to move it)", real_host, real_port, host, port)
    return f"http://{real_host}:{real_port}"


def down() -> None:
    """Delete the ``ssz`` application (the cluster keeps running)."""
    from ray import serve

    serve.delete(APP_NAME)


def status(url: str | None = None) -> ApiStatus:
    """The API's URL (if deployed), the users with tokens and where the lists live."""
    running = False
    try:
        from ray import serve

        running = APP_NAME in serve.status().applications
    except Exception:  # not connected to a cluster with Serve
        running = False
    p = _paths()
    if running and url is None and (state_dir("api") / "url").exists():
        url = (state_dir("api") / "url").read_text().strip()  # where the last `up` deployed it
    return ApiStatus(url=url, running=running, users=sorted(tokens()), watchlist_path=p["watchlist"],
                     hotlist_path=p["hotlist"])


def app_builder(args: dict[str, str]) -> object:
    """Serve config entry point (``import_path: cluster.serving:app_builder``) used by the KubeRay RayService.

    ``args`` come from the Serve config as strings: ``max_batch_size`` and ``num_gpus``. Tokens come from
    ``SSZ_API_TOKENS`` in the pod environment (a Kubernetes secret), never from the config.
    """
    return build_app(max_batch_size=int(args.get("max_batch_size", 8)), num_gpus=float(args.get("num_gpus", 0)))
