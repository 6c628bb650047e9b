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

  // Artifacts as the graph's edges: a line from the action that makes an artifact to each
  // action that reads it (the boxes also say "in:" and "out:" in words). Into the next stage a
  // line crosses the gap between them; one that skips stages drops into the gap after its
  // maker's stage, runs in a lane under the stages, and rises in the gap before its reader's,
  // so no line crosses a box. Drawn in the graph's own coordinates, so it scrolls with it;
  // not drawn when the stages stack on a narrow screen.
  const SVG = "http://www.w3.org/2000/svg";
  const LANE = 7;
  const names = (list) => (list ? list.split("\n").filter(Boolean) : []);
  const drawGraphEdges = (graph) => {
    graph.querySelectorAll("svg.edges").forEach((old) => old.remove());
    graph.style.paddingBottom = "";
    if (getComputedStyle(graph).flexDirection === "column") return;
    const stages = Array.from(graph.querySelectorAll("li.stage"));
    const makers = new Map();
    graph.querySelectorAll(".action").forEach((el) => {
      names(el.dataset.outputs).forEach((artifact) => makers.set(artifact, el));
    });
    const edges = [];
    graph.querySelectorAll(".action").forEach((reader) => {
      names(reader.dataset.inputs).forEach((artifact) => {
        const maker = makers.get(artifact);
        if (maker) edges.push({ artifact, maker, reader });
      });
    });
    const skipping = new Set(edges.filter((e) => {
      const [from, to] = [e.maker, e.reader].map((el) => stages.indexOf(el.closest("li.stage")));
      return to - from > 1;
    }).map((e) => e.artifact));
    // Lanes under the stages, one per artifact that skips stages.
    const lanes = Array.from(skipping);
    graph.style.paddingBottom = lanes.length ? `${lanes.length * LANE + 10}px` : "";
    const frame = graph.getBoundingClientRect();
    const x0 = graph.scrollLeft - frame.left;
    const y0 = graph.scrollTop - frame.top;
    const place = (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left + x0, right: r.right + x0, top: r.top + y0, bottom: r.bottom + y0, y: r.top + y0 + r.height / 2 };
    };
    const bottom = Math.max(...stages.map((st) => place(st).bottom));
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "edges");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("width", String(graph.scrollWidth));
    svg.setAttribute("height", String(graph.scrollHeight));
    edges.forEach(({ artifact, maker, reader }) => {
      const a = place(maker);
      const b = place(reader);
      const from = place(maker.closest("li.stage"));
      const to = place(reader.closest("li.stage"));
      let d;
      if (from.left === to.left) {
        // A later run order of the same stage: out on the right and back.
        d = `M${a.right},${a.y} C${a.right + 24},${a.y} ${b.right + 24},${b.y} ${b.right},${b.y}`;
      } else if (!skipping.has(artifact) || to.left - from.right < 1) {
        const bend = Math.max(12, (b.left - a.right) / 2);
        d = `M${a.right},${a.y} C${a.right + bend},${a.y} ${b.left - bend},${b.y} ${b.left},${b.y}`;
      } else {
        const after = stages[stages.indexOf(maker.closest("li.stage")) + 1];
        const gapOut = (from.right + place(after).left) / 2;
        const before = stages[stages.indexOf(reader.closest("li.stage")) - 1];
        const gapIn = (place(before).right + to.left) / 2;
        const n = lanes.indexOf(artifact);
        const lane = bottom + 6 + n * LANE;
        // Lanes sharing a gap rise and drop side by side, not on one line.
        const shift = (n - (lanes.length - 1) / 2) * 5;
        const [out, into] = [gapOut + shift, gapIn + shift];
        d = `M${a.right},${a.y} H${out} V${lane} H${into} V${b.y} H${b.left}`;
      }
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      path.setAttribute("class", "edge");
      path.dataset.artifact = artifact;
      path.dataset.from = maker.dataset.action;
      path.dataset.to = reader.dataset.action;
      const title = document.createElementNS(SVG, "title");
      title.textContent = artifact;
      path.appendChild(title);
      svg.appendChild(path);
    });
    graph.appendChild(svg);
  };
  const drawEdges = () => document.querySelectorAll("ol.graph").forEach(drawGraphEdges);
  drawEdges();
  window.addEventListener("resize", drawEdges);

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
        drawEdges();
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
