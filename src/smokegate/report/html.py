"""One self-contained HTML file (inline CSS and a few lines of JS, no external assets).

Header with the verdict, counts, duration, run id and context; filter buttons (all / failed /
recovered / skipped / passed) and a search box; a table per suite with one row per check, each
expandable (click or Enter) to its evidence, attempts timeline, response snippet, details and log.
Failures start expanded when there are few of them. Light and dark follow the system setting.

Built with plain string joins so that 10,000 checks render in well under a second; every piece of
text from a run goes through ``html.escape``. No data is embedded in the script.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

from smokegate import __version__
from smokegate.core.cases import summary as cases_summary
from smokegate.core.durations import format_duration
from smokegate.core.results import CheckResult, RunResult, Status
from smokegate.report.jsonreport import cap_log

LOG_LIMIT = 64 * 1024
SNIPPET_LIMIT = 8192
OPEN_FAILURES_LIMIT = 50  # failures start expanded when there are at most this many

# C0 controls (but tab, newline, carriage return) and DEL are parse errors in HTML text.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_ICON = {Status.PASSED: "✓", Status.FAILED: "✗", Status.ERROR: "!", Status.SKIPPED: "–"}


def e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _ts(ts: float, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _dur(seconds: float) -> str:
    return html.escape(format_duration(seconds))


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def _json(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


CSS = """
:root{--bg:#fff;--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--panel:#f6f8fa;--hover:#eef1f4;
--pass:#1a7f37;--fail:#cf222e;--err:#8250df;--skip:#9a6700;--rec:#bc4c00;--accent:#0969da;
--pass-bg:#dafbe1;--fail-bg:#ffebe9;--warn-bg:#fff8c5}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;
--line:#30363d;--panel:#161b22;--hover:#1c2128;--pass:#3fb950;--fail:#f85149;--err:#a371f7;
--skip:#d29922;--rec:#db6d28;--accent:#4493f8;--pass-bg:#12261e;--fail-bg:#2d1517;
--warn-bg:#272115}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
header{padding:20px 28px;border-bottom:1px solid var(--line)}
header.v-passed{background:var(--pass-bg)}header.v-failed{background:var(--fail-bg)}
header.v-interrupted{background:var(--warn-bg)}
h1{margin:0 0 8px;font-size:22px;display:flex;gap:10px;align-items:center}
.verdict{padding:2px 10px;border-radius:6px;color:#fff;font-size:15px;letter-spacing:.04em}
.v-passed .verdict{background:var(--pass)}.v-failed .verdict{background:var(--fail)}
.v-interrupted .verdict{background:var(--skip)}
.counts{display:flex;flex-wrap:wrap;gap:14px;font-size:15px;margin:6px 0}
.counts b{font-variant-numeric:tabular-nums}
.n-passed{color:var(--pass)}.n-failed{color:var(--fail)}.n-error{color:var(--err)}
.n-skipped{color:var(--skip)}.n-recovered{color:var(--rec)}
.meta{display:flex;flex-wrap:wrap;gap:4px 18px;color:var(--muted);margin:6px 0 0}
.meta span b{color:var(--fg);font-weight:500}
nav{position:sticky;top:0;z-index:2;display:flex;flex-wrap:wrap;gap:8px;align-items:center;
padding:10px 28px;background:var(--bg);border-bottom:1px solid var(--line)}
nav button{border:1px solid var(--line);background:var(--panel);color:var(--fg);
border-radius:6px;padding:4px 12px;font:inherit;cursor:pointer}
nav button[aria-pressed=true]{background:var(--accent);border-color:var(--accent);color:#fff}
nav input{flex:1;min-width:200px;max-width:420px;padding:5px 10px;border:1px solid var(--line);
border-radius:6px;background:var(--bg);color:var(--fg);font:inherit}
#shown{color:var(--muted)}
main{padding:8px 28px 40px}
section{margin:18px 0}
h2{font-size:16px;margin:0 0 6px;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
h2 small{color:var(--muted);font-weight:400}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;padding:4px 8px;
border-bottom:1px solid var(--line)}
td{padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
tr.row{cursor:pointer}tr.row:hover,tr.row:focus{background:var(--hover);outline:none}
td.st{width:1.5em;text-align:center;font-weight:700}
.s-passed td.st{color:var(--pass)}.s-failed td.st{color:var(--fail)}
.s-error td.st{color:var(--err)}.s-skipped td.st{color:var(--skip)}
.s-skipped .name{color:var(--muted)}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.msg{color:var(--muted);max-width:40vw;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}
.s-failed td.msg,.s-error td.msg{color:var(--fail)}
.tag{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:0 7px;
font-size:11.5px;color:var(--muted);margin-right:3px}
.badge-rec{color:var(--rec);font-size:12px;margin-left:6px}
tbody.c:not(.open) tr.det{display:none}
tr.det>td{background:var(--panel);padding:10px 16px 14px 40px}
.det h4{margin:10px 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.05em;
color:var(--muted)}
.det table{width:auto;min-width:50%}.det td,.det th{border-color:var(--line)}
.exp{color:var(--pass)}.act{color:var(--fail)}
pre{margin:0;padding:8px 10px;background:var(--bg);border:1px solid var(--line);
border-radius:6px;max-height:420px;overflow:auto;white-space:pre-wrap;word-break:break-all}
.tl{position:relative;height:10px;background:var(--bg);border:1px solid var(--line);
border-radius:5px;margin:4px 0 6px;max-width:640px}
.tl span{position:absolute;top:1px;bottom:1px;min-width:2px;border-radius:4px}
.ok{background:var(--pass)}.ko{background:var(--fail)}
.a-ok{color:var(--pass)}.a-ko{color:var(--fail)}
.kv{color:var(--muted)}.kv b{color:var(--fg);font-weight:500}
[hidden]{display:none!important}
footer{color:var(--muted);padding:0 28px 24px;font-size:12px}
"""

JS = """
(function(){
var f='all',q='',cs=[].slice.call(document.querySelectorAll('tbody.c')),
ss=[].slice.call(document.querySelectorAll('section.suite')),
bs=[].slice.call(document.querySelectorAll('nav button')),shown=document.getElementById('shown');
function pass(c){var l=c.classList;
if(f==='failed'&&!(l.contains('s-failed')||l.contains('s-error')))return false;
if(f==='recovered'&&!l.contains('rec'))return false;
if(f==='skipped'&&!l.contains('s-skipped'))return false;
if(f==='passed'&&!l.contains('s-passed'))return false;
return !q||c.getAttribute('data-q').indexOf(q)>=0}
function apply(){var n=0;cs.forEach(function(c){var v=pass(c);c.hidden=!v;if(v)n++});
ss.forEach(function(s){s.hidden=!s.querySelector('tbody.c:not([hidden])')});
shown.textContent=n+' of '+cs.length+' shown'}
bs.forEach(function(b){b.addEventListener('click',function(){
bs.forEach(function(x){x.setAttribute('aria-pressed',x===b?'true':'false')});
f=b.getAttribute('data-f');apply()})});
var t;document.getElementById('q').addEventListener('input',function(ev){clearTimeout(t);
t=setTimeout(function(){q=ev.target.value.trim().toLowerCase();apply()},120)});
function toggle(r){var c=r.parentNode;c.classList.toggle('open');
r.setAttribute('aria-expanded',c.classList.contains('open'))}
document.addEventListener('click',function(ev){if(String(window.getSelection()))return;
var r=ev.target.closest('tr.row');if(r)toggle(r)});
document.addEventListener('keydown',function(ev){
var r=ev.target.closest&&ev.target.closest('tr.row');
if(r&&(ev.key==='Enter'||ev.key===' ')){ev.preventDefault();toggle(r)}});
apply()})();
"""


def _span(results: list[CheckResult]) -> float:
    timed = [r for r in results if r.started_at]
    if not timed:
        return 0.0
    return max(r.started_at + r.duration for r in timed) - min(r.started_at for r in timed)


def _context_items(run: RunResult) -> list[tuple[str, str]]:
    """Release and revision first, then the rest of the run context, flattened."""
    items: list[tuple[str, str]] = []
    ctx = run.context or {}
    release = ctx.get("release")
    if isinstance(release, dict):
        name = release.get("name") or release.get("helmRelease")
        ns = release.get("namespace")
        if name:
            items.append(("release", f"{ns}/{name}" if ns else str(name)))
        if release.get("revision") is not None:
            items.append(("revision", str(release["revision"])))
        for k, v in release.items():
            if k not in ("name", "helmRelease", "namespace", "revision") and v is not None:
                items.append((f"release.{k}", _json(v)))
    elif release:
        items.append(("release", str(release)))
    if ctx.get("revision") is not None:
        items.append(("revision", str(ctx["revision"])))
    for k, v in ctx.items():
        if k not in ("release", "revision") and v is not None:
            items.append((str(k), _json(v)))
    return items


def _header(run: RunResult) -> str:
    counts = run.counts()
    verdict = "interrupted" if run.interrupted else "passed" if run.ok else "failed"
    n = [
        f"<span><b>{counts['total']:,}</b> checks</span>",
        f'<span class="n-passed"><b>{counts["passed"]:,}</b> passed</span>',
    ]
    for key, label in (("failed", "failed"), ("error", "errors"), ("skipped", "skipped")):
        if counts[key]:
            n.append(f'<span class="n-{key}"><b>{counts[key]:,}</b> {label}</span>')
    if counts["recovered"]:
        n.append(
            f'<span class="n-recovered"><b>{counts["recovered"]:,}</b> recovered after retries'
            "</span>"
        )
    meta = [
        f"<span>duration <b>{e(format_duration(run.duration))}</b></span>",
        f"<span>started <b>{e(_ts(run.started_at))}</b></span>",
        f'<span>run <b class="mono">{e(run.run_id)}</b></span>',
    ]
    meta += [f"<span>{e(k)} <b>{e(v)}</b></span>" for k, v in _context_items(run)]
    return (
        f'<header class="v-{verdict}"><h1><span class="verdict">{verdict.upper()}</span>'
        f"smokegate run</h1>"
        f'<div class="counts">{"".join(n)}</div><div class="meta">{"".join(meta)}</div></header>'
    )


def _nav(run: RunResult) -> str:
    counts = run.counts()
    buttons = [
        ("all", "All", counts["total"]),
        ("failed", "Failed", counts["failed"] + counts["error"]),
        ("recovered", "Recovered", counts["recovered"]),
        ("skipped", "Skipped", counts["skipped"]),
        ("passed", "Passed", counts["passed"]),
    ]
    out = [
        f'<button type="button" data-f="{key}" aria-pressed="{str(key == "all").lower()}">'
        f"{label} <b>{n:,}</b></button>"
        for key, label, n in buttons
    ]
    return (
        '<nav aria-label="filters">'
        + "".join(out)
        + '<input id="q" type="search" placeholder="Search checks, tags, messages…" '
        'aria-label="search checks"><span id="shown"></span></nav>'
    )


def _timeline(r: CheckResult) -> str:
    atts = r.attempts
    start = atts[0].started_at
    end = max(a.started_at + a.duration for a in atts)
    total = max(end - start, 1e-9)
    bars = "".join(
        f'<span class="{"ok" if a.ok else "ko"}" title="attempt {a.number}" '
        f'style="left:{(a.started_at - start) / total * 100:.2f}%;'
        f'width:{a.duration / total * 100:.2f}%"></span>'
        for a in atts
    )
    return f'<div class="tl">{bars}</div>'


def _detail(r: CheckResult) -> str:
    parts = []
    kv = [f"<span>id <b class=mono>{e(r.id)}</b></span>"]
    if r.source:
        kv.append(f"<span>source <b class=mono>{e(r.source)}</b></span>")
    if r.error_kind:
        kv.append(f"<span>error kind <b>{e(r.error_kind)}</b></span>")
    kv.append(f"<span>started <b>{e(_ts(r.started_at, 'milliseconds'))}</b></span>")
    for k, v in r.details.items():
        kv.append(f"<span>{e(k)} <b class=mono>{e(_json(v))}</b></span>")
    parts.append(f'<div class="kv meta">{"".join(kv)}</div>')
    if r.description:
        parts.append(f"<p>{e(r.description)}</p>")
    if r.message and r.status is not Status.PASSED:
        parts.append(f"<h4>message</h4><pre>{e(r.message)}</pre>")
    if r.evidence:
        rows = "".join(
            f"<tr><td class=mono>{e(m.subject)}</td><td class='mono exp'>{e(m.expected)}</td>"
            f"<td class='mono act'>{e(m.actual)}</td></tr>"
            for m in r.evidence
        )
        parts.append(
            "<h4>evidence</h4><table><thead><tr><th>subject</th><th>expected</th>"
            f"<th>actual</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    if len(r.attempts) == 1 and r.attempts[0].ok:
        # The common case, kept short: 10,000 of these make up most of a big report.
        a = r.attempts[0]
        parts.append(f"<p class=kv>passed on the first attempt in <b>{_dur(a.duration)}</b></p>")
    elif r.attempts:
        t0 = r.attempts[0].started_at
        rows = "".join(
            f"<tr><td class=num>#{a.number}</td><td class=mono>{_clock(a.started_at)}Z</td>"
            f"<td class=num>+{e(format_duration(a.started_at - t0))}</td>"
            f"<td class=num>{e(format_duration(a.duration))}</td>"
            f"<td class={'a-ok' if a.ok else 'a-ko'}>{'passed' if a.ok else 'failed'}"
            f"{' · ' + e(a.error_kind) if a.error_kind and not a.ok else ''}</td>"
            f"<td>{e(a.message)}</td></tr>"
            for a in r.attempts
        )
        timeline = _timeline(r) if len(r.attempts) > 1 else ""
        parts.append(
            f"<h4>attempts</h4>{timeline}<table><thead><tr><th>#</th><th>started (UTC)</th>"
            "<th>offset</th><th>took</th><th>outcome</th><th>message</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    if r.cases:
        parts.append(_cases(r))
    if r.snippet:
        snippet = r.snippet if len(r.snippet) <= SNIPPET_LIMIT else r.snippet[:SNIPPET_LIMIT] + "…"
        parts.append(f"<h4>response</h4><pre>{e(snippet)}</pre>")
    if r.log:
        parts.append(f"<h4>log</h4><pre>{e(cap_log(r.log, LOG_LIMIT))}</pre>")
    return "".join(parts)


CASE_ROWS = 500


def _cases(r: CheckResult) -> str:
    """The test cases of a suite-running check, failing first; a failing case's body and
    output open under it."""
    ordered = [c for c in r.cases if c.failed] + [c for c in r.cases if not c.failed]
    rows = []
    for c in ordered[:CASE_ROWS]:
        extra = c.message if c.message.strip() != c.headline else ""
        body = "\n\n".join(t for t in (extra, c.text, c.output) if t)
        more = f"<details><summary>output</summary><pre>{e(body)}</pre></details>" if body else ""
        rows.append(
            f'<tr class="case s-{c.status}"><td class="st">{_ICON[Status(c.status)]}</td>'
            f"<td class=mono>{e(c.full_name)}</td><td class=num>{e(format_duration(c.time))}</td>"
            f"<td>{e(c.headline)}{more}</td></tr>"
        )
    if len(ordered) > CASE_ROWS:
        rows.append(f"<tr><td></td><td colspan=3>… {len(ordered) - CASE_ROWS} more</td></tr>")
    return (
        f"<h4>test cases · {e(cases_summary(r.cases))}</h4><table class=cases><thead><tr>"
        "<th></th><th>case</th><th>took</th><th>message</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _row(r: CheckResult, open_: bool) -> str:
    status = r.status.value
    classes = f"c s-{status}" + (" rec" if r.recovered else "") + (" open" if open_ else "")
    failing = [c.full_name for c in r.cases if c.failed][:50]
    search = " ".join(
        (r.id, r.name, r.kind, *r.tags, r.error_kind or "", r.message[:300], *failing)
    )
    tags = "".join(f'<span class="tag">{e(t)}</span>' for t in r.tags)
    rec = f'<span class="badge-rec">recovered after {len(r.attempts)}</span>' if r.recovered else ""
    msg = r.message if r.status is not Status.PASSED else ""
    if r.cases and not msg:
        msg = cases_summary(r.cases)
    title = f' title="{e(msg[:500])}"' if msg else ""
    return (
        f'<tbody class="{classes}" data-q="{e(search.lower())}">'
        f'<tr class="row" tabindex="0" aria-expanded="{"true" if open_ else "false"}">'
        f'<td class="st" title="{status}">{_ICON[r.status]}</td>'
        f'<td class="name">{e(r.name)}{rec}</td><td>{e(r.kind)}</td><td>{tags}</td>'
        f'<td class="num">{len(r.attempts)}</td><td class="num">{format_duration(r.duration)}</td>'
        f'<td class="msg"{title}>{e(msg[:300])}</td></tr>'
        f'<tr class="det"><td colspan="7">{_detail(r)}</td></tr></tbody>'
    )


def _suite(name: str, file: str | None, results: list[CheckResult], open_failures: bool) -> str:
    counts = {s: 0 for s in Status}
    for r in results:
        counts[r.status] += 1
    summary = ", ".join(f"{n:,} {s.value}" for s, n in counts.items() if n)
    rows = "".join(
        _row(r, open_failures and r.status in (Status.FAILED, Status.ERROR)) for r in results
    )
    where = f"<small class=mono>{e(file)}</small>" if file else ""
    return (
        f'<section class="suite"><h2>{e(name)} {where}<small>{summary} · '
        f"{format_duration(_span(results))}</small></h2>"
        "<table><thead><tr><th></th><th>check</th><th>kind</th><th>tags</th>"
        '<th class="num">attempts</th><th class="num">time</th><th>message</th></tr></thead>'
        f"{rows}</table></section>"
    )


def render(run: RunResult) -> str:
    counts = run.counts()
    verdict = "INTERRUPTED" if run.interrupted else ("PASSED" if run.ok else "FAILED")
    files = {s.name: s.file for s in run.suites}
    open_failures = counts["failed"] + counts["error"] <= OPEN_FAILURES_LIMIT
    sections = [
        _suite(name, files.get(name), results, open_failures)
        for name, results in run.by_suite().items()
        if results
    ]
    body = "".join(sections) or "<p>No checks ran.</p>"
    title = f"{verdict} · smokegate run {run.run_id}"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f"{_header(run)}{_nav(run)}<main>{body}</main>"
        f"<footer>smokegate {e(__version__)} · report generated "
        f"{e(_ts(run.finished_at or run.started_at))}</footer>"
        f"<script>{JS}</script></body></html>\n"
    )
    return _CONTROL.sub("", page)
