// Small SVG charts drawn by hand (no library): a stacked bar chart and a
// heat map, plus the table that holds the same numbers for screen readers
// and for anyone who prefers figures. Colours come from CSS classes
// (viewer.css), so light and dark follow the page; nothing here sets an
// inline style (the page's Content-Security-Policy forbids them).

import { el } from "./render.js";

const NS = "http://www.w3.org/2000/svg";

/** An SVG element: `svg("rect", {x: 0, class: "a"}, child, ...)`. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A step of 1, 2 or 5 times a power of ten, about `max / count`. */
export function niceStep(max, count = 4) {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return Math.max(1, step);
}

function round(n) {
  return Math.round(n * 100) / 100;
}

/** The root `<svg>` of a chart: an image named by `label`, described by `description`. */
function frame(width, height, label, description) {
  return svg(
    "svg",
    {
      class: "chart-svg",
      viewBox: `0 0 ${round(width)} ${round(height)}`,
      width: round(width),
      height: round(height),
      role: "img",
      "aria-label": label,
      focusable: "false",
    },
    svg("title", {}, label),
    description ? svg("desc", {}, description) : null,
  );
}

/**
 * A bar chart, stacked when `stacks` has more than one entry.
 * `labels`: one per bar; `stacks`: [{key, label, className, values}],
 * bottom first; `axisLabel(i)`: the text under bar i (or null);
 * `barTitle(i)`: the tooltip of bar i; `tickSteps`: how many bars apart
 * labels may be (the first that leaves room is used). Each bar is a `<g class="bar">`
 * (with `data-index`), even when it is empty.
 */
export function barChart({ width, height = 220, labels, stacks, label, description, axisLabel, barTitle, tickSteps, format = String, empty }) {
  const margin = { top: 10, right: 8, bottom: 26, left: 44 };
  const plotW = Math.max(10, width - margin.left - margin.right);
  const plotH = Math.max(10, height - margin.top - margin.bottom);
  const n = labels.length;
  const totals = labels.map((_, i) => stacks.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = Math.max(0, ...totals);
  const step = niceStep(max);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const y = (v) => margin.top + plotH - (v / top) * plotH;
  const root = frame(width, height, label, description);

  const grid = svg("g", { class: "grid", "aria-hidden": "true" });
  for (let v = 0; v <= top; v += step) {
    const at = round(y(v));
    grid.append(
      svg("line", { x1: margin.left, x2: margin.left + plotW, y1: at, y2: at, class: v === 0 ? "axis-line" : "grid-line" }),
      svg("text", { x: margin.left - 6, y: at, class: "tick", "text-anchor": "end", "dominant-baseline": "middle" }, format(v)),
    );
  }
  root.append(grid);

  const band = n > 0 ? plotW / n : plotW;
  const barW = band >= 4 ? band * 0.72 : band;
  const bars = svg("g", { class: "bars" });
  for (let i = 0; i < n; i++) {
    const x = margin.left + i * band + (band - barW) / 2;
    const bar = svg("g", { class: "bar", "data-index": i, "data-label": labels[i] });
    if (barTitle) bar.append(svg("title", {}, barTitle(i)));
    // The whole column answers the pointer, also over an empty bar.
    bar.append(svg("rect", { class: "hit", x: round(margin.left + i * band), y: margin.top, width: round(band), height: plotH }));
    let base = 0;
    for (const s of stacks) {
      const v = s.values[i] || 0;
      if (v <= 0) continue;
      const y0 = y(base);
      const y1 = y(base + v);
      bar.append(
        svg("rect", {
          class: `seg ${s.className}`,
          "data-key": s.key,
          "data-value": v,
          x: round(x),
          y: round(y1),
          width: round(Math.max(barW, 0.5)),
          height: round(Math.max(y0 - y1, 0.5)),
        }),
      );
      base += v;
    }
    bars.append(bar);
  }
  root.append(bars);

  // Labels under the bars, thinned so that they never overlap.
  const needed = Math.max(1, Math.ceil(64 / Math.max(band, 0.01)));
  const steps = tickSteps || [];
  const every = steps.find((s) => s >= needed) || (steps.length ? Math.ceil(needed / steps[steps.length - 1]) * steps[steps.length - 1] : needed);
  const axis = svg("g", { class: "x-axis", "aria-hidden": "true" });
  for (let i = 0; i < n; i += every) {
    const text = axisLabel ? axisLabel(i) : labels[i];
    if (!text) continue;
    const cx = margin.left + i * band + band / 2;
    const anchor = n === 1 ? "middle" : i === 0 && band < 64 ? "start" : "middle";
    axis.append(svg("text", { x: round(anchor === "start" ? margin.left + i * band : cx), y: height - 8, class: "tick", "text-anchor": anchor }, text));
  }
  root.append(axis);

  if (max === 0 && empty) {
    root.append(svg("text", { x: round(margin.left + plotW / 2), y: round(margin.top + plotH / 2), class: "empty-note", "text-anchor": "middle" }, empty));
  }
  return root;
}

/**
 * A heat map of `values` (rows of numbers): darker is more. `rowLabels`
 * name the rows, `colLabel(j)` the columns, every `labelSteps[k]`-th
 * (the first that leaves room),
 * `cellTitle(i, j, v)` is each cell's tooltip, `className` colours it.
 */
export function heatMap({ width, values, rowLabels, colLabel, labelSteps = [1], cellTitle, label, description, className = "" }) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const margin = { top: 4, right: 4, bottom: 22, left: 44 };
  const cell = Math.max(8, Math.min(34, (width - margin.left - margin.right) / Math.max(cols, 1)));
  const cellH = Math.max(14, Math.min(28, cell * 0.8));
  const w = margin.left + cell * cols + margin.right;
  const h = margin.top + cellH * rows + margin.bottom;
  const max = Math.max(0, ...values.flat());
  const root = frame(w, h, label, description);
  const grid = svg("g", { class: "cells" });
  for (let i = 0; i < rows; i++) {
    root.append(svg("text", { x: margin.left - 6, y: round(margin.top + i * cellH + cellH / 2), class: "tick", "text-anchor": "end", "dominant-baseline": "middle", "aria-hidden": "true" }, rowLabels[i]));
    for (let j = 0; j < cols; j++) {
      const v = values[i][j] || 0;
      const attributes = {
        class: `cell ${className}${v === 0 ? " zero" : ""}`,
        "data-row": i,
        "data-col": j,
        "data-value": v,
        x: round(margin.left + j * cell + 1),
        y: round(margin.top + i * cellH + 1),
        width: round(cell - 2),
        height: round(cellH - 2),
        rx: 2,
      };
      // More is darker; the faintest non-zero cell is still visible.
      if (v > 0) attributes["fill-opacity"] = round(0.15 + 0.85 * (v / max));
      grid.append(svg("rect", attributes, svg("title", {}, cellTitle(i, j, v))));
    }
  }
  root.append(grid);
  const axis = svg("g", { class: "x-axis", "aria-hidden": "true" });
  const every = labelSteps.find((k) => k * cell >= 44) || labelSteps[labelSteps.length - 1];
  for (let j = 0; j < cols; j += every) {
    const text = colLabel(j);
    if (!text) continue;
    axis.append(svg("text", { x: round(margin.left + j * cell), y: h - 6, class: "tick", "text-anchor": "start" }, text));
  }
  root.append(axis);
  return root;
}

/**
 * A data table: `head` (column titles), `rows` (arrays of cells: text, a
 * Node, or {text, value} to keep the raw number in `data-value`), an
 * optional `foot` row. The first cell of each row is a row header.
 */
export function table({ caption, head, rows, foot, className = "" }) {
  const cell = (tag, content, attributes = {}) => {
    if (content instanceof Node) return el(tag, attributes, content);
    if (content && typeof content === "object") {
      return el(tag, { ...attributes, "data-value": JSON.stringify(content.value), class: content.className }, content.text);
    }
    return el(tag, attributes, content === undefined || content === null ? "" : String(content));
  };
  const line = (cells, first = "th") => el("tr", {}, cells.map((c, i) => (i === 0 ? cell(first, c, first === "th" ? { scope: "row" } : {}) : cell("td", c))));
  return el(
    "table",
    { class: `data-table ${className}`.trim() },
    caption ? el("caption", { class: "visually-hidden", text: caption }) : null,
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows.map((r) => line(r))),
    foot ? el("tfoot", {}, line(foot)) : null,
  );
}
