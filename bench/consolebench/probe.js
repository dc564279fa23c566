// Installed in every agent page before the console's own scripts (a Playwright init
// script): notes when each offer's pop and each transcript turn first enter the page's
// DOM, and when the next frame after that starts, on this machine's wall clock
// (performance.timeOrigin + performance.now(), in epoch milliseconds), so that the bench
// can compare them with the moment it committed the offer or the turn.  It also notes when
// the desk's WebSocket brought the agent's "offered" presence and each turn, which splits a
// latency into the console's part (commit -> message) and the page's (message -> DOM).
(function () {
  const wall = function () { return performance.timeOrigin + performance.now(); };
  const seen = {offers: {}, turns: {}, offerMessages: {}, turnMessages: {}};
  window.__consoleBench = seen;

  const Native = window.WebSocket;
  function Noting(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", function (event) {
      const at = wall();
      let msg;
      try { msg = JSON.parse(event.data); } catch (err) { return; }
      if (msg.type === "presence" && msg.state === "offered" && msg.call_id) {
        if (!seen.offerMessages[msg.call_id]) seen.offerMessages[msg.call_id] = at;
      } else if (msg.type === "turn") {
        const key = msg.call_id + "#" + msg.seq;
        if (!seen.turnMessages[key]) seen.turnMessages[key] = at;
      }
    });
    return ws;
  }
  Noting.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (name) { Noting[name] = Native[name]; });
  window.WebSocket = Noting;

  function note(kind, key, at) {
    const table = seen[kind];
    if (table[key]) return;  // first appearance only: a redrawn desk shows it again
    const entry = table[key] = {dom: at, frame: null};
    requestAnimationFrame(function () { entry.frame = wall(); });
  }

  function check(node, at) {
    if (node.id === "offer-area" && node.dataset.offer) note("offers", node.dataset.offer, at);
    if (node.matches("li.turn[data-seq]")) {
      const list = node.closest("#transcript");
      if (list) note("turns", list.dataset.call + "#" + node.dataset.seq, at);
    }
  }

  new MutationObserver(function (records) {
    const at = wall();
    records.forEach(function (record) {
      record.addedNodes.forEach(function (node) {
        if (node.nodeType !== 1) return;
        check(node, at);
        node.querySelectorAll("#offer-area[data-offer], li.turn[data-seq]")
          .forEach(function (inner) { check(inner, at); });
      });
    });
  }).observe(document, {childList: true, subtree: true});
})();
