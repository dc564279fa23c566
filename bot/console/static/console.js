// Waihu console: the live part of every page (one WebSocket per page) and small form
// helpers.  No inline scripts (the Content-Security-Policy forbids them), no library.
"use strict";

(function () {
  const EVENT_LABELS = {
    "call.dialled": "拨号 Dialled",
    "call.answered": "接通 Answered",
    "call.ended": "结束 Ended",
    "call.bridged": "已转接 Bridged",
    "escalation.requested": "请求人工 Escalation requested",
    "escalation.offered": "已分配坐席 Offered",
    "escalation.accepted": "坐席接听 Accepted",
    "escalation.ended": "转接结束 Escalation ended",
  };

  function live(state, title) {
    const dot = document.getElementById("live");
    if (!dot) return;
    dot.classList.toggle("on", state === "on");
    dot.classList.toggle("off", state === "off");
    if (title) dot.title = title;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;  // never innerHTML: data is untrusted
    return node;
  }

  function showEvent(msg) {
    const list = document.getElementById("events");
    if (!list) return;
    const empty = document.getElementById("events-empty");
    if (empty) empty.classList.add("hidden");
    const item = el("li");
    const at = new Date(msg.at);
    item.appendChild(el("span", "t", isNaN(at) ? "" : at.toLocaleTimeString("zh-CN", {hour12: false})));
    item.appendChild(el("span", "what", EVENT_LABELS[msg.name] || msg.name));
    const d = msg.data || {};
    const parts = [d.campaign, d.phone, d.dial_result, d.outcome, d.reason].filter(Boolean);
    parts.push("#" + String(msg.call_id).slice(0, 8));
    item.appendChild(el("span", "meta", parts.join(" · ")));
    list.insertBefore(item, list.firstChild);
    const max = parseInt(list.dataset.max || "50", 10);
    while (list.children.length > max) list.removeChild(list.lastChild);
  }

  function connect(page) {
    let delay = 1000;
    let pinger = null;
    function open() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(scheme + "//" + location.host + "/ws?page=" + encodeURIComponent(page));
      ws.addEventListener("open", function () {
        delay = 1000;
        pinger = setInterval(function () { ws.send("ping"); }, 25000);
      });
      ws.addEventListener("message", function (e) {
        let msg;
        try { msg = JSON.parse(e.data); } catch (err) { return; }
        if (msg.type === "hello") {
          live("on", "实时连接 Live · " + msg.name);
          document.dispatchEvent(new CustomEvent("waihu:hello", {detail: msg}));
        } else if (msg.type === "event") {
          showEvent(msg);
          document.dispatchEvent(new CustomEvent("waihu:event", {detail: msg}));
        }
      });
      ws.addEventListener("close", function (e) {
        clearInterval(pinger);
        live("off", "连接已断开 Disconnected");
        if (e.code === 4401) { location.href = "/login"; return; }
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      });
    }
    open();
  }

  function forms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
    const role = document.getElementById("nu-role");
    const agentFields = document.getElementById("agent-fields");
    if (role && agentFields) {
      const sync = function () { agentFields.classList.toggle("hidden", role.value !== "agent"); };
      role.addEventListener("change", sync);
      sync();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    forms();
    const page = document.body.dataset.page;
    if (page) connect(page);
  });
})();
