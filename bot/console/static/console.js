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
    "escalation.listening": "坐席监听 Agent listening",
    "escalation.accepted": "坐席接听 Accepted",
    "escalation.ended": "转接结束 Escalation ended",
  };

  const STATE_LABELS = {
    offline: "离线 offline",
    available: "空闲 available",
    offered: "来电 offered",
    on_call: "通话中 on call",
    wrap_up: "话后处理 wrap-up",
    away: "离开 away",
  };
  const AWAY_LABELS = {
    break: "小休 break", meal: "用餐 meal", meeting: "会议 meeting", training: "培训 training",
    other: "其他 other", missed_offer: "未接来电 missed a call",
  };

  const SPEAKERS = {bot: "机器人", customer: "客户", agent: "坐席", system: "系统"};

  // --- timers: time in a state, after-call work left (server time, whatever the desk's clock)
  let skew = 0;
  function syncClock(doc) {
    const now = Date.parse((doc.body && doc.body.dataset.now) || "");
    if (!isNaN(now)) skew = now - Date.now();
  }
  function serverNow() { return Date.now() + skew; }

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + two(m) + ":" + two(r) : m + ":" + two(r);
  }

  function tick() {
    const now = serverNow();
    document.querySelectorAll("[data-since]").forEach(function (node) {
      const since = Date.parse(node.dataset.since);
      if (!isNaN(since)) node.textContent = duration(now - since);
    });
    document.querySelectorAll("[data-ends]").forEach(function (node) {
      const ends = Date.parse(node.dataset.ends);
      if (isNaN(ends)) return;
      node.textContent = duration(ends - now);
      node.classList.toggle("due", ends - now <= 10000);
    });
  }

  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // --- the desk: follow the agent's presence ----------------------------------------------
  // An offer is drawn from its message (it carries the pop: no request, the pop is due
  // within 300 ms; desk_pop.js draws it); any other change of the agent's presence reloads the desk's live part.
  // A change that arrives while a reload is on its way is kept (wantedSeq) and reloaded
  // after it, and a reload that comes back older than what is drawn (an offer drawn from
  // its message meanwhile) is not drawn over it.
  let refreshing = false;
  let wantedSeq = 0;
  let reloadsInARow = 0;
  const RELOADS_IN_A_ROW = 5;  // a page that cannot catch up waits for the next change

  function drawnSeq() {
    const mine = document.getElementById("agent-state");
    return mine ? Number(mine.dataset.seq || 0) : 0;
  }

  function ownPresence(msg) {
    if (msg.seq <= drawnSeq()) return;
    if (msg.state === "offered" && msg.call && window.waihuDesk && window.waihuDesk.drawOffer(msg)) return;
    wantedSeq = Math.max(wantedSeq, msg.seq);
    reloadsInARow = 0;
    refreshDesk();
  }

  function refreshDesk() {
    if (refreshing) return;  // wantedSeq brings it back when the reload on its way ends
    refreshing = true;
    reloadsInARow += 1;
    fetch("/agent", {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("desk");
        const state = doc.getElementById("agent-state");
        const desk = document.getElementById("desk");
        if (!fresh || !desk || !state || Number(state.dataset.seq || 0) < drawnSeq()) return;
        desk.replaceWith(document.importNode(fresh, true));
        syncClock(doc);
        document.title = doc.title;
        deskDrawn(false);
      })
      .catch(function () { /* the next change or a reload will show it */ })
      .finally(function () {
        refreshing = false;
        if (wantedSeq > drawnSeq() && reloadsInARow < RELOADS_IN_A_ROW) refreshDesk();
      });
  }

  function deskDrawn(soundAfterPaint) {
    document.querySelectorAll(".page > .alert").forEach(function (a) { a.remove(); });
    callbackField();
    tick();
    replayTurns();
    // The sound's first use starts the page's audio (tens to hundreds of ms on a busy
    // machine): after the pop is painted, not before.
    if (soundAfterPaint) requestAnimationFrame(function () { setTimeout(offerArrived, 0); });
    else offerArrived();
  }

  function presence(msg) {
    const mine = document.getElementById("agent-state");
    if (mine) {
      if (String(msg.agent_id) === mine.dataset.agent) ownPresence(msg);
      return;
    }
    const row = document.querySelector('tr[data-agent-id="' + msg.agent_id + '"]');
    if (!row) return;
    const badge = row.querySelector(".state");
    if (Number(badge.dataset.seq || 0) >= msg.seq) return;
    badge.className = "state state-" + msg.state;
    badge.dataset.state = msg.state;
    badge.dataset.seq = msg.seq;
    badge.textContent = STATE_LABELS[msg.state] || msg.state;
    row.querySelector(".presence-reason").textContent = msg.reason ? (AWAY_LABELS[msg.reason] || msg.reason) : "";
    const since = row.querySelector(".since");
    if (msg.since) since.dataset.since = msg.since; else delete since.dataset.since;
    since.textContent = "";
    tick();
  }

  // --- the offer's pop: a short sound, and a line for screen readers ------------------------
  // The sound is made here with the Web Audio API (no audio file).  Browsers keep a page
  // silent until the person has clicked or typed on it: the first click anywhere (the
  // sound button, for instance) lets it play from then on.  Each offer sounds once, even
  // if the desk is drawn again (listening reloads the page).
  const SOUND_KEY = "waihu.desk.sound";
  const CHIMED_KEY = "waihu.desk.chimed";
  let audio = null;

  function soundOn() {
    try { return localStorage.getItem(SOUND_KEY) !== "off"; } catch (err) { return true; }
  }

  function audioContext() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume().catch(function () { /* no gesture yet */ });
    return audio;
  }

  function chime() {
    const ctx = audioContext();
    if (!ctx) return Promise.resolve("unsupported");
    const start = ctx.currentTime + 0.03;
    // two rising notes (A5, E6), each a quick swell and fade: about 0.45 s in all
    [[880, 0], [1318.5, 0.17]].forEach(function (note) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const at = start + note[1];
      osc.type = "sine";
      osc.frequency.setValueAtTime(note[0], at);
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.28);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.3);
    });
    return (ctx.state === "running" ? Promise.resolve() : ctx.resume()).then(
      function () { return ctx.state; }, function () { return ctx.state; });
  }

  function seenAlready(offer) {
    try {
      const seen = (sessionStorage.getItem(CHIMED_KEY) || "").split(",");
      if (seen.indexOf(offer) >= 0) return true;
      seen.push(offer);
      sessionStorage.setItem(CHIMED_KEY, seen.slice(-20).join(","));
    } catch (err) { /* no storage: announced each time the desk is drawn */ }
    return false;
  }

  function offerArrived() {
    const area = document.getElementById("offer-area");
    const offer = area && area.dataset.offer;
    if (!offer || seenAlready(offer)) return;
    const announcer = document.getElementById("desk-announcer");
    if (announcer) announcer.textContent = area.dataset.announce || "来电 Call offered";
    if (!soundOn()) return;
    chime().then(function (state) {
      document.body.dataset.chimedOffer = offer;  // what was sounded, and whether it could be
      document.body.dataset.audioState = state;
      const toggle = document.getElementById("sound-toggle");
      if (!toggle) return;
      const blocked = state !== "running";
      toggle.classList.toggle("blocked", blocked);
      toggle.title = blocked ? "浏览器未允许播放提示音：点击此处启用 The browser kept the sound off: click to allow it"
        : "来电时播放提示音 Play a sound when a call is offered";
    });
  }

  function soundToggle() {
    const toggle = document.getElementById("sound-toggle");
    if (!toggle) return;
    const show = function () {
      const on = soundOn();
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.querySelector(".sound-state").textContent = on ? "开 on" : "关 off";
    };
    toggle.classList.remove("hidden");
    show();
    toggle.addEventListener("click", function () {
      try { localStorage.setItem(SOUND_KEY, soundOn() ? "off" : "on"); } catch (err) { /* */ }
      show();
      toggle.classList.remove("blocked");
      if (soundOn()) chime();  // let the agent hear what an offer sounds like
    });
  }

  // --- the live transcript of the call in the agent's hand ---------------------------------
  // The page shows the turns stored when it was drawn (numbered, data-seq); the socket
  // brings the later ones (and, as it opens, the latest few again: skipped by number).
  // The turns heard are kept so that a redrawn desk, drawn a little earlier than the last
  // turn came, gets them back.
  const heardTurns = {};
  const HEARD_MAX = 200;

  function turn(msg) {
    const heard = heardTurns[msg.call_id] || (heardTurns[msg.call_id] = []);
    heard.push(msg);
    if (heard.length > HEARD_MAX) heard.shift();
    showTurn(msg, true);
  }

  function showTurn(msg, fresh) {
    const list = document.getElementById("transcript");
    if (!list || list.dataset.call !== msg.call_id) return;
    if (msg.seq <= Number(list.dataset.lastSeq || 0)) return;
    const none = list.querySelector(".turn-none");
    if (none) none.remove();
    const item = el("li", "turn turn-" + msg.speaker + (fresh ? " turn-new" : ""));
    item.dataset.seq = msg.seq;
    item.appendChild(el("span", "who", SPEAKERS[msg.speaker] || msg.speaker));
    item.appendChild(document.createTextNode(" " + msg.text));
    list.appendChild(item);
    list.dataset.lastSeq = msg.seq;
    list.scrollTop = list.scrollHeight;
  }

  function replayTurns() {
    const list = document.getElementById("transcript");
    if (!list) return;
    (heardTurns[list.dataset.call] || []).forEach(function (msg) { showTurn(msg, false); });
    list.scrollTop = list.scrollHeight;
  }

  // --- the whole number, on request (audited by the server) -----------------------------
  function reveal(button) {
    const callId = button.dataset.revealCall;
    button.disabled = true;
    fetch("/calls/" + encodeURIComponent(callId) + "/phone", {
      method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()},
    }).then(function (r) {
      if (!r.ok) return Promise.reject(r.status);
      return r.json();
    }).then(function (body) {
      document.querySelectorAll('[data-phone-of="' + callId + '"]').forEach(function (node) {
        node.textContent = body.phone;
        node.classList.add("revealed");
      });
      button.remove();
    }).catch(function (status) {
      button.disabled = false;
      button.textContent = status === 403 ? "无权查看 Not allowed" : "失败 Failed";
    });
  }

  function callbackField() {
    const form = document.getElementById("disposition-form");
    const box = document.getElementById("callback-time");
    if (!form || !box) return;
    const chosen = form.querySelector('input[name="disposition"]:checked');
    const on = !!chosen && chosen.value === "callback";
    box.classList.toggle("hidden", !on);
    document.getElementById("callback-at").required = on;
  }

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
    const meta = el("span", "meta");
    parts.forEach(function (part, i) {
      if (i) meta.appendChild(document.createTextNode(" · "));
      if (part === d.phone) {
        const phone = el("span", "phone", part);
        phone.dataset.phoneOf = msg.call_id;
        meta.appendChild(phone);
      } else {
        meta.appendChild(document.createTextNode(part));
      }
    });
    if (d.phone) {
      const show = el("button", "btn btn-small btn-ghost reveal", "显示 Show");
      show.type = "button";
      show.title = "查看完整号码（记入审计日志）Show the whole number (audited)";
      show.dataset.revealCall = msg.call_id;
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(show);
    }
    item.appendChild(meta);
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
        } else if (msg.type === "presence") {
          presence(msg);
        } else if (msg.type === "turn") {
          turn(msg);
        } else if (msg.type === "event") {
          showEvent(msg);
          document.dispatchEvent(new CustomEvent("waihu:event", {detail: msg}));
        } else if (msg.type) {  // e.g. "wall" for static/wall.js
          document.dispatchEvent(new CustomEvent("waihu:" + msg.type, {detail: msg}));
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

  document.addEventListener("click", function (e) {
    const button = e.target.closest && e.target.closest("[data-reveal-call]");
    if (button) reveal(button);
  });
  document.addEventListener("change", function (e) {
    if (e.target.name === "disposition") callbackField();
  });

  // Any click or key on the desk lets its later offers be heard.
  ["pointerdown", "keydown"].forEach(function (kind) {
    document.addEventListener(kind, function () {
      if (document.getElementById("agent-state") && soundOn()) audioContext();
    }, {capture: true});
  });

  // What the desk's pop (desk_pop.js) draws with.
  window.waihuConsole = {el: el, showTurn: showTurn, deskDrawn: deskDrawn};

  document.addEventListener("DOMContentLoaded", function () {
    forms();
    soundToggle();
    replayTurns();
    offerArrived();
    syncClock(document);
    callbackField();
    tick();
    setInterval(tick, 1000);
    const page = document.body.dataset.page;
    if (page) connect(page);
  });
})();
