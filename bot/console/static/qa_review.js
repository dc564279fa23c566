// Waihu console, the QA review page: the recording's channels (both, or one of them through
// the Web Audio API), the transcript turn being played highlighted, a click on a turn or on
// an automatic flag seeks the player to its moment.  No library, no inline script.
"use strict";

(function () {
  const audio = document.getElementById("qa-audio");
  if (!audio) return;
  const turns = Array.from(document.querySelectorAll(".qa-turn"));
  const channelButtons = Array.from(document.querySelectorAll("[data-channel]"));

  // --- channels: the recording is stereo (left: customer, right: bot or agent).  The graph
  // is made at the first use (a browser lets an AudioContext start only after a click).
  let graph = null;
  let channel = "both";
  function makeGraph() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    const context = new Context();
    const source = context.createMediaElementSource(audio);
    const splitter = context.createChannelSplitter(2);
    const merger = context.createChannelMerger(2);
    const left = context.createGain();
    const right = context.createGain();
    source.connect(splitter);
    splitter.connect(left, 0);
    splitter.connect(right, 1);
    merger.connect(context.destination);
    return {context, left, right, merger};
  }
  function route() {
    if (!graph) return;
    const {left, right, merger} = graph;
    left.disconnect();
    right.disconnect();
    if (channel === "both") {  // stereo as recorded
      left.connect(merger, 0, 0);
      right.connect(merger, 0, 1);
    } else {  // the one channel in both ears
      const kept = channel === "customer" ? left : right;
      kept.connect(merger, 0, 0);
      kept.connect(merger, 0, 1);
    }
  }
  function ensureGraph() {
    if (!graph) {
      graph = makeGraph();
      route();
    }
    if (graph && graph.context.state === "suspended") graph.context.resume();
  }
  channelButtons.forEach(function (button) {
    button.addEventListener("click", function () {
      channel = button.dataset.channel;
      channelButtons.forEach(function (b) {
        const on = b === button;
        b.classList.toggle("btn-primary", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
      ensureGraph();
      route();
      document.body.dataset.channel = channel;
    });
  });
  audio.addEventListener("play", ensureGraph);

  // --- seeking: a turn or a flag moves the player to its moment and plays from there
  function seek(ms) {
    audio.currentTime = Math.max(0, ms / 1000);
    highlight();
    const played = audio.play();
    if (played && played.catch) played.catch(function () { /* the user presses play */ });
  }
  turns.forEach(function (turn) {
    const go = function () { seek(Number(turn.dataset.startMs) || 0); };
    turn.addEventListener("click", go);
    turn.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); go(); }
    });
  });
  document.querySelectorAll(".qa-flag").forEach(function (button) {
    button.addEventListener("click", function () { seek(Number(button.dataset.atMs) || 0); });
  });

  // --- the turn being played: from its start to its end (or to the next turn's start)
  let current = null;
  function highlight() {
    const ms = audio.currentTime * 1000;
    let found = null;
    turns.forEach(function (turn, i) {
      const start = Number(turn.dataset.startMs);
      const next = turns[i + 1] ? Number(turns[i + 1].dataset.startMs) : Infinity;
      const end = turn.dataset.endMs ? Number(turn.dataset.endMs) : next;
      if (ms >= start && ms < Math.max(end, start + 1)) found = turn;
    });
    if (found === current) return;
    if (current) { current.classList.remove("qa-playing"); current.removeAttribute("aria-current"); }
    current = found;
    if (current) {
      current.classList.add("qa-playing");
      current.setAttribute("aria-current", "true");
      if (current.scrollIntoView) current.scrollIntoView({block: "nearest"});
    }
  }
  let frame = 0;
  function tick() { highlight(); frame = audio.paused ? 0 : requestAnimationFrame(tick); }
  audio.addEventListener("playing", function () { if (!frame) frame = requestAnimationFrame(tick); });
  audio.addEventListener("seeked", highlight);
  audio.addEventListener("timeupdate", highlight);
})();
