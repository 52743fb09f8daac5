"""The dashboard: server-rendered HTML, no JavaScript build, no template engine.

* ``/``: the release board, one tile per release with its latest verdict, revision, when and
  why it ran, and a history strip of its last runs (each square links to that run). It reloads
  itself (``<meta http-equiv=refresh>``), so it can stay on a screen.
* ``/releases/{namespace}/{name}``: a release's runs, newest first.
* ``/runs/{id}``: one run: the same self-contained page as ``--report html=`` (every check with
  its evidence, attempts timeline, response snippet and log), under a navigation bar.

Plain f-strings rather than Jinja: three small pages do not earn a dependency, and the
project's HTML report already renders this way; every value from a run or the store goes
through ``e()`` (``html.escape``), which is what auto-escaping would buy.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from smokegate import __version__
from smokegate.core.durations import format_duration
from smokegate.report.html import e
from smokegate.server.http import authorized
from smokegate.server.state import state_of
from smokegate.store.base import RunSummary

CSS = """
:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--panel:#161b22;
--pass:#2ea043;--fail:#da3633;--err:#8957e5;--accent:#4493f8}
@media (prefers-color-scheme:light){:root{--bg:#f6f8fa;--fg:#1f2328;--muted:#59636e;
--line:#d0d7de;--panel:#fff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
a{color:inherit}
header{display:flex;align-items:baseline;gap:18px;flex-wrap:wrap;padding:18px 28px;
border-bottom:1px solid var(--line)}
header h1{margin:0;font-size:22px}
header .stats{display:flex;gap:16px;color:var(--muted)}
header .stats b{color:var(--fg);font-variant-numeric:tabular-nums}
.n-pass b{color:var(--pass)!important}.n-fail b{color:var(--fail)!important}
main{padding:20px 28px 40px}
.board{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:16px}
.tile{background:var(--panel);border:1px solid var(--line);border-left:8px solid var(--muted);
border-radius:10px;padding:14px 16px;display:flex;flex-direction:column;gap:6px}
.tile.v-passed{border-left-color:var(--pass)}.tile.v-failed{border-left-color:var(--fail)}
.tile.v-error{border-left-color:var(--err)}
.tile h2{margin:0;font-size:18px;display:flex;justify-content:space-between;gap:8px}
.tile h2 a{text-decoration:none}.tile h2 small{color:var(--muted);font-weight:400;font-size:13px}
.verdict{display:inline-block;padding:1px 10px;border-radius:6px;color:#fff;font-weight:700;
font-size:13px;letter-spacing:.05em;text-transform:uppercase}
.verdict.passed{background:var(--pass)}.verdict.failed{background:var(--fail)}
.verdict.error{background:var(--err)}
.line{display:flex;gap:10px;align-items:center;flex-wrap:wrap;color:var(--muted)}
.line b{color:var(--fg);font-weight:600}
.msg{color:var(--muted);font-size:13px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.tile.v-failed .msg,.tile.v-error .msg{color:var(--fail)}
.strip{display:flex;gap:3px;margin-top:4px}
.strip a{display:block;width:12px;height:18px;border-radius:2px;background:var(--muted)}
.strip a.passed{background:var(--pass)}.strip a.failed{background:var(--fail)}
.strip a.error{background:var(--err)}.strip a:hover{outline:2px solid var(--fg)}
table{border-collapse:collapse;width:100%;background:var(--panel);border:1px solid var(--line)}
th{text-align:left;color:var(--muted);font-size:12px;font-weight:600;padding:6px 10px;
border-bottom:1px solid var(--line)}
td{padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.empty{color:var(--muted);padding:40px 0;text-align:center}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
"""

BAR_CSS = (
    "<style>.sg-bar{display:flex;gap:16px;flex-wrap:wrap;padding:8px 28px;background:#161b22;"
    "color:#e6edf3;font:14px system-ui,sans-serif}.sg-bar a{color:#4493f8}</style>"
)


def _ago(ts: float, now: float) -> str:
    seconds = max(0.0, now - ts)
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _run_href(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def _release_href(release: str) -> str:
    ns, _, name = release.partition("/")
    return f"/releases/{quote(ns, safe='')}/{quote(name, safe='')}"


def _page(title: str, body: str, *, refresh: float = 0, stats: str = "") -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    html = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="color-scheme" content="dark light">{meta}<title>{e(title)}</title>'
        f"<style>{CSS}</style></head><body>"
        f'<header><h1><a href="/" style="text-decoration:none">{e(title)}</a></h1>{stats}</header>'
        f"<main>{body}</main>"
        f"<footer>smokegate {e(__version__)} · rendered {e(_iso(time.time()))} · "
        '<a href="/api/v1/releases">API</a> · <a href="/openapi.json">OpenAPI</a> · '
        '<a href="/metrics">metrics</a></footer></body></html>\n'
    )
    return HTMLResponse(html)


def _strip(runs: list[RunSummary]) -> str:
    cells = "".join(
        f'<a class="{e(r.verdict.value)}" href="{_run_href(r.id)}" '
        f'title="{e(r.revision or "-")} · {e(r.verdict.value)} · {e(_iso(r.finished_at))}"></a>'
        for r in reversed(runs)  # oldest left, newest right, like a timeline
    )
    return f'<div class="strip" aria-label="history">{cells}</div>'


def _tile(latest: RunSummary, history: list[RunSummary], now: float) -> str:
    c = latest.counts
    bad = c.get("failed", 0) + c.get("error", 0)
    return (
        f'<section class="tile v-{e(latest.verdict.value)}" data-release="{e(latest.release)}">'
        f'<h2><a href="{_release_href(latest.release)}">{e(latest.release)}</a>'
        f'<span class="verdict {e(latest.verdict.value)}">{e(latest.verdict.value)}</span></h2>'
        f'<div class="line">revision <b class="rev">{e(latest.revision or "-")}</b>'
        f"· {e(latest.trigger)} · "
        f'<a href="{_run_href(latest.id)}" title="{e(_iso(latest.finished_at))}">'
        f"{e(_ago(latest.finished_at, now))}</a></div>"
        f'<div class="line"><span><b>{c.get("passed", 0)}</b> passed</span>'
        f"<span><b>{bad}</b> failed</span><span><b>{c.get('skipped', 0)}</b> skipped</span>"
        f"<span>{e(format_duration(latest.duration))}</span></div>"
        f'<div class="msg" title="{e(latest.message)}">{e(latest.message)}</div>'
        f"{_strip(history)}</section>"
    )


async def board(request: Request) -> Response:
    if (denied := authorized(request, write=False)) is not None:
        return denied
    state = state_of(request)
    cfg = state.config.dashboard
    latest: dict[str, RunSummary] = {}
    for s in await state.store.list_releases():
        if s.release not in latest or s.finished_at > latest[s.release].finished_at:
            latest[s.release] = s
    now = time.time()
    # Failing releases first: that is what someone glancing at the screen needs to see.
    order = sorted(latest.values(), key=lambda s: (s.verdict.value == "passed", s.release))
    tiles = []
    for s in order:
        history = await state.store.list_runs(s.release, limit=cfg.history)
        tiles.append(_tile(s, history, now))
    depth = await state.store.queue_depth()
    passing = sum(1 for s in latest.values() if s.verdict.value == "passed")
    stats = (
        f'<div class="stats"><span><b>{len(latest)}</b> releases</span>'
        f'<span class="n-pass"><b>{passing}</b> passing</span>'
        f'<span class="n-fail"><b>{len(latest) - passing}</b> failing</span>'
        f"<span><b>{depth.get('queued', 0)}</b> queued · <b>{depth.get('running', 0)}</b> "
        "running</span></div>"
    )
    body = (
        f'<div class="board">{"".join(tiles)}</div>'
        if tiles
        else '<p class="empty">No runs yet. Point a Flux Alert at /hooks/flux, or POST '
        "/api/v1/runs.</p>"
    )
    return _page(cfg.title, body, refresh=cfg.refresh, stats=stats)


async def release_page(request: Request) -> Response:
    if (denied := authorized(request, write=False)) is not None:
        return denied
    state = state_of(request)
    release = f"{request.path_params['namespace']}/{request.path_params['name']}"
    runs = await state.store.list_runs(release, limit=200)
    now = time.time()
    rows = "".join(
        f'<tr><td><span class="verdict {e(r.verdict.value)}">{e(r.verdict.value)}</span></td>'
        f'<td><a href="{_run_href(r.id)}"><code>{e(r.id)}</code></a></td>'
        f"<td><b>{e(r.revision or '-')}</b></td><td>{e(r.trigger)}</td>"
        f'<td title="{e(_iso(r.finished_at))}">{e(_ago(r.finished_at, now))}</td>'
        f'<td class="num">{e(format_duration(r.duration))}</td>'
        f'<td class="num">{r.counts.get("passed", 0)}/{r.counts.get("total", 0)}</td>'
        f"<td>{e(r.message)}</td></tr>"
        for r in runs
    )
    body = (
        f"{_strip(runs[: state.config.dashboard.history])}<br>"
        "<table><thead><tr><th>verdict</th><th>run</th><th>revision</th><th>trigger</th>"
        '<th>finished</th><th class="num">time</th><th class="num">passed</th><th>summary</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        if runs
        else f'<p class="empty">No runs of {e(release)}.</p>'
    )
    return _page(f"{state.config.dashboard.title} · {release}", body)


async def run_page(request: Request) -> Response:
    if (denied := authorized(request, write=False)) is not None:
        return denied
    from smokegate.report import html as html_report
    from smokegate.store.base import run_from_report

    state = state_of(request)
    run_id = request.path_params["run_id"]
    record = await state.store.get_run(run_id)
    if record is None:
        return _page("run not found", f'<p class="empty">No run {e(run_id)}.</p>')
    s = record.summary
    page = html_report.render(run_from_report(record.report))
    api = f"/api/v1/runs/{quote(s.id, safe='')}"
    bar = (
        f'{BAR_CSS}<div class="sg-bar"><a href="/">← all releases</a>'
        f'<a href="{_release_href(s.release)}">{e(s.release)} history</a>'
        f"<span>revision <b>{e(s.revision or '-')}</b> · trigger {e(s.trigger)} · "
        f"{e(s.verdict.value)}</span>"
        f'<a href="{api}?format=json">JSON</a><a href="{api}?format=junit">JUnit</a></div>'
    )
    return HTMLResponse(page.replace("<body>", "<body>" + bar, 1))
