"""Deploying the recognition services: face + plate Serve apps behind the role-checked HTTP API; API users.

``ssz api up`` joins (or starts) the Ray cluster, starts Serve's HTTP proxy on 127.0.0.1 (``--host`` to
expose it deliberately), and runs one Serve application ``ssz`` with the face deployment (MTCNN + dlib,
warrant watchlist), the plate deployment (Tesseract Thai, hotlist) and the FastAPI ingress. Watchlist,
hotlist and their audit logs live in ``<state>/serve``; every audit event is mirrored to the locked evidence
bucket. The replicas reach the store as the platform user only (``cluster.store``).

API users: ``ssz api token --user NAME --role ROLE`` (:func:`issue_token`) issues a 32-byte token, prints it
once and stores only its keyed hash in the token table in the store (``serve.auth``); issuing again rotates
it (the old token stops working within seconds, no redeploy); ``--revoke`` removes it. The first admin is
made the same way. ``SSZ_API_TOKENS`` (plain tokens in the environment) is no longer read.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from pydantic import BaseModel, Field

from cluster.state import state_dir
from serve.keys import write_private

APP_NAME = "ssz"
DEFAULT_CITY = "hatyai"


class ApiStatus(BaseModel):
    """Where the API listens and which users have tokens (never the tokens themselves)."""

    url: str | None = Field(description="where the API answers (None: not deployed)")
    running: bool = Field(description="whether the `ssz` Serve application is deployed")
    users: dict[str, str] = Field(default_factory=dict, description="user -> role of everyone with a token")
    watchlist_path: str = Field(description="local copy of the warrant watchlist")
    hotlist_path: str = Field(description="local copy of the plate hotlist")


def _check_no_env_tokens() -> None:
    if os.environ.get("SSZ_API_TOKENS"):
        raise ValueError("SSZ_API_TOKENS is no longer read (tokens are kept only as keyed hashes): unset it and "
                         "issue tokens with `ssz api token --user NAME --role ROLE`")


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


def _paths() -> dict[str, str]:
    from cluster.audits import access_log_path

    d = state_dir("serve")
    return {"watchlist": str(d / "warrants.json"), "watchlist_audit": str(d / "watchlist-audit.jsonl"),
            "hotlist": str(d / "hotlist.json"), "hotlist_audit": str(d / "hotlist-audit.jsonl"),
            "access_audit": str(access_log_path()), "lists": str(d / "lists")}


def token_store() -> object:
    """The API token table in the store, with the ``access`` audit log (serve.auth.TokenStore)."""
    from cluster import store
    from serve.audit import AuditLog
    from serve.auth import TokenStore

    s = store.open_store()
    return TokenStore(s, audit=AuditLog(_paths()["access_audit"], name="access", store=s))


def issue_token(user: str, role: str, actor: str | None = None) -> str:
    """Issue (or rotate) ``user``'s API token with ``role``; returns the token (shown once). Audited."""
    _check_no_env_tokens()
    return token_store().issue(user, role, actor or _cli_actor())  # type: ignore[attr-defined]


def revoke_token(user: str, reason: str = "", actor: str | None = None) -> None:
    """Revoke ``user``'s token (LookupError when they have none). Audited."""
    token_store().revoke(user, actor or _cli_actor(), reason)  # type: ignore[attr-defined]


def users() -> dict[str, str]:
    """``{user: role}`` of everyone with a token (empty when the store cannot be reached)."""
    from twin.objectstore import StoreError

    try:
        return {u: i["role"] for u, i in token_store().users().items()}  # type: ignore[attr-defined]
    except (StoreError, OSError):
        return {}


def build_app(max_batch_size: int = 8, num_gpus: float = 0.0, num_cpus: float = 0.5,
              store_settings_file: str | None = None, city: str | None = None) -> object:
    """The bound Serve application: face and plate deployments behind the API ingress.

    ``num_cpus`` is what each model replica reserves: half a CPU by default, so that on a small machine the
    camera shards still find room next to the models (the OS shares the cores; Ray only books them).
    ``store_settings_file`` is the platform user's S3 settings file (embedded store); None = ``SSZ_S3_*``.
    ``city``: the city whose command room (alerts, field ingest, console) the API serves (None: none).
    """
    from serve.api import ApiConfig, build_api_app
    from serve.face.deployment import FaceAppConfig, build_face_app
    from serve.face.service import FaceServiceConfig
    from serve.plate.deployment import PlateAppConfig, build_plate_app

    _check_no_env_tokens()
    p = _paths()
    face = build_face_app(FaceAppConfig(
        service=FaceServiceConfig(watchlist_path=p["watchlist"], audit_path=p["watchlist_audit"], audit_in_store=True,
                                  lists_dir=p["lists"], device="cuda" if num_gpus > 0 else "cpu"),
        max_batch_size=max_batch_size, num_gpus=num_gpus, num_cpus=num_cpus, use_store=True,
        store_settings_file=store_settings_file))
    plate = build_plate_app(PlateAppConfig(hotlist_path=p["hotlist"], audit_path=p["hotlist_audit"],
                                           lists_dir=p["lists"], max_batch_size=max_batch_size, num_cpus=num_cpus,
                                           use_store=True, store_settings_file=store_settings_file))
    desk, services = None, None
    if city is not None:
        from cluster.ccoc import CityServices, desk_config
        from cluster.city import CityModel

        model = CityModel.load(city)
        desk, services = desk_config(model).model_dump(mode="json"), CityServices(model)
        services.sink()  # started now, not on the first SOS: the stream's first alert arrives at once
        services.field()
    return build_api_app(face, plate, ApiConfig(store_settings_file=store_settings_file,
                                                access_audit_path=p["access_audit"], desk=desk), services)


def _settings_file() -> str | None:
    """The platform settings file for replicas on this host (embedded store), None for ``SSZ_S3_*``."""
    from cluster import store
    from twin.objectstore import S3Settings

    return None if S3Settings.from_env() is not None else str(store.platform_settings_file())


def up(host: str = "127.0.0.1", port: int = 8000, max_batch_size: int = 8, num_gpus: float = 0.0,
       city: str | None = DEFAULT_CITY) -> ApiStatus:
    """Deploy the ``ssz`` application on the connected Ray cluster and return where it listens; ``city`` is the
    city whose command room (alerts, field ingest, the console at ``/console``) it serves."""
    from ray import serve

    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(max_batch_size, num_gpus, store_settings_file=_settings_file(), city=city), name=APP_NAME,
              route_prefix="/")
    url = _proxy_url(host, port)
    write_private(url_file(), url.encode())
    write_private(city_file(), (city or "").encode())
    return status(url)


def ensure_up(city: str | None = None, port: int = 8000) -> str:
    """The URL of the ``ssz`` application, deploying it with the defaults when it is not running (the demo,
    the simulation and ``ssz run`` need the models but must not redeploy one an operator started). With
    ``city``, an application serving another city's command room is redeployed for ``city``; ``port`` is where a
    new deployment listens (a running one keeps its port)."""
    st = status()
    served = city_file().read_text().strip() if city_file().exists() else None
    current = st.running and (city is None or served == city)
    url = st.url if current else up(port=port, city=city or DEFAULT_CITY).url
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


def down() -> bool:
    """Commit the served city's pending field inputs to the twin, then delete the ``ssz`` application (the
    cluster keeps running). Needs a Ray connection; returns False (and does nothing) when the API is not
    deployed."""
    from ray import serve

    from cluster.ccoc import shutdown

    if not status().running:
        return False
    city = city_file().read_text().strip() if city_file().exists() else ""
    if city:
        shutdown(city)
    serve.delete(APP_NAME)
    return True


def status(url: str | None = None) -> ApiStatus:
    """The API's URL (if deployed), the users with tokens and where the lists live."""
    running = False
    try:
        from ray import serve

        running = APP_NAME in serve.status().applications
    except Exception:  # not connected to a cluster with Serve
        running = False
    p = _paths()
    if running and url is None and url_file().exists():
        url = url_file().read_text().strip()  # where the last `up` deployed it
    return ApiStatus(url=url, running=running, users=users(), watchlist_path=p["watchlist"],
                     hotlist_path=p["hotlist"])


def app_builder(args: dict[str, str]) -> object:
    """Serve config entry point (``import_path: cluster.serving:app_builder``) used by the KubeRay RayService.

    ``args`` come from the Serve config as strings: ``max_batch_size``, ``num_gpus`` and ``city`` (the command
    room it serves; empty for none). The store is reached
    with ``SSZ_S3_*`` (the platform user) from the pod environment; the token and audit keys come from
    ``SSZ_API_TOKEN_KEY`` / ``SSZ_AUDIT_KEY`` (Kubernetes secrets); tokens live in the store.
    """
    return build_app(max_batch_size=int(args.get("max_batch_size", 8)), num_gpus=float(args.get("num_gpus", 0)),
                     city=args.get("city", DEFAULT_CITY) or None)



def url_file() -> Path:
    """Where ``up`` records the URL the API listens on."""
    return state_dir("api") / "url"


def city_file() -> Path:
    """Where ``up`` records the city whose command room the API serves."""
    return state_dir("api") / "city"
