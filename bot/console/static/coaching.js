// Waihu console: the agent desk's coaching banner (/agent; the server side is
// bot/console/monitor_pages.py).  While a supervisor listens to, whispers to or barges into
// the call in the agent's hand, the banner says so and in which mode; the page's socket
// brings each change ({"type": "monitor"}, console.js dispatches it as waihu:monitor; read
// once on opening with GET /agent/coaching), and it is hidden when nobody is monitoring.
// textContent only.
"use strict";

(function () {
  const SAID = {
    listen: "班组长正在监听本通电话（客户和您都听不到班组长） A supervisor is listening to this call",
    whisper: "班组长正在对您密语（只有您听得到，客户听不到） A supervisor is whispering to you (the customer does not hear)",
    barge: "班组长已强插（客户和您都听得到班组长） A supervisor has barged in (the customer hears them too)",
  };

  function show(session) {
    const banner = document.getElementById("coaching-banner");
    if (!banner) return;
    const on = !!session && session.state !== "ended";
    banner.classList.toggle("hidden", !on);
    banner.dataset.mode = on ? session.mode : "";
    banner.textContent = on ? (SAID[session.mode] || session.mode) + " — " + session.supervisor : "";
  }

  function refresh() {
    fetch("/agent/coaching", {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) { if (answer) show(answer.session); })
      .catch(function () { /* the socket brings the next change */ });
  }

  document.addEventListener("waihu:monitor", function (e) { show(e.detail.session); });
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("coaching-banner")) return;
    refresh();
  });
})();
