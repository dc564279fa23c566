// Waihu console: the supervisors' live wall (/supervisor; the server side is
// bot/console/wall.py).  The page carries the wall as it was drawn (#wall-data); the page's
// socket (static/console.js) brings each new wall as a "waihu:wall" event.  Durations are
// elements with data-since, which console.js ticks every second; here, every second too,
// the agents' rows turn red past their limits.  No inline script, no innerHTML: every
// text is set with textContent.
"use strict";

(function () {
  const STATUS_LABELS = {
    draft: "草稿 draft", running: "进行中 running", paused: "已暂停 paused",
    finished: "已结束 finished",
  };
  const ESCALATION_STATUS = {
    pending: "转接中 transferring", waiting: "排队 waiting", offered: "振铃 offered",
    listening: "坐席监听 agent listening",
  };
  const ESCALATION_REASONS = {
    request_human: "客户要求人工 asked for a person", complaint: "投诉 complaint",
    verification_failed: "身份核实未通过 failed verification",
  };
  // Which button a campaign in each status offers.
  const ACTIONS = {
    draft: [["start", "启动 Start"]], finished: [["start", "重新启动 Start again"]],
    running: [["pause", "暂停 Pause"]], paused: [["resume", "恢复 Resume"]],
  };

  let skew = 0;  // server clock minus this browser's
  let wrapLimits = {};  // agent id -> after-call work cap (s) of their call's campaign

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function cell(row, text, cls) {
    const td = el("td", cls || "", text === null || text === undefined || text === "" ? "—" : text);
    row.appendChild(td);
    return td;
  }

  function timer(row, since) {
    const td = cell(row, "", "num");
    td.textContent = "";
    const span = el("span", "wall-timer");
    span.dataset.since = since;  // console.js writes the time passed into it every second
    td.appendChild(span);
  }

  function fill(id, items, draw) {
    const table = document.getElementById(id);
    if (!table) return;
    const body = table.querySelector("tbody");
    // The time shown so far stays until console.js ticks the redrawn row (no blank second).
    const shown = {};
    body.querySelectorAll("tr[data-key]").forEach(function (row) {
      const t = row.querySelector(".wall-timer");
      if (t) shown[row.dataset.key] = t.textContent;
    });
    while (body.firstChild) body.removeChild(body.firstChild);
    items.forEach(function (item) {
      const row = draw(item);
      const t = row.querySelector(".wall-timer");
      if (t && shown[row.dataset.key]) t.textContent = shown[row.dataset.key];
      body.appendChild(row);
    });
    const count = document.getElementById(id + "-count");
    if (count) count.textContent = String(items.length);
    const empty = document.getElementById(id + "-empty");
    if (empty) empty.classList.toggle("hidden", items.length > 0);
    table.classList.toggle("hidden", items.length === 0);
  }

  let waiting = {};  // call id -> its escalation is waiting for an agent

  function callRow(call) {
    const row = el("tr", "wall-call wall-" + call.handler);
    row.dataset.key = call.call_id;
    cell(row, call.campaign);
    cell(row, call.phone, "phone");
    const who = cell(row, "");
    who.textContent = "";
    who.appendChild(el("span", "tag wall-handler", call.handler === "agent"
      ? "坐席 " + (call.agent || "agent") : (call.answered ? "机器人 bot" : "拨号中 dialling")));
    if (waiting[call.call_id]) who.appendChild(el("span", "tag wall-waiting", "等待人工 waiting"));
    if (call.stale) {
      const lost = el("span", "tag wall-stale", "网关失联 gateway lost");
      lost.title = "网关未续租，等待拨号器收回 The gateway stopped renewing the call's lease";
      who.appendChild(lost);
    }
    cell(row, call.stage_label || call.stage);
    timer(row, call.since);
    cell(row, call.last_intent, "wall-intent");
    cell(row, call.last_words, "wall-words");
    // Listen, whisper, barge (static/monitor.js sends them): answered calls only.
    const monitor = cell(row, "", "actions");
    monitor.textContent = "";
    if (call.answered) {
      [["listen", "监听"], ["whisper", "密语"], ["barge", "强插"]].forEach(function (pair) {
        const button = el("button", "btn btn-small monitor-start", pair[1]);
        button.type = "button";
        button.dataset.mode = pair[0];
        button.dataset.callId = call.call_id;
        button.title = pair[0];
        monitor.appendChild(button);
      });
    }
    return row;
  }

  function escalationRow(esc) {
    const row = el("tr", "wall-escalation");
    row.dataset.key = String(esc.escalation_id);
    cell(row, esc.campaign);
    cell(row, ESCALATION_REASONS[esc.reason] || esc.reason);
    cell(row, ESCALATION_STATUS[esc.status] || esc.status);
    timer(row, esc.since);
    return row;
  }

  function campaignRow(c) {
    const row = el("tr", "wall-campaign");
    row.dataset.campaign = c.campaign;
    cell(row, c.campaign);
    const status = cell(row, "");
    status.textContent = "";
    status.appendChild(el("span", "badge wall-status wall-status-" + c.status,
                          STATUS_LABELS[c.status] || c.status));
    ["dialled", "connected", "consents", "escalations", "complaints"].forEach(function (key) {
      cell(row, String(c[key]), "num wall-" + key);
    });
    const actions = cell(row, "", "actions");
    actions.textContent = "";
    (ACTIONS[c.status] || []).forEach(function (pair) {
      const button = el("button", "btn btn-small wall-action", pair[1]);
      button.type = "button";
      button.dataset.action = pair[0];
      button.dataset.campaign = c.campaign;
      actions.appendChild(button);
    });
    return row;
  }

  function draw(wall) {
    if (!wall || wall.type !== "wall") return;
    wrapLimits = wall.agents || {};
    waiting = {};
    (wall.escalations || []).forEach(function (esc) { waiting[esc.call_id] = true; });
    fill("wall-calls", wall.calls || [], callRow);
    fill("wall-escalations", wall.escalations || [], escalationRow);
    fill("wall-campaigns", wall.campaigns || [], campaignRow);
    agents();
  }

  // --- agents: time in state against the limits --------------------------------------------
  function agents() {
    const table = document.getElementById("wall-agents");
    if (!table) return;
    const now = Date.now() + skew;
    const limits = {
      offered: Number(table.dataset.offeredLimit), away: Number(table.dataset.awayLimit),
    };
    const counts = {};
    const labels = {};
    table.querySelectorAll("tr[data-agent-id]").forEach(function (row) {
      const badge = row.querySelector(".state");
      const state = badge.dataset.state;
      counts[state] = (counts[state] || 0) + 1;
      labels[state] = badge.textContent;
      const since = Date.parse((row.querySelector(".since") || {dataset: {}}).dataset.since || "");
      const limit = state === "wrap_up" ? wrapLimits[row.dataset.agentId] : limits[state];
      const over = !isNaN(since) && limit !== undefined && !isNaN(limit)
        && (now - since) / 1000 > limit;
      row.classList.toggle("wall-over", over);
      row.title = over ? "超过时限 Past the limit (" + limit + " s)" : "";
    });
    const line = document.getElementById("wall-states");
    if (!line) return;
    line.textContent = Object.keys(counts).sort().map(function (state) {
      return labels[state] + " " + counts[state];
    }).join(" · ");
  }

  // --- start, pause, resume -----------------------------------------------------------------
  function notice(text, bad, warn) {
    const box = document.getElementById("wall-notice");
    if (!box) return;
    box.textContent = text;
    box.classList.remove("hidden");
    box.classList.toggle("wall-notice-bad", !!bad);
    box.classList.toggle("wall-notice-warn", !bad && !!warn);
  }

  function control(button) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    const name = button.dataset.campaign;
    button.disabled = true;
    fetch("/supervisor/campaigns/" + encodeURIComponent(name) + "/" + button.dataset.action, {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": meta ? meta.content : "", "Accept": "application/json"},
    }).then(function (r) {
      return r.json().catch(function () { return {error: "HTTP " + r.status}; });
    }).then(function (body) {
      if (body.error) { notice(name + ": " + body.error, true); button.disabled = false; return; }
      const said = [name + ": " + (STATUS_LABELS[body.status] || body.status)];
      if (body.warning) said.push(body.warning.message);
      (body.notes || []).forEach(function (note) { said.push(note); });
      // a note is something to act on (no calling window left, no second-confirmation
      // campaign): not shown in the colour of success
      notice(said.join(" — "), !!body.warning, (body.notes || []).length > 0);
    }).catch(function () {
      notice(name + ": 失败 failed", true);
      button.disabled = false;
    });
  }

  document.addEventListener("click", function (e) {
    const button = e.target.closest && e.target.closest("button.wall-action");
    if (button) control(button);
  });
  document.addEventListener("waihu:wall", function (e) { draw(e.detail); });

  document.addEventListener("DOMContentLoaded", function () {
    const now = Date.parse(document.body.dataset.now || "");
    if (!isNaN(now)) skew = now - Date.now();
    const data = document.getElementById("wall-data");
    if (data) {
      try { draw(JSON.parse(data.textContent)); } catch (err) { /* the socket brings it */ }
    }
    setInterval(agents, 1000);
  });
})();
