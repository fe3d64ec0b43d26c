// Draws the pipeline of /api/pipeline as plain SVG and redraws it on each
// server-sent event of /api/stream. No library: boxes, lines and text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLUMN = 390, WIDTH = 320, HEAD = 40, LINE = 18, GAP = 28, PAD = 24;

function element(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function count(value) {
  const abs = Math.abs(value);
  if (abs >= 1e9) return (value / 1e9).toFixed(1) + "G";
  if (abs >= 1e6) return (value / 1e6).toFixed(1) + "M";
  if (abs >= 1e4) return (value / 1e3).toFixed(1) + "k";
  return Math.round(value).toLocaleString("en");
}

// The queues worth a line: routed ones, and unrouted ones that saw events.
function shownQueues(module) {
  const order = { in: 0, out: 1, unrouted: 2 };
  return module.queues
    .filter((q) => q.direction !== "unrouted" || q.in_total > 0 || q.dropped_total > 0 || q.discarded_total > 0)
    .sort((a, b) => order[a.direction] - order[b.direction]);
}

// Counters as lines of text, two to a line; one that is moving gets a line
// of its own, with its rate: "delivered 1.2M (350.0k/s)".
function counterText(module, keys, label) {
  const lines = [], still = [];
  for (const key of keys) {
    const rate = (module.rates || {})[key];
    const text = `${label(key)} ${count(module.counters[key])}`;
    if (rate > 0) lines.push({ text: `${text} (${count(rate)}/s)` });
    else still.push(text);
  }
  for (let i = 0; i < still.length; i += 2) lines.push({ text: still.slice(i, i + 2).join(" · ") });
  return lines;
}

// The module's own counters as lines of text; an output's connection first.
function counterLines(module) {
  const c = module.counters;
  if (!("connected" in c)) return counterText(module, Object.keys(c), (key) => key.replace(/_/g, " "));
  const labels = { delivered: "delivered", resent: "resent", failed_over: "failed over" };
  return [
    { up: c.connected > 0, text: c.connected > 0 ? "connected" : "not connected" },
    ...counterText(module, Object.keys(labels).filter((key) => key in c), (key) => labels[key]),
  ];
}

function role(module) {
  if (module.kind.includes(".input.")) return "input";
  if (module.kind.includes(".output.")) return "output";
  return "flow";
}

// When the figures drawn were read: the first fetch can answer after the
// stream already gave newer figures, and older ones are never drawn over
// newer.
let drawnAt = 0;

function draw(pipeline) {
  if (pipeline.timestamp_ms < drawnAt) return;
  drawnAt = pipeline.timestamp_ms;
  const svg = document.getElementById("graph");
  const boxes = new Map(), anchors = new Map(), heights = [];
  const byColumn = [...pipeline.modules].sort((a, b) => a.column - b.column || a.row - b.row);
  for (const module of byColumn) {
    const queues = shownQueues(module), counters = counterLines(module);
    const height = HEAD + LINE * (queues.length + counters.length) + 10;
    const x = PAD + module.column * COLUMN, y = heights[module.column] || PAD;
    heights[module.column] = y + height + GAP;
    boxes.set(module.name, { module, queues, counters, x, y, height });
    queues.forEach((queue, i) => {
      const at = y + HEAD + LINE * i + LINE / 2;
      anchors.set(`${module.name}.${queue.name}`, { x: queue.direction === "in" ? x : x + WIDTH, y: at, queue, column: module.column });
    });
  }
  const routes = element("g", { class: "routes" }), modules = element("g", { class: "modules" });
  // In the document from the start, so texts can be measured; nothing is
  // painted before this function returns.
  svg.replaceChildren(routes, modules);
  let detours = 0, lowest = 0;
  for (const route of pipeline.routes) {
    const from = anchors.get(route.from), to = anchors.get(route.to);
    if (!from || !to) continue;
    const waiting = to.queue.size > 0 ? " waiting" : "";
    let d, label;
    if (to.column === from.column + 1) {
      // Next column: a curve between the two queues.
      const bend = Math.max(50, (to.x - from.x) / 2);
      d = `M${from.x},${from.y} C${from.x + bend},${from.y} ${to.x - bend},${to.y} ${to.x},${to.y}`;
      label = { x: (from.x + to.x) / 2, y: (from.y + to.y) / 2 - 4 };
    } else {
      // Past other columns, or back: below every box in between, each
      // such route on a lane of its own.
      const first = Math.min(from.column + 1, to.column), last = Math.max(from.column, to.column - 1);
      let bottom = 0;
      for (let column = first; column <= last; column++) bottom = Math.max(bottom, (heights[column] || 0) - GAP);
      const lane = bottom + 14 + 10 * detours, shift = 4 * (detours++ % 10);
      const out = from.x + 16 + shift, into = to.x - 16 - shift;
      lowest = Math.max(lowest, lane);
      d = `M${from.x},${from.y} H${out} V${lane} H${into} V${to.y} H${to.x}`;
      label = { x: (out + into) / 2, y: lane - 4 };
    }
    routes.append(element("path", { class: "route" + waiting, "data-route": `${route.from} -> ${route.to}`, d }));
    routes.append(element("text", {
      class: "route-rate", "data-route": `${route.from} -> ${route.to}`, x: label.x, y: label.y,
    }, `${count(from.queue.in_rate)}/s`));
  }
  for (const { module, queues, counters, x, y, height } of boxes.values()) {
    const group = element("g", { class: `module ${role(module)}`, "data-module": module.name });
    modules.append(group);
    group.append(element("rect", { class: "box", x, y, width: WIDTH, height }));
    group.append(element("text", { class: "name", x: x + 10, y: y + 17 }, module.name));
    group.append(element("text", { class: "kind", x: x + 10, y: y + 32 }, module.kind));
    queues.forEach((queue, i) => {
      const top = y + HEAD + LINE * i, id = `${module.name}.${queue.name}`;
      const row = element("g", { class: "queue" + (queue.dropped_total > 0 ? " dropped" : ""), "data-queue": id });
      if (queue.dropped_total > 0) row.append(element("rect", { class: "dropped-mark", x: x + 1, y: top, width: WIDTH - 2, height: LINE }));
      const arrow = queue.direction === "unrouted" ? "× " : "→ ";
      const name = element("text", { x: x + 10, y: top + 13 }, arrow + queue.name);
      row.append(name);
      group.append(row);
      const figures = element("text", { class: "figures", x: x + WIDTH - 10, y: top + 13 });
      figures.append(element("tspan", { "data-stat": "size" }, `${count(queue.size)} waiting · `));
      figures.append(element("tspan", { "data-stat": "in_rate" }, `in ${count(queue.in_rate)}/s`));
      figures.append(element("tspan", {}, " · "));
      figures.append(element("tspan", { "data-stat": "out_rate" }, `out ${count(queue.out_rate)}/s`));
      if (queue.dropped_total > 0) figures.append(element("tspan", { "data-stat": "dropped_total" }, ` · dropped ${count(queue.dropped_total)}`));
      // Filtered out on purpose: shown, never marked as loss.
      if (queue.discarded_total > 0) figures.append(element("tspan", { "data-stat": "discarded_total" }, ` · discarded ${count(queue.discarded_total)}`));
      row.append(figures);
      // Figures too long for the room beside the queue's name are narrowed
      // to fit, never drawn over the name or past the box.
      const room = WIDTH - 20 - name.getComputedTextLength() - 8;
      if (figures.getComputedTextLength() > room) {
        figures.setAttribute("textLength", room);
        figures.setAttribute("lengthAdjust", "spacingAndGlyphs");
      }
    });
    counters.forEach((line, i) => {
      const top = y + HEAD + LINE * (queues.length + i);
      let left = x + 10;
      if (line.up !== undefined) {
        group.append(element("circle", { class: line.up ? "up" : "down", cx: left + 4, cy: top + 9, r: 4 }));
        left += 14;
      }
      group.append(element("text", { class: "counters", x: left, y: top + 13 }, line.text));
    });
  }
  const columns = Math.max(1, heights.length);
  const width = PAD + columns * COLUMN, height = Math.max(...heights.filter(Boolean), lowest + PAD, 200);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  document.getElementById("host").textContent = pipeline.host;
  document.getElementById("updated").textContent =
    "updated " + new Date(pipeline.timestamp_ms).toLocaleTimeString("en-GB");
  document.body.dataset.timestamp = pipeline.timestamp_ms;
}

function status(text, live) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = live ? "live" : "waiting";
}

fetch("api/pipeline").then((response) => response.json()).then(draw).catch(() => {});
const updates = new EventSource("api/stream");
updates.onopen = () => status("live", true);
updates.onerror = () => status("reconnecting", false);
updates.onmessage = (message) => draw(JSON.parse(message.data));
