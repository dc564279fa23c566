// Waihu console, agent desk: the offer's pop drawn from its WebSocket message.  The
// message carries the pop (bot/console/desk_state.py, pop_message) and agent.html carries
// <template> copies of the server's own markup with blank slots: this fills a copy, so
// that the pop is on the screen without asking the console for the page (issue 14: within
// 300 ms).  console.js calls `waihuDesk.drawOffer` and lends its helpers (waihuConsole).
"use strict";

(function () {
  const console_ = window.waihuConsole;  // loaded first (base.html)

  // The offered call from its message, into copies of the page's <template>s (the
  // server's own markup, see agent.html); false if this page has none (not a desk).
  function drawOffer(msg) {
    const call = msg.call;
    const presenceTemplate = document.getElementById("presence-offered-template");
    const areaTemplate = document.getElementById("offer-template");
    const presenceCard = document.getElementById("presence");
    const area = document.getElementById("offer-area");
    if (!presenceTemplate || !areaTemplate || !presenceCard || !area) return false;
    const card = presenceTemplate.content.firstElementChild.cloneNode(true);
    const badge = card.querySelector("#agent-state");
    badge.dataset.seq = msg.seq;
    const since = card.querySelector("[data-since]");
    if (msg.since) since.dataset.since = msg.since; else since.parentNode.remove();

    const pop = areaTemplate.content.firstElementChild.cloneNode(true);
    const customer = call.customer || "";
    pop.dataset.offer = call.offer_id;
    pop.dataset.announce = "来电 Call offered: " + (customer || "客户") + ", " +
      call.reason_label + ", " + call.campaign;
    fill(pop, "customer", customer || "—");
    fill(pop, "campaign", call.campaign);
    fill(pop, "reason", call.reason_label);
    fill(pop, "offered-at", when(call.offered_at));
    pop.querySelector("#call-facts").dataset.call = call.call_id;
    pop.querySelectorAll("[data-phone-of]").forEach(function (node) {
      node.dataset.phoneOf = call.call_id;
      node.textContent = call.phone_masked;
    });
    pop.querySelectorAll("[data-reveal-call]").forEach(function (node) { node.dataset.revealCall = call.call_id; });
    const verified = call.verified === true ? "yes" : call.verified === false ? "no" : "unknown";
    pop.querySelectorAll("[data-verified]").forEach(function (node) {
      if (node.dataset.verified !== verified) node.remove();
    });
    const gone = call.listened ? pop.querySelector("#ringing") : pop.querySelector("#listening");
    if (gone) gone.remove();
    pop.querySelector("#offer-actions").dataset.offer = call.offer_id;
    pop.querySelectorAll("form.offer-form").forEach(function (form) {
      const action = form.querySelector("[data-offer-action]").dataset.offerAction;
      if (action === "listen" && call.listened) { form.remove(); return; }
      form.action = "/agent/offers/" + encodeURIComponent(call.offer_id) + "/" + action;
    });
    const collected = pop.querySelector("#collected");
    (call.collected || []).forEach(function (pair) {
      collected.appendChild(console_.el("dt", null, pair[0]));
      collected.appendChild(console_.el("dd", null, pair[1]));
    });
    const some = collected.children.length > 0;
    collected.classList.toggle("hidden", !some);
    pop.querySelector("#collected-none").classList.toggle("hidden", some);
    const list = pop.querySelector("#transcript");
    list.dataset.call = call.call_id;
    list.dataset.lastSeq = 0;

    presenceCard.replaceWith(card);
    area.replaceWith(pop);
    (call.transcript || []).forEach(function (t) {
      console_.showTurn({call_id: call.call_id, seq: t[0], speaker: t[1], text: t[2]}, false);
    });
    const title = document.title;
    const desk = title.indexOf("坐席工作台");
    document.title = "【来电 Call offered】" + (customer || "客户 customer") + " · " +
      (desk >= 0 ? title.slice(desk) : title);
    console_.deskDrawn(true);
    return true;
  }

  // Lay the pop out once, unseen, as the desk loads: the first layout of its markup (its
  // fonts and faces) is what a busy machine paid for most when the first offer came.
  function warmPop() {
    const template = document.getElementById("offer-template");
    if (!template) return;
    const box = document.createElement("div");
    box.setAttribute("aria-hidden", "true");
    box.style.cssText = "position:absolute;left:-10000px;top:0;width:900px;visibility:hidden";
    box.appendChild(template.content.cloneNode(true));
    document.body.appendChild(box);
    void box.offsetHeight;  // the layout happens here
    box.remove();
  }

  function fill(root, slot, text) {
    root.querySelectorAll('[data-slot="' + slot + '"]').forEach(function (node) { node.textContent = text; });
  }

  // As the server's `when` filter writes a time: YYYY-MM-DD HH:MM in the console's zone.
  // The formatter is made as the desk loads (`formatter()` in DOMContentLoaded): the first
  // one loads the zone's data, which a busy machine would otherwise pay for in the pop.
  let timeFormat = null;
  function formatter() {
    const template = document.getElementById("offer-template");
    if (!timeFormat && template) {
      try {
        timeFormat = new Intl.DateTimeFormat("en-CA", {timeZone: template.dataset.tz || undefined,
          year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
          hourCycle: "h23"});
      } catch (err) { timeFormat = null; }
    }
    return timeFormat;
  }

  function when(iso) {
    const at = new Date(iso);
    if (isNaN(at)) return "—";
    const format = formatter();
    if (!format) return at.toLocaleString();
    const parts = format.formatToParts(at);
    const part = function (kind) { return (parts.find(function (p) { return p.type === kind; }) || {}).value || ""; };
    return part("year") + "-" + part("month") + "-" + part("day") + " " + part("hour") + ":" + part("minute");
  }

  window.waihuDesk = {drawOffer: drawOffer};

  document.addEventListener("DOMContentLoaded", function () {
    formatter();
    warmPop();
  });
})();
