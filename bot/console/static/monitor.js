// Waihu console: the supervisor's listen / whisper / barge on the live wall (/supervisor;
// the server side is bot/console/monitor_pages.py, the gateway's voice/call/monitor.py).
// The buttons in the calls table start a session; the panel (#monitor-panel) shows the
// session as the database has it (the page's socket brings each change, {"type":
// "monitor"} dispatched by console.js as waihu:monitor; GET /supervisor/monitor once on
// opening): the mode, its state (ringing your phone, live, ended) and who hears you, so
// what is shown is what the gateway did.  No inline script, no innerHTML: every text is set with textContent.
"use strict";

(function () {
  const MODES = {
    listen: "监听 Listen", whisper: "密语 Whisper", barge: "强插 Barge",
  };
  const STATES = {
    requested: "等待网关 waiting for the gateway", dialling: "正在呼叫您的话机 ringing your phone",
    active: "进行中 live", ended: "已结束 ended",
  };
  const HEARD = {
    nobody: "客户和坐席都听不到您 Nobody hears you",
    agent: "只有坐席听到您 Only the agent hears you",
    customer: "客户听到您（与机器人同时）The customer hears you (over the bot)",
    "customer+agent": "客户和坐席都听到您 The customer and the agent hear you",
  };
  const ENDED = {
    stopped: "您已结束 you stopped", supervisor_hung_up: "您挂断了话机 you hung up",
    call_ended: "通话已结束 the call ended", no_answer: "您的话机未接 your phone did not answer",
  };
  let session = null;

  function byId(id) { return document.getElementById(id); }

  function notice(text, bad) {
    const box = byId("monitor-notice");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("hidden", !text);
    box.classList.toggle("wall-notice-bad", !!bad);
  }

  function show(s) {
    session = s;
    const panel = byId("monitor-panel");
    if (!panel) return;
    const open = !!s && s.state !== "ended";
    panel.dataset.state = s ? s.state : "none";
    panel.dataset.mode = open ? s.mode : "";
    byId("monitor-live").classList.toggle("hidden", !open);
    byId("monitor-idle").classList.toggle("hidden", open);
    const last = byId("monitor-last");
    last.classList.toggle("hidden", open || !s);
    if (!s) return;
    if (!open) {
      last.textContent = "上次监听 Last session: " + (MODES[s.mode] || s.mode) + " — "
        + (ENDED[s.end_reason] || s.end_reason || "");
      return;
    }
    const mode = byId("monitor-mode");
    mode.textContent = MODES[s.mode] || s.mode;
    mode.className = "badge monitor-mode monitor-mode-" + s.mode;
    byId("monitor-state").textContent = STATES[s.state] || s.state;
    byId("monitor-call").textContent = "通话 call " + s.call_id.slice(0, 8);
    let heard = s.heard_by ? (HEARD[s.heard_by] || s.heard_by) : "";
    if (s.mode === "whisper" && s.heard_by === "nobody") {
      heard = "这通电话没有坐席：密语无人听到，仅监听 No agent on this call: a whisper is "
        + "heard by nobody, you are only listening";
    }
    byId("monitor-heard").textContent = heard;
    document.querySelectorAll("button.monitor-switch").forEach(function (b) {
      b.disabled = b.dataset.mode === s.mode;
    });
  }

  function send(url, mode) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    const body = new URLSearchParams();
    if (mode) body.set("mode", mode);
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"X-CSRF-Token": meta ? meta.content : "", "Accept": "application/json"},
    }).then(function (r) {
      return r.json().catch(function () { return {error: "HTTP " + r.status}; });
    }).then(function (answer) {
      if (answer.error) { notice(answer.error, true); return; }
      notice("");
      show(answer.session);
    }).catch(function () { notice("失败 failed", true); });
  }

  function refresh() {
    fetch("/supervisor/monitor", {credentials: "same-origin",
                                   headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) { if (answer) show(answer.session); })
      .catch(function () { /* the socket brings the next change */ });
  }

  document.addEventListener("waihu:monitor", function (e) { show(e.detail.session); });

  document.addEventListener("click", function (e) {
    const target = e.target.closest ? e.target : null;
    if (!target) return;
    const start = target.closest("button.monitor-start");
    if (start) {
      send("/supervisor/calls/" + encodeURIComponent(start.dataset.callId) + "/monitor",
           start.dataset.mode);
      return;
    }
    const change = target.closest("button.monitor-switch");
    if (change && session) {
      send("/supervisor/monitor/" + session.session_id + "/mode", change.dataset.mode);
      return;
    }
    if (target.closest("button.monitor-stop") && session) {
      send("/supervisor/monitor/" + session.session_id + "/stop");
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!byId("monitor-panel")) return;
    refresh();
  });
})();
