"""``airisk view``: a local, read-only web app over the run store (FastAPI + Jinja2, no build step).

Pages are rendered on the server; a small hand-written script (``static/viewer.js``) only polls the
status of running runs. Every asset is served by the app itself, nothing comes from the network.

Safety: Jinja2 autoescapes every value (model output is untrusted text), and every response carries a
strict Content-Security-Policy (scripts and styles only from this server, no inline script or
handler can run, no connection anywhere else). With a token, every request must present it
(``Authorization: Bearer``, the ``airisk_token`` cookie set by the login form, or ``?token=`` once);
``serve`` refuses to bind beyond loopback without one.
"""

from __future__ import annotations

import hmac
import json
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from airisk.errors import AiriskError
from airisk.store.store import RunNotFound, Store
from airisk.viewer import data
from airisk.viewer.export import MEDIA_TYPES, ExportError, export_bytes

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
COOKIE = "airisk_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OPEN_PATHS = ("/login", "/static/", "/favicon.ico")


def _pct(x: float | None, nd: int = 1) -> str:
    return "no data" if x is None else f"{100 * x:.{nd}f}%"


def _heat(x: float | None) -> str:
    return "heat-none" if x is None else f"heat-{min(10, max(0, round(10 * x)))}"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("airisk.viewer", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.ChainableUndefined)
    env.filters["pct"] = _pct
    env.filters["heat"] = _heat
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False, default=str)
    env.globals["qs"] = lambda params, **kw: urlencode({**{k: v for k, v in params.items() if v not in ("", None)}, **kw})
    return env


def _page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(_env().get_template(name).render(**ctx), status_code=status)


def create_app(store: Store | str | None = None, *, token: str | None = None) -> FastAPI:
    """The viewer app over ``store`` (a Store or a SQLAlchemy URL; default: the usual store)."""
    st = store if isinstance(store, Store) else Store(store)
    app = FastAPI(title="airisk viewer", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.mount("/static", StaticFiles(packages=[("airisk.viewer", "static")]), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token and not request.url.path.startswith(OPEN_PATHS):
            given = request.cookies.get(COOKIE) or request.query_params.get("token") or ""
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:]
            if not hmac.compare_digest(given.encode(), token.encode()):
                if request.url.path.startswith("/api/"):
                    resp = JSONResponse({"error": "a valid token is required (Authorization: Bearer <token>)"}, 401)
                else:
                    resp = RedirectResponse("/login?" + urlencode({"next": request.url.path}), 303)
                return _secure(resp)
            if request.query_params.get("token"):  # keep the token out of the address bar and history
                resp = RedirectResponse(request.url.path, 303)
                resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                return _secure(resp)
        return _secure(await call_next(request))

    @app.exception_handler(AiriskError)
    async def airisk_error(request: Request, exc: AiriskError):
        code = 404 if isinstance(exc, RunNotFound) else 400
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, code)
        return _page("error.html.jinja", code, message=str(exc), title="error")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)  # browsers ask for it on JSON pages; no icon, no 404 noise

    # -- login ---------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_form(next: str = "/"):
        return _page("login.html.jinja", next=next if next.startswith("/") else "/", title="token", error=None)

    @app.post("/login")
    async def login(request: Request):
        # A urlencoded form parsed by hand: FastAPI's Form() would need python-multipart for two fields.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token_in, next = form.get("token", [""])[0], form.get("next", ["/"])[0]
        if not token or not hmac.compare_digest(token_in.encode(), token.encode()):
            return _page("login.html.jinja", 401, next=next, title="token", error="wrong token")
        resp = RedirectResponse(next if next.startswith("/") and not next.startswith("//") else "/", 303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return resp

    # -- JSON API ------------------------------------------------------------------------
    @app.get("/api/runs")
    def api_runs(kind: str = "", status: str = "", q: str = "", sort: str = "created", desc: bool = True):
        return {"schema": "airisk.runs/1", "runs": data.list_runs(st, kind=data.run_kind_ok(kind), status=status or None,
                                                                  q=q or None, sort=sort, desc=desc)}

    @app.get("/api/status")
    def api_status(ids: str = ""):
        return {"runs": data.run_statuses(st, [i for i in ids.split(",") if i])}

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str):
        return data.run_overview(st, run_id)

    @app.get("/api/runs/{run_id}/items")
    def api_items(run_id: str, request: Request):
        return data.items_page(st, run_id, _item_query(request))

    @app.get("/api/runs/{run_id}/items/{item_id:path}")
    def api_item(run_id: str, item_id: str):
        return data.item_detail(st, run_id, item_id)

    @app.get("/api/compare")
    def api_compare(runs: list[str] = Query(default=[])):
        return data.compare_runs(st, _run_list(runs))

    @app.get("/api/judges")
    def api_judges():
        return {"schema": "airisk.judge-cards/1", "cards": data.judge_cards()}

    @app.get("/runs/{run_id}/export.{fmt}")
    def export(run_id: str, fmt: str):
        run = st.get_run(run_id)
        try:
            body = export_bytes(st, run.id, fmt)
        except ExportError as e:
            raise data.BadQuery(str(e)) from None
        return Response(body, media_type=MEDIA_TYPES[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{run.id}.{fmt}"'})

    # -- pages ---------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def runs_page(kind: str = "", status: str = "", q: str = "", sort: str = "created", desc: bool = True):
        runs = data.list_runs(st, kind=data.run_kind_ok(kind), status=status or None, q=q or None, sort=sort, desc=desc)
        return _page("runs.html.jinja", runs=runs, f={"kind": kind, "status": status, "q": q, "sort": sort, "desc": desc},
                     kinds=data.RUN_KINDS, sorts=list(data.SORTS), title="runs")

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: str):
        ov = data.run_overview(st, run_id)
        return _page("run.html.jinja", o=ov, r=ov["run"], title=f"run {ov['run']['id']} · {ov['run']['system_spec']['label']}")

    @app.get("/runs/{run_id}/items", response_class=HTMLResponse)
    def items_page(run_id: str, request: Request):
        q = _item_query(request)
        res = data.items_page(st, run_id, q)
        data.SEARCH.prefetch(st, res["run_id"], data.run_version(st, res["run_id"]))
        run = data.run_summary(st, st.get_run(run_id))
        return _page("items.html.jinja", res=res, r=run, q=q, fc=data.facets(st, run_id), title=f"items · {run['id']}")

    @app.get("/runs/{run_id}/items/{item_id:path}", response_class=HTMLResponse)
    def item_page(run_id: str, item_id: str):
        d = data.item_detail(st, run_id, item_id)
        return _page("item.html.jinja", d=d, title=f"item {item_id}")

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(runs: list[str] = Query(default=[])):
        ids = [r for part in runs for r in part.split(",") if r]
        cmp = data.compare_runs(st, ids) if len(ids) >= 2 else None
        return _page("compare.html.jinja", c=cmp, ids=ids, all_runs=data.list_runs(st, limit=200), title="compare")

    @app.get("/judges", response_class=HTMLResponse)
    def judges_page():
        return _page("judges.html.jinja", cards=data.judge_cards(), title="judges")

    return app


def _secure(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _run_list(runs: list[str]) -> list[str]:
    return [r for part in runs for r in part.split(",") if r]


def _float(request: Request, name: str) -> float | None:
    v = request.query_params.get(name, "")
    if v == "":
        return None
    try:
        return float(v)
    except ValueError:
        raise data.BadQuery(f"{name} must be a number, not '{v}'") from None


def _int(request: Request, name: str, default: int) -> int:
    v = request.query_params.get(name, "")
    try:
        return int(v) if v else default
    except ValueError:
        raise data.BadQuery(f"{name} must be a whole number, not '{v}'") from None


def _item_query(request: Request) -> data.ItemQuery:
    p = request.query_params
    return data.ItemQuery(
        search=p.get("search", "").strip(), hazard=p.get("hazard", ""), persona=p.get("persona", ""),
        verdict=p.get("verdict", ""), refusal=p.get("refusal", ""), error_kind=p.get("error_kind", ""),
        attack=p.get("attack", ""), pmin=_float(request, "pmin"), pmax=_float(request, "pmax"),
        judge=p.get("judge", ""), page=_int(request, "page", 1), per_page=_int(request, "per_page", data.PER_PAGE),
    ).validate()


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token (anyone on the network could read every response)."""
    if host not in LOOPBACK and not token:
        raise AiriskError(f"--host {host} is reachable from other machines: give --token (or AIRISK_VIEW_TOKEN) "
                          "so that only people with the token can read the store")


def serve(db: str | None = None, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          open_browser: bool = False) -> None:
    """Run the viewer until interrupted."""
    import threading
    import webbrowser

    import uvicorn

    check_bind(host, token)
    app = create_app(db, token=token)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url + (f"?token={token}" if token else ""),)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
