// The console works without this file: it adds confirmations, the live filter, and redraws
// the live part of a page when the server says something changed (server-sent events).
(() => {
  "use strict";

  document.addEventListener("submit", (e) => {
    const question = e.target.dataset.confirm;
    if (question && !window.confirm(question)) e.preventDefault();
  });

  const filter = document.getElementById("filter");
  const applyFilter = () => {
    if (!filter) return;
    const q = filter.value.toLowerCase();
    document.querySelectorAll("tr[data-name]").forEach((row) => {
      row.hidden = !row.dataset.name.toLowerCase().includes(q);
    });
  };
  if (filter) filter.addEventListener("input", applyFilter);

  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  const pipeline = live.dataset.pipeline;
  let timer = null;

  // Someone filling in a form inside the live part keeps what they entered: redraw later.
  const edited = (form) =>
    Array.from(form.elements).some((el) =>
      el.type === "checkbox" || el.type === "radio"
        ? el.checked !== el.defaultChecked
        : "defaultValue" in el && el.value !== el.defaultValue,
    );
  const typing = () => {
    const form = document.activeElement && document.activeElement.closest("form");
    return Boolean(form && live.contains(form) && edited(form));
  };

  const redraw = () => {
    timer = null;
    if (typing()) {
      schedule(1000);
      return;
    }
    fetch(live.dataset.src, { headers: { accept: "text/html" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((html) => {
        // The fragment is the server's own escaped HTML, as the page itself is.
        live.innerHTML = html;
        applyFilter();
        live.dataset.redraws = String(Number(live.dataset.redraws || 0) + 1);
      })
      .catch(() => schedule(2000));
  };
  const schedule = (ms) => {
    if (!timer) timer = window.setTimeout(redraw, ms);
  };

  const events = new EventSource("/console/events");
  events.addEventListener("change", (m) => {
    let d = {};
    try {
      d = JSON.parse(m.data);
    } catch (_) {
      /* redraw anyway */
    }
    if (!pipeline || d.pipeline === pipeline) schedule(100);
  });
  events.addEventListener("lagged", () => schedule(100));
  // What changed between drawing the page and following its events (or while a dropped
  // stream reconnected) came with no event here: draw once more whenever the stream opens.
  events.addEventListener("open", () => schedule(0));
})();

// An action's log: what it prints next is appended as it prints it.
(() => {
  "use strict";
  const log = document.getElementById("log");
  if (!log || !log.dataset.follow || !window.EventSource) return;
  const atBottom = () => window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  const follow = new EventSource(log.dataset.follow);
  const append = (m) => {
    const stick = atBottom();
    // The server's own escaped HTML, rendered from the output as the page's lines are.
    log.insertAdjacentHTML("beforeend", JSON.parse(m.data || '""'));
    if (stick) window.scrollTo(0, document.body.scrollHeight);
  };
  follow.addEventListener("lines", append);
  follow.addEventListener("end", (m) => {
    append(m);
    follow.close();
    log.dataset.ended = "true";
  });
})();
