"""The wallboard's pages, style sheet and script — served by us, no CDN.

Pages are rendered in Chinese; the script swaps every ``data-i18n`` text for English when the
toggle is pressed (the choice is remembered in the browser). Numbers carry stable element ids
(``total-waiting``, ``q-<queue>-waiting``, ``m-<number>-share`` ...) that the browser test reads.
"""

from __future__ import annotations

import json
from html import escape

CSS = """
:root { --bg:#0b1320; --panel:#14213a; --ink:#e8eef8; --dim:#8da2c0; --ok:#39d98a; --bad:#ff4d5e; --warn:#ffb020; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif; }
header { display:flex; align-items:center; gap:1.5rem; padding:.6rem 1.2rem; background:var(--panel); }
header h1 { font-size:1.6rem; margin:0; flex:1; }
header a, header button { color:var(--ink); background:none; border:1px solid var(--dim); border-radius:.3rem;
  padding:.3rem .8rem; font-size:1rem; text-decoration:none; cursor:pointer; }
header .who { color:var(--dim); }
main { padding:1rem 1.2rem; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit,minmax(13rem,1fr)); gap:1rem; margin-bottom:1rem; }
.tile { background:var(--panel); border-radius:.6rem; padding:.8rem 1rem; }
.tile .label { color:var(--dim); font-size:1.1rem; }
.tile .big { font-size:3.6rem; font-weight:700; line-height:1.1; font-variant-numeric:tabular-nums; }
.bad, td.bad { color:var(--bad); }
.good { color:var(--ok); }
section { background:var(--panel); border-radius:.6rem; padding:.6rem 1rem; margin-bottom:1rem; }
section h2 { font-size:1.3rem; margin:.2rem 0 .6rem; color:var(--dim); }
table { width:100%; border-collapse:collapse; font-size:1.3rem; font-variant-numeric:tabular-nums; }
th, td { padding:.3rem .5rem; text-align:right; border-bottom:1px solid #22324f; }
th:first-child, td:first-child, th.name, td.name { text-align:left; }
th { color:var(--dim); font-weight:400; }
tr.bad td { color:var(--bad); }
.alerts li { margin:.3rem 0; font-size:1.2rem; }
.alerts li.acked { color:var(--dim); }
.cols { display:grid; grid-template-columns:2fr 1fr; gap:1rem; }
form.login { max-width:22rem; margin:10vh auto; background:var(--panel); padding:1.5rem; border-radius:.6rem; }
form.login input { width:100%; font-size:1.2rem; margin:.3rem 0 .8rem; padding:.4rem; }
form.login button { font-size:1.2rem; padding:.4rem 1.2rem; }
.error { color:var(--bad); }
.readonly { color:var(--dim); font-size:.95rem; }
"""

# Every visible string, in both languages; the page is rendered with "zh".
STRINGS: dict[str, dict[str, str]] = {
    "title": {"zh": "12345 热线监控大屏", "en": "12345 hotline wallboard"},
    "merger_title": {"zh": "热线归并进度", "en": "Hotline merger progress"},
    "login_title": {"zh": "登录", "en": "Log in"},
    "user": {"zh": "用户名", "en": "User"},
    "password": {"zh": "密码", "en": "Password"},
    "login": {"zh": "登录", "en": "Log in"},
    "logout": {"zh": "退出", "en": "Log out"},
    "bad_login": {"zh": "用户名或密码错误", "en": "Wrong user or password"},
    "lang": {"zh": "English", "en": "中文"},
    "wall": {"zh": "实时监控", "en": "Live"},
    "merger": {"zh": "归并进度", "en": "Merger"},
    "supervisor": {"zh": "值班长", "en": "supervisor"},
    "viewer": {"zh": "只读", "en": "viewer"},
    "waiting": {"zh": "排队等待", "en": "Waiting"},
    "longest_wait": {"zh": "最长等待", "en": "Longest wait"},
    "agents_free": {"zh": "空闲坐席", "en": "Agents free"},
    "agents_busy": {"zh": "通话坐席", "en": "Agents busy"},
    "agents_paused": {"zh": "暂停坐席", "en": "Agents paused"},
    "calls_today": {"zh": "今日来电", "en": "Calls today"},
    "answer_rate": {"zh": "今日接通率", "en": "Answer rate today"},
    "satisfaction": {"zh": "满意率", "en": "Satisfaction"},
    "controller": {"zh": "控制器", "en": "Controller"},
    "queues": {"zh": "队列", "en": "Queues"},
    "nodes": {"zh": "各节点", "en": "Asterisk nodes"},
    "node": {"zh": "节点", "en": "Node"},
    "node_stale": {"zh": "失联", "en": "silent"},
    "queue": {"zh": "队列", "en": "Queue"},
    "longest_caller": {"zh": "最久来电", "en": "Longest caller"},
    "free": {"zh": "空闲", "en": "Free"},
    "busy": {"zh": "通话", "en": "Busy"},
    "paused": {"zh": "暂停", "en": "Paused"},
    "answered": {"zh": "接通", "en": "Answered"},
    "unanswered": {"zh": "未接通", "en": "Unanswered"},
    "rate": {"zh": "接通率", "en": "Rate"},
    "lines": {"zh": "来电号码（原热线）", "en": "Volume by origin line"},
    "line": {"zh": "号码", "en": "Line"},
    "name": {"zh": "名称", "en": "Name"},
    "calls": {"zh": "来电", "en": "Calls"},
    "old_number": {"zh": "拨打原号码", "en": "On old number"},
    "retired_note": {"zh": "红色：已并入号码仍有来电", "en": "Red: callers still dialling a retired number"},
    "transfers": {"zh": "转接", "en": "Transfers"},
    "to_subcentres": {"zh": "转分中心", "en": "To sub-centres"},
    "other": {"zh": "其他", "en": "Other"},
    "ratings": {"zh": "满意 / 基本满意 / 不满意", "en": "Satisfied / fair / dissatisfied"},
    "alerts": {"zh": "告警", "en": "Alerts"},
    "no_alerts": {"zh": "无告警", "en": "No alerts"},
    "ack": {"zh": "确认", "en": "Acknowledge"},
    "acked": {"zh": "已确认", "en": "acknowledged"},
    "alert_rate": {"zh": "接通率低于目标", "en": "answer rate below target"},
    "alert_wait": {"zh": "等待超时（秒）", "en": "waiting too long (s)"},
    "thresholds": {"zh": "告警阈值", "en": "Alert thresholds"},
    "answer_target": {"zh": "接通率目标 %", "en": "Answer-rate target %"},
    "wait_alert": {"zh": "等待告警（秒）", "en": "Wait alert (s)"},
    "save": {"zh": "保存", "en": "Save"},
    "supervise": {"zh": "监听与录音", "en": "Listen in and recordings"},
    "spy_target": {"zh": "坐席通道或呼叫编号", "en": "Agent channel or call id"},
    "listen": {"zh": "监听", "en": "Listen"},
    "whisper": {"zh": "耳语", "en": "Whisper"},
    "barge": {"zh": "强插", "en": "Barge"},
    "play_recording": {"zh": "播放录音", "en": "Play recording"},
    "no_recording": {"zh": "无可播放的录音", "en": "No recording to play"},
    "readonly": {
        "zh": "只读：值班长可确认告警、修改阈值",
        "en": "Read-only: supervisors acknowledge alerts and set thresholds",
    },
    "experts": {"zh": "专家座席", "en": "Expert seats"},
    "subcentres": {"zh": "分中心", "en": "Sub-centres"},
    "mode": {"zh": "归并方式", "en": "Mode"},
    "phase": {"zh": "阶段", "en": "Phase"},
    "calls_week": {"zh": "本周来电", "en": "Calls this week"},
    "old_share": {"zh": "仍拨原号码占比", "en": "Still on old number"},
    "window_end": {"zh": "过渡期截止", "en": "Window ends"},
    "days_left": {"zh": "剩余天数", "en": "Days left"},
    "calendar": {"zh": "节假日", "en": "Holidays"},
    "mode_merge": {"zh": "整体并入", "en": "merged"},
    "mode_parallel": {"zh": "双号并行", "en": "parallel"},
    "phase_before": {"zh": "未切换", "en": "before cut-over"},
    "phase_transition": {"zh": "过渡期", "en": "transition"},
    "phase_after": {"zh": "已切换", "en": "after"},
    "phase_none": {"zh": "—", "en": "—"},
    "cutover_in": {"zh": "距切换", "en": "to cut-over"},
    "updated": {"zh": "更新于", "en": "Updated"},
    "agents_today": {"zh": "座席状态（今日）", "en": "Agents today"},
    "agent": {"zh": "座席", "en": "Agent"},
    "state": {"zh": "状态", "en": "State"},
    "logged_in": {"zh": "登录时长", "en": "Logged in"},
    "paused_time": {"zh": "示忙时长", "en": "Paused"},
    "talk": {"zh": "通话时长", "en": "Talk"},
    "occupancy": {"zh": "占用率", "en": "Occupancy"},
    "state_in": {"zh": "已登录", "en": "in"},
    "state_out": {"zh": "已登出", "en": "out"},
    "state_paused": {"zh": "示忙", "en": "paused"},
    "agent_command": {"zh": "座席操作", "en": "Agent command"},
    "reason": {"zh": "原因", "en": "Reason"},
    "send": {"zh": "执行", "en": "Send"},
    "login_agent": {"zh": "签入", "en": "log in"},
    "logout_agent": {"zh": "签出", "en": "log out"},
    "pause_agent": {"zh": "示忙", "en": "pause"},
    "unpause_agent": {"zh": "示闲", "en": "unpause"},
    "callbacks": {"zh": "回呼", "en": "Callbacks"},
    "cb_number": {"zh": "回呼号码", "en": "Number"},
    "cb_status": {"zh": "状态", "en": "Status"},
    "cb_position": {"zh": "原排队位置", "en": "Place"},
    "cb_attempts": {"zh": "已拨次数", "en": "Attempts"},
    "cb_since": {"zh": "登记时间", "en": "Since"},
    "cb_waiting": {"zh": "排队中", "en": "waiting"},
    "cb_calling": {"zh": "回拨中", "en": "calling"},
    "cb_retry": {"zh": "待重拨", "en": "to retry"},
    "cb_listed": {"zh": "放弃待回呼", "en": "abandoned, listed"},
    "disconnected": {"zh": "连接中断，正在重连…", "en": "Disconnected, reconnecting…"},
    "no_asterisk": {
        "zh": "本大屏未连接 Asterisk（区域中心）：各节点数据来自数据库；监听、录音与座席操作请在节点大屏上进行",
        "en": "No Asterisk link at this wall (region centre): every node is read from the database; listening, "
        "recordings and agent commands are on a node's wall",
    },
    "agents_from_log": {
        "zh": "座席状态来自各节点的状态日志；来电与通话时长只计已结束的来电",
        "en": "Agents from every node's state log; calls and talk count finished calls only",
    },
}


def t(key: str) -> str:
    """The Chinese text of ``key`` (pages are rendered in Chinese)."""
    return STRINGS[key]["zh"]


def _i18n(key: str, tag: str = "span", attrs: str = "") -> str:
    return f'<{tag} data-i18n="{key}"{attrs}>{escape(t(key))}</{tag}>'


def _head(title_key: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title data-i18n="{title_key}">{escape(t(title_key))}</title>'
        '<link rel="stylesheet" href="/static/wallboard.css"></head>'
    )


def _header(title_key: str, user: str, role: str, page: str) -> str:
    other = ("/merger", "merger") if page == "wall" else ("/", "wall")
    return (
        f"<header>{_i18n(title_key, 'h1')}"
        f'<a id="nav" href="{other[0]}" data-i18n="{other[1]}">{escape(t(other[1]))}</a>'
        f'<span class="who" id="whoami" data-role="{escape(role)}">{escape(user)} · {_i18n(role)}</span>'
        f'<button id="lang-toggle" type="button" data-i18n="lang">{escape(t("lang"))}</button>'
        '<form method="post" action="/logout"><button id="logout" type="submit" data-i18n="logout">'
        f"{escape(t('logout'))}</button></form></header>"
    )


def _tile(key: str, element_id: str) -> str:
    return f'<div class="tile">{_i18n(key, "div", " class=label")}<div class="big" id="{element_id}">—</div></div>'


def _table(body_id: str, keys: list[str]) -> str:
    cells = "".join(_i18n(k, "th", ' class="name"' if k == "name" else "") for k in keys)
    return f'<table><thead><tr>{cells}</tr></thead><tbody id="{body_id}"></tbody></table>'


def wall_page(user: str, role: str, asterisk: bool = True) -> str:
    """The live wall: tiles, queues, lines, transfers, satisfaction, alerts (and thresholds for supervisors).

    ``asterisk`` False (a wall with no Asterisk link): no agent commands, listening or recordings are offered,
    and the page says why."""
    tiles = "".join(
        _tile(k, i)
        for k, i in (
            ("waiting", "total-waiting"),
            ("longest_wait", "longest-wait"),
            ("agents_free", "agents-free"),
            ("agents_busy", "agents-busy"),
            ("agents_paused", "agents-paused"),
            ("calls_today", "calls-today"),
            ("answer_rate", "answer-rate"),
            ("satisfaction", "satisfaction-rate"),
            ("controller", "controller-health"),
        )
    )
    queue_cols = [
        "queue",
        "waiting",
        "longest_wait",
        "longest_caller",
        "free",
        "busy",
        "paused",
        "answered",
        "unanswered",
        "rate",
    ]
    line_cols = ["line", "name", "calls", "old_number", "answered", "unanswered", "rate"]
    transfers = "".join(
        f'<div class="tile"><div class="label">{n}</div><div class="big" id="xfer-{n}">0</div></div>'
        for n in ("110", "119", "120", "122")
    )
    transfers += (
        f'<div class="tile">{_i18n("to_subcentres", "div", " class=label")}<div class="big" id="xfer-subcentre">0</div></div>'
        f'<div class="tile">{_i18n("other", "div", " class=label")}<div class="big" id="xfer-other">0</div></div>'
    )
    supervisor = role == "supervisor"
    controls = (
        f'<form id="thresholds-form">{_i18n("thresholds", "h2")}'
        f'<label>{_i18n("answer_target")} <input id="answer-target" type="number" min="1" max="100" step="0.1"></label> '
        f'<label>{_i18n("wait_alert")} <input id="wait-alert" type="number" min="1" max="3600" step="1"></label> '
        f'<button type="submit" data-i18n="save">{escape(t("save"))}</button></form>'
        if supervisor
        else _i18n("readonly", "p", ' class="readonly" id="readonly-note"')
    )
    agent_cols = ["agent", "state", "logged_in", "paused_time", "calls", "talk", "occupancy"]
    agent_form = (
        f'<form id="agent-form">{_i18n("agent_command", "h2")}'
        f'<label>{_i18n("agent")} <input id="agent-id" pattern="[0-9A-Za-z]+" maxlength="40" required></label> '
        '<select id="agent-action">'
        + "".join(
            f'<option value="{a}" data-i18n="{a}_agent">{escape(t(a + "_agent"))}</option>'
            for a in ("login", "logout", "pause", "unpause")
        )
        + "</select> "
        f'<label>{_i18n("reason")} <input id="agent-reason" maxlength="40"></label> '
        f'<button type="submit" data-i18n="send">{escape(t("send"))}</button> <span id="agent-result"></span></form>'
        if supervisor and asterisk
        else ""
    )
    if not asterisk:
        agent_form = _i18n("agents_from_log", "p", ' class="readonly" id="agents-note"')
    # Supervisors only: listen / whisper / barge from their own phone, and play a call's recording.
    buttons = "".join(
        f'<button type="submit" name="mode" value="{m}" id="spy-{m}" data-i18n="{m}">{escape(t(m))}</button> '
        for m in ("listen", "whisper", "barge")
    )
    supervise = (
        f'<section id="supervise-section"><form id="spy-form">{_i18n("supervise", "h2")}'
        f'<label>{_i18n("spy_target")} <input id="spy-target" maxlength="120" autocomplete="off"></label> '
        f"{buttons}"
        f'<button type="button" id="play-recording" data-i18n="play_recording">{escape(t("play_recording"))}</button>'
        f' <span id="spy-result"></span></form><audio id="recording-player" controls preload="none"></audio></section>'
        if supervisor and asterisk
        else ""
    )
    if not asterisk:
        note = _i18n("no_asterisk", "p", ' class="readonly" id="no-asterisk-note"')
        supervise = f"<section>{note}</section>"
    return (
        _head("title")
        + f'<body data-page="wall" data-role="{escape(role)}">'
        + _header("title", user, role, "wall")
        + f'<main><div class="tiles">{tiles}</div>'
        + '<div class="cols"><div>'
        + f"<section>{_i18n('queues', 'h2')}{_table('queues', queue_cols)}</section>"
        + f'<section id="nodes-section" hidden>{_i18n("nodes", "h2")}'
        + f"{_table('nodes', ['node', 'waiting', 'longest_wait', 'free', 'busy', 'paused'])}</section>"
        + f"<section>{_i18n('lines', 'h2')}<p class=readonly>{_i18n('retired_note')}</p>{_table('lines', line_cols)}</section>"
        + f"<section>{_i18n('experts', 'h2')}{_table('experts', ['name', 'answered', 'unanswered', 'rate'])}</section>"
        + f"<section>{_i18n('subcentres', 'h2')}{_table('subcentres', ['name', 'answered', 'unanswered', 'rate'])}</section>"
        + f"<section>{_i18n('agents_today', 'h2')}{_table('agents', agent_cols)}{agent_form}</section>"
        + "</div><div>"
        + f'<section>{_i18n("alerts", "h2")}<ul class="alerts" id="alerts"></ul>{controls}</section>'
        + supervise
        + f'<section>{_i18n("transfers", "h2")}<div class="tiles">{transfers}</div></section>'
        + f"<section>{_i18n('callbacks', 'h2')}"
        + _table("callbacks", ["queue", "cb_number", "cb_status", "cb_position", "cb_attempts", "cb_since"])
        + "</section>"
        + f'<section>{_i18n("ratings", "h2")}<div class="tiles">'
        + "".join(f'<div class="tile"><div class="big" id="rating-{k}">0</div></div>' for k in (1, 2, 3))
        + "</div></section>"
        + f'<p class="readonly">{_i18n("updated")} <span id="updated">—</span> <span id="status"></span></p>'
        + "</div></div></main>"
        + '<script src="/static/wallboard.js"></script></body></html>'
    )


def merger_page(user: str, role: str) -> str:
    """The merger view: one row per retired or parallel line."""
    cols = [
        "line",
        "name",
        "mode",
        "phase",
        "calls_week",
        "old_number",
        "old_share",
        "window_end",
        "days_left",
        "calendar",
    ]
    return (
        _head("merger_title")
        + f'<body data-page="merger" data-role="{escape(role)}">'
        + _header("merger_title", user, role, "merger")
        + f"<main><section>{_table('merger', cols)}</section>"
        + f'<p class="readonly">{_i18n("updated")} <span id="updated">—</span> <span id="status"></span></p></main>'
        + '<script src="/static/wallboard.js"></script></body></html>'
    )


def login_page(next_url: str = "/", failed: bool = False) -> str:
    """The login form; ``failed`` adds the error line."""
    error = _i18n("bad_login", "p", ' class="error" id="login-error"') if failed else ""
    return (
        _head("login_title")
        + '<body data-page="login"><form class="login" method="post" action="/login">'
        + f"{_i18n('title', 'h2')}{error}"
        + f'<label>{_i18n("user")}<input id="user" name="user" autocomplete="username" required></label>'
        + f'<label>{_i18n("password")}<input id="password" name="password" type="password" autocomplete="current-password" required></label>'
        + f'<input type="hidden" name="next" value="{escape(next_url)}">'
        + f'<button id="login-button" type="submit" data-i18n="login">{escape(t("login"))}</button> '
        + f'<button id="lang-toggle" type="button" data-i18n="lang">{escape(t("lang"))}</button>'
        + '</form><script src="/static/wallboard.js"></script></body></html>'
    )


def script() -> str:
    """The page script: language toggle, SSE rendering, supervisor actions."""
    return "const I18N = " + json.dumps(STRINGS, ensure_ascii=False) + ";\n" + _SCRIPT


_SCRIPT = r"""
(function () {
  "use strict";
  let lang = localStorage.getItem("wallboard-lang") || "zh";
  const $ = (id) => document.getElementById(id);
  const tr = (key) => (I18N[key] ? I18N[key][lang] : key);
  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = tr(el.dataset.i18n); });
  }
  const toggle = $("lang-toggle");
  if (toggle) toggle.addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("wallboard-lang", lang);
    applyLang();
    if (last) render(last);
  });
  applyLang();
  const page = document.body.dataset.page;
  if (page === "login") return;
  const supervisor = document.body.dataset.role === "supervisor";
  const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%");
  // null: callers wait on a node that does not say since when (an events service from before node_queues.oldest)
  const mmss = (s) => (s === null ? "—" : Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"));
  function put(id, text, value, bad) {
    const el = $(id);
    if (!el) return;
    el.textContent = text;
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.classList.toggle("bad", !!bad);
  }
  function cell(row, id, text, value, cls) {
    const td = document.createElement("td");
    if (id) td.id = id;
    td.textContent = text;
    if (value !== undefined) td.dataset.value = value === null ? "" : String(value);
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  function rows(bodyId, items, build) {
    const body = $(bodyId);
    if (!body) return;
    body.replaceChildren();
    items.forEach((item) => { const tr_ = document.createElement("tr"); build(tr_, item); body.appendChild(tr_); });
  }
  const safeId = (s) => String(s).replace(/[^A-Za-z0-9_-]/g, "_");
  function renderWall(s) {
    const t = s.totals;
    put("total-waiting", String(t.waiting), t.waiting);
    put("longest-wait", mmss(t.longest_wait), t.longest_wait, t.longest_wait > s.thresholds.wait_alert);
    put("agents-free", String(t.free), t.free);
    put("agents-busy", String(t.busy), t.busy);
    put("agents-paused", String(t.paused), t.paused);
    put("calls-today", String(t.calls_today), t.calls_today);
    put("answer-rate", pct(t.answer_rate), t.answer_rate, t.below_target);
    put("satisfaction-rate", pct(s.satisfaction.rate), s.satisfaction.rate);
    if (s.controller) {  // serve's processes: OK, or what is wrong (a restart, a stall, a stale status)
      const c = s.controller, svc = c.services || {};
      const restarts = Object.values(svc).reduce((n, v) => n + (v.restarts || 0), 0);
      const text = c.healthy ? (restarts ? "OK (" + restarts + "↻)" : "OK") : (c.stale ? "?" : "DOWN");
      put("controller-health", text, c.healthy ? 1 : 0, !c.healthy);
    }
    ["1", "2", "3"].forEach((k) => put("rating-" + k, String(s.satisfaction.ratings[k]), s.satisfaction.ratings[k]));
    rows("queues", s.queues, (r, q) => {
      const id = "q-" + safeId(q.queue);
      r.id = id;
      if (q.below_target) r.className = "bad";
      cell(r, null, q.queue);
      cell(r, id + "-waiting", String(q.waiting), q.waiting);
      if (q.nodes) r.lastChild.title = q.nodes.map((n) => n.node + " " + n.waiting + (n.stale ? " ?" : "")).join(" · ");
      cell(r, id + "-longest", mmss(q.longest_wait), q.longest_wait, q.longest_wait > s.thresholds.wait_alert ? "bad" : "");
      cell(r, id + "-caller", q.longest_caller || "—");
      cell(r, id + "-free", String(q.free), q.free);
      cell(r, id + "-busy", String(q.busy), q.busy);
      cell(r, id + "-paused", String(q.paused), q.paused);
      cell(r, id + "-answered", String(q.answered), q.answered);
      cell(r, id + "-unanswered", String(q.unanswered), q.unanswered);
      cell(r, id + "-rate", pct(q.answer_rate), q.answer_rate);
    });
    const nodes = s.nodes || [];  // several Asterisk nodes: each one's sum (the rows above are the totals)
    if ($("nodes-section")) $("nodes-section").hidden = nodes.length === 0 && s.asterisk !== false;
    // No Asterisk link: nothing that needs one is offered (the server refuses it too).
    ["supervise-section", "agent-form"].forEach((id) => { if ($(id) && s.asterisk === false) $(id).hidden = true; });
    rows("nodes", nodes, (r, n) => {
      const id = "node-" + safeId(n.node);
      r.id = id;
      if (n.stale) r.className = "bad";
      cell(r, null, n.stale ? n.node + " (" + tr("node_stale") + ")" : n.node);
      cell(r, id + "-waiting", String(n.waiting), n.waiting);
      const late = n.longest_wait !== null && n.longest_wait > s.thresholds.wait_alert;
      cell(r, id + "-longest", mmss(n.longest_wait), n.longest_wait, late ? "bad" : "");
      ["free", "busy", "paused"].forEach((k) => cell(r, id + "-" + k, String(n[k]), n[k]));
    });
    rows("lines", s.lines, (r, l) => {
      const id = "line-" + safeId(l.number);
      r.id = id;
      if (l.below_target || l.retired) r.className = "bad";
      cell(r, null, l.number);
      cell(r, null, l.name, undefined, "name");
      cell(r, id + "-calls", String(l.calls), l.calls);
      cell(r, id + "-old", String(l.old_number), l.old_number);
      cell(r, id + "-answered", String(l.answered), l.answered);
      cell(r, id + "-unanswered", String(l.unanswered), l.unanswered);
      cell(r, id + "-rate", pct(l.answer_rate), l.answer_rate);
    });
    const group = (bodyId, prefix, key) => rows(bodyId, s[key], (r, g) => {
      const name = g.expert || g.target;
      const id = prefix + safeId(name);
      r.id = id;
      if (g.below_target) r.className = "bad";
      cell(r, null, name);
      cell(r, id + "-answered", String(g.answered), g.answered);
      cell(r, id + "-unanswered", String(g.unanswered), g.unanswered);
      cell(r, id + "-rate", pct(g.answer_rate), g.answer_rate);
    });
    group("experts", "e-", "experts");
    group("subcentres", "s-", "subcentres");
    const hhmm = (v) => Math.floor(v / 3600) + ":" + String(Math.floor((v % 3600) / 60)).padStart(2, "0");
    rows("agents", (s.agents || []).filter((a) => !a.queue), (r, a) => {
      const id = "a-" + safeId(a.agent);
      r.id = id;
      const paused = Object.values(a.paused).reduce((x, y) => x + y, 0);
      cell(r, null, a.agent);
      cell(r, id + "-state", tr("state_" + a.state) + (a.reason ? " (" + a.reason + ")" : ""), a.state);
      cell(r, id + "-in", hhmm(a.logged_in), a.logged_in);
      cell(r, id + "-paused", hhmm(paused), paused);
      cell(r, id + "-calls", String(a.calls), a.calls);
      cell(r, id + "-talk", hhmm(a.talk), a.talk);
      cell(r, id + "-occupancy", pct(a.occupancy), a.occupancy);
    });
    Object.entries(s.transfers.emergency).forEach(([n, c]) => put("xfer-" + n, String(c), c));
    const sub = Object.values(s.transfers.subcentre).reduce((a, b) => a + b, 0);
    put("xfer-subcentre", String(sub), sub);
    put("xfer-other", String(s.transfers.other), s.transfers.other);
    // Open callbacks (serve with a callback section): numbers come masked from the server.
    rows("callbacks", (s.callbacks && s.callbacks.open) || [], (r, c) => {
      const id = "cb-" + safeId(c.id);
      r.id = id;
      cell(r, null, c.queue);
      cell(r, null, c.number);
      cell(r, id + "-status", tr("cb_" + c.status), undefined, c.status === "retry" ? "bad" : "");
      cell(r, null, c.position == null ? "—" : String(c.position));
      cell(r, id + "-attempts", String(c.attempts), c.attempts);
      cell(r, null, new Date(c.offered).toLocaleTimeString());
    });
    renderAlerts(s.alerts);
    const target = $("answer-target");
    if (target && document.activeElement !== target) target.value = (s.thresholds.answer_target * 100).toFixed(1);
    const wait = $("wait-alert");
    if (wait && document.activeElement !== wait) wait.value = s.thresholds.wait_alert;
  }
  // The alert list is rebuilt only when alerts come, go or are acknowledged, so a supervisor's click on
  // "acknowledge" never lands on a button replaced by the next snapshot; values are updated in place.
  let alertKey = null;
  function alertText(a) {
    const value = a.kind === "rate" ? pct(a.value) : String(a.value);
    return a.subject + " " + tr("alert_" + a.kind) + " " + value + (a.acknowledged ? " · " + tr("acked") : " ");
  }
  function renderAlerts(alerts) {
    const list = $("alerts");
    const key = lang + "|" + alerts.map((a) => a.id + (a.acknowledged ? "+" : "-")).join("|");
    if (key === alertKey) {
      alerts.forEach((a) => { $("alert-" + safeId(a.id)).firstChild.textContent = alertText(a); });
      return;
    }
    alertKey = key;
    list.replaceChildren();
    if (!alerts.length) {
      const li = document.createElement("li");
      li.textContent = tr("no_alerts");
      list.appendChild(li);
    }
    alerts.forEach((a) => {
      const li = document.createElement("li");
      li.id = "alert-" + safeId(a.id);
      li.className = a.acknowledged ? "acked" : "bad";
      const text = document.createElement("span");
      text.textContent = alertText(a);
      li.appendChild(text);
      if (supervisor && !a.acknowledged) {
        const b = document.createElement("button");
        b.textContent = tr("ack");
        b.className = "ack";
        b.addEventListener("click", () => post("/api/ack", { id: a.id }));
        li.appendChild(b);
      }
      list.appendChild(li);
    });
  }
  function renderMerger(s) {
    rows("merger", s.merger, (r, m) => {
      const id = "m-" + safeId(m.number);
      r.id = id;
      cell(r, null, m.number);
      cell(r, null, m.name, undefined, "name");
      cell(r, null, tr("mode_" + m.mode));
      const phase = tr("phase_" + m.phase) + (m.days_to_cutover !== null ? " (" + tr("cutover_in") + " " + m.days_to_cutover + ")" : "");
      cell(r, id + "-phase", phase, m.phase);
      cell(r, id + "-calls", String(m.calls_week), m.calls_week);
      cell(r, id + "-old", String(m.old_number_week), m.old_number_week);
      cell(r, id + "-share", pct(m.old_share), m.old_share);
      cell(r, id + "-end", m.window_end || "—", m.window_end);
      cell(r, id + "-days", m.days_left === null ? "—" : String(m.days_left), m.days_left);
      cell(r, id + "-calendar", m.calendar || "—", m.calendar);
    });
  }
  let last = null;
  function render(s) {
    last = s;
    if (page === "wall") renderWall(s); else renderMerger(s);
    put("updated", new Date(s.at).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB"), s.at);
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Requested-With": "wallboard" },
      body: JSON.stringify(body),
    });
  }
  const form = $("thresholds-form");
  if (form) form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    post("/api/thresholds", {
      answer_target: parseFloat($("answer-target").value) / 100,
      wait_alert: parseInt($("wait-alert").value, 10),
    });
  });
  const agentForm = $("agent-form");
  if (agentForm) agentForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { agent: $("agent-id").value, action: $("agent-action").value, reason: $("agent-reason").value };
    post("/api/agent", body).then((r) => r.json().catch(() => ({}))).then((j) => {
      $("agent-result").textContent = j.result ? j.result + (j.reason ? ": " + j.reason : "") : "?";
    });
  });
  const spyForm = $("spy-form");
  if (spyForm) {
    const said = (text) => { $("spy-result").textContent = text; };
    spyForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const mode = ev.submitter ? ev.submitter.value : "listen";
      post("/api/spy", { target: $("spy-target").value.trim(), mode: mode }).then((r) =>
        r.text().then((body) => {
          let row = null;
          try { row = JSON.parse(body); } catch (e) { row = null; }
          said(row ? row.result + (row.reason ? ": " + row.reason : "") : r.status + " " + body);
        }));
    });
    $("play-recording").addEventListener("click", () => {
      const player = $("recording-player");
      player.src = "/api/recordings/" + encodeURIComponent($("spy-target").value.trim());
      player.play().then(() => said("")).catch(() => said(tr("no_recording")));
    });
  }
  const source = new EventSource("/events");
  source.onmessage = (ev) => { $("status").textContent = ""; render(JSON.parse(ev.data)); };
  source.onerror = () => {
    $("status").textContent = tr("disconnected");
    // A stream ended by the server because the session was revoked: back to the login page.
    fetch("/api/state", { credentials: "same-origin" }).then((r) => {
      if (r.status === 401) location.href = "/login?next=" + encodeURIComponent(location.pathname);
    }).catch(() => {});
  };
})();
"""
