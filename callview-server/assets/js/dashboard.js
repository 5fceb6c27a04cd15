// The dashboard: what `GET api/stats` says about a period, as figures,
// charts (SVG, charts.js) and tables.
//
// Its state is in the address too: #view=dashboard&range=30d&bucket=day
// (a quick period, which moves with today) or
// #view=dashboard&since=2026-03-01&until=2026-03-31&bucket=day (fixed
// dates, both inclusive), plus &tz=Europe/Paris when the time zone is not
// the browser's. main.js decides which view is shown and hands the
// dashboard its part of the address.

import { ApiError, request } from "./api.js";
import * as fmt from "./format.js";
import { el } from "./render.js";
import { barChart, heatMap, table } from "./charts.js";

/** Quick periods: how many days (or months) end today, and the bucket they read best in. */
const PRESETS = {
  "7d": { days: 7, bucket: "day" },
  "30d": { days: 30, bucket: "day" },
  "90d": { days: 90, bucket: "week" },
  "12m": { months: 12, bucket: "month" },
};
const DEFAULT_RANGE = "30d";
const BUCKETS = ["hour", "day", "week", "month"];
/** After a sync, wait this long for more events before reading the stats again. */
const LIVE_DELAY_MS = 1000;

const DIRECTIONS = { inbound: "Incoming", outbound: "Outgoing", internal: "Internal" };

const $ = (id) => document.getElementById(id);
let ui = null;

const state = {
  visible: false,
  range: DEFAULT_RANGE,
  since: "",
  until: "",
  bucket: "day",
  tz: "",
  direction: "",
  heat: "inbound",
  data: null,
  shownQuery: "",
  abort: null,
  generation: 0,
  stale: true,
  liveTimer: null,
  width: 0,
  onAuthError: () => {},
};

// ------------------------------------------------------------ dates

/** The browser's time zone, or UTC. */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** Today's date (YYYY-MM-DD) in the time zone `tz`. */
function today(tz) {
  let parts;
  try {
    parts = new Intl.DateTimeFormat("en-US", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date());
  } catch {
    parts = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(new Date());
  }
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

function isDate(text) {
  return /^\d{4}-\d{2}-\d{2}$/.test(text || "");
}

/** A calendar date moved by days and months (calendar arithmetic, no time zone). */
function shift(date, { days = 0, months = 0 }) {
  const [y, m, d] = date.split("-").map(Number);
  let t = new Date(Date.UTC(y, m - 1 + months, 1));
  // The same day of the month, or the month's last when it has fewer days.
  const last = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 0)).getUTCDate();
  t = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), Math.min(d, last) + days));
  return t.toISOString().slice(0, 10);
}

/** The dates a quick period covers, ending today in `tz`. */
function presetDates(range, tz) {
  const preset = PRESETS[range];
  const until = today(tz);
  const since = preset.months ? shift(shift(until, { months: -preset.months }), { days: 1 }) : shift(until, { days: 1 - preset.days });
  return { since, until };
}

/** What the page asks the API for. */
function query() {
  const dates = state.range ? presetDates(state.range, state.tz) : { since: state.since, until: state.until };
  return { since: dates.since, until: dates.until, tz: state.tz, bucket: state.bucket };
}

function queryString(q) {
  return new URLSearchParams(q).toString();
}

// ------------------------------------------------------------ address

/** Reads the dashboard's part of the address (URLSearchParams of the fragment). */
function readParams(params) {
  const range = params.get("range") || "";
  const since = params.get("since") || "";
  const until = params.get("until") || "";
  const custom = isDate(since) && isDate(until);
  const chosen = PRESETS[range] ? range : custom ? "" : DEFAULT_RANGE;
  const bucket = params.get("bucket");
  return {
    range: chosen,
    since: chosen ? "" : since,
    until: chosen ? "" : until,
    bucket: BUCKETS.includes(bucket) ? bucket : chosen ? PRESETS[chosen].bucket : "day",
    tz: (params.get("tz") || "").trim() || browserTimeZone(),
  };
}

/** The address of the dashboard as it is now. */
export function dashboardHash() {
  const p = new URLSearchParams({ view: "dashboard" });
  if (state.range) p.set("range", state.range);
  else {
    p.set("since", state.since);
    p.set("until", state.until);
  }
  p.set("bucket", state.bucket);
  if (state.tz && state.tz !== browserTimeZone()) p.set("tz", state.tz);
  return `#${p.toString()}`;
}

function writeAddress() {
  const hash = dashboardHash();
  if (hash !== window.location.hash) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search + hash);
  }
  document.dispatchEvent(new CustomEvent("callview:dashboard-address"));
}

// ------------------------------------------------------------ formatting

const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
const longDayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
const monthFormat = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone: "UTC" });
const longMonthFormat = new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
const hourFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", timeZone: "UTC" });
const hourMinuteFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZone: "UTC" });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", timeZone: "UTC" });
const longWeekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", timeZone: "UTC" });

/** The wall-clock time written in an RFC 3339 instant of the API ("2026-03-01T14:00:00+01:00"), as a UTC Date holding that wall time. */
function wallTime(instant) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?/.exec(instant || "");
  if (!m) return null;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] || 0), Number(m[5] || 0)));
}

function dateOf(text) {
  return wallTime(text);
}

/** The short label under a bar. */
function axisLabel(bucket, item) {
  const t = wallTime(item.start);
  if (!t) return item.label;
  if (bucket === "hour") return t.getUTCHours() === 0 ? dayFormat.format(t) : hourFormat.format(t);
  if (bucket === "month") return monthFormat.format(t);
  return dayFormat.format(t);
}

/** A bucket in words: "Sun, Mar 1, 2026", "Week of Mar 1, 2026", "March 2026". */
function periodLabel(bucket, item) {
  const t = wallTime(item.start);
  if (!t) return item.label;
  if (bucket === "hour") return hourMinuteFormat.format(t);
  if (bucket === "week") return `Week of ${longDayFormat.format(t)}`;
  if (bucket === "month") return longMonthFormat.format(t);
  return longDayFormat.format(t);
}

function rate(part, whole) {
  return whole > 0 ? percent.format(part / whole) : "—";
}

function seconds(value) {
  return value === null || value === undefined ? "—" : fmt.duration(value);
}

/** A number of seconds as a short bound: "5s", "1m", "1m 30s", "1h". */
function shortSeconds(s) {
  if (s < 60) return `${s}s`;
  if (s < 3600) return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m ${s % 60}s`;
  return s % 3600 === 0 ? `${s / 3600}h` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function waitLabel(b) {
  return b.to === null || b.to === undefined ? `${shortSeconds(b.from)}+` : `${shortSeconds(b.from)}–${shortSeconds(b.to)}`;
}

function costText(cost) {
  if (!cost || cost.length === 0) return "—";
  return cost.map((c) => fmt.cost(c.amount, c.currency)).join(" · ");
}

// ------------------------------------------------------------ figures

/** A figure: its name, its value shown, the raw value kept in `data-value`, more below. */
function figure(key, title, value, text, ...sub) {
  return el(
    "div",
    { class: "figure-card", dataset: { card: key } },
    el("dt", { text: title }),
    el("dd", { class: "figure-main", dataset: { figure: key, value: JSON.stringify(value) }, text }),
    sub.filter(Boolean).map((s) => el("dd", { class: "figure-sub" }, s)),
  );
}

function subFigure(key, label, value, text) {
  return [`${label} `, el("span", { dataset: { figure: key, value: JSON.stringify(value) }, text })];
}

function renderFigures(totals, texts) {
  const t = totals;
  const x = texts || { total: 0, inbound: 0, outbound: 0, internal: 0, undelivered: 0 };
  const textSub = x.total > 0
    ? [`${fmt.count(x.inbound)} received · ${fmt.count(x.outbound)} sent`,
       x.undelivered > 0 ? subFigure("texts.undelivered", "Not delivered:", x.undelivered, fmt.count(x.undelivered)) : null]
    : [];
  const dirs = Object.entries(DIRECTIONS)
    .map(([key, word]) => [word, (t.by_direction && t.by_direction[key] && t.by_direction[key].interactions) || 0])
    .filter(([, n]) => n > 0)
    .map(([word, n]) => `${fmt.count(n)} ${word.toLowerCase()}`)
    .join(" · ");
  const missedRate = t.interactions > 0 ? t.missed / t.interactions : null;
  ui.figures.replaceChildren(
    figure("interactions", "Calls", t.interactions, fmt.count(t.interactions), dirs || null, t.live > 0 ? subFigure("live", "Live now:", t.live, fmt.count(t.live)) : null),
    figure("answered", "Answered", t.answered, fmt.count(t.answered), t.interactions > 0 ? `${rate(t.answered, t.interactions)} of calls` : null),
    figure("missed", "Missed", t.missed, fmt.count(t.missed), "no answer, busy, failed or canceled"),
    figure("missed_rate", "Missed rate", missedRate, missedRate === null ? "—" : percent.format(missedRate), "of calls"),
    figure("wait.average", "Average wait", t.wait.average, seconds(t.wait.average), subFigure("wait.p90", "90 % within", t.wait.p90, seconds(t.wait.p90))),
    figure("talk.average", "Average talk", t.talk.average, seconds(t.talk.average), subFigure("talk.p90", "90 % within", t.talk.p90, seconds(t.talk.p90))),
    figure("cost", "Cost", t.cost || [], costText(t.cost)),
    figure("texts", "Texts", x.total, fmt.count(x.total), ...textSub),
  );
}

// ------------------------------------------------------------ charts

function chartWidth(container) {
  return Math.max(240, Math.floor(container.clientWidth || 0) || 720);
}

/** How many bars apart labels may be, so that they fall on whole days, weeks, quarters. */
const TICK_STEPS = {
  hour: [1, 2, 3, 6, 12, 24, 48, 168, 336, 672],
  day: [1, 2, 7, 14, 28, 56, 91, 182, 364],
  week: [1, 2, 4, 8, 13, 26, 52],
  month: [1, 2, 3, 6, 12, 24],
};

/** The numbers of the calls chart for the chosen direction: answered, missed, live, per bucket. */
function callsOf(item) {
  const d = state.direction ? (item.by_direction && item.by_direction[state.direction]) || { interactions: 0, answered: 0, missed: 0 } : item;
  const answered = d.answered || 0;
  const missed = d.missed || 0;
  const interactions = d.interactions || 0;
  return { interactions, answered, missed, live: Math.max(0, interactions - answered - missed) };
}

function renderCalls() {
  const data = state.data;
  const bucket = data.bucket || state.bucket;
  const series = data.series || [];
  const rows = series.map(callsOf);
  const word = state.direction ? `${DIRECTIONS[state.direction].toLowerCase()} ` : "";
  ui.callsHeading.textContent = `${state.direction ? DIRECTIONS[state.direction] : "Calls"}${state.direction ? " calls" : ""} per ${bucket}`;
  const stacks = [
    { key: "answered", label: "Answered", className: "seg-answered", values: rows.map((r) => r.answered) },
    { key: "missed", label: "Missed", className: "seg-missed", values: rows.map((r) => r.missed) },
  ];
  if (rows.some((r) => r.live > 0)) stacks.push({ key: "live", label: "Live", className: "seg-live", values: rows.map((r) => r.live) });
  const total = rows.reduce((sum, r) => sum + r.interactions, 0);
  ui.callsChart.replaceChildren(
    barChart({
      width: chartWidth(ui.callsChart),
      height: 240,
      labels: series.map((s) => s.label),
      stacks,
      label: `${word ? `${DIRECTIONS[state.direction]} calls` : "Calls"} per ${bucket}, answered and missed stacked: ${fmt.count(total)} in ${series.length} ${series.length === 1 ? bucket : `${bucket}s`}`,
      description: "The table below the chart holds the same numbers.",
      axisLabel: (i) => axisLabel(bucket, series[i]),
      tickSteps: TICK_STEPS[bucket],
      barTitle: (i) => {
        const r = rows[i];
        const parts = [`${fmt.count(r.answered)} answered`, `${fmt.count(r.missed)} missed`];
        if (r.live) parts.push(`${fmt.count(r.live)} live`);
        return `${periodLabel(bucket, series[i])}: ${fmt.count(r.interactions)} ${word}calls (${parts.join(", ")})`;
      },
      format: fmt.count,
      empty: "No calls in this period",
    }),
  );
  ui.callsLegend.replaceChildren(
    ...stacks.map((s) => el("li", {}, el("span", { class: `swatch ${s.className}`, "aria-hidden": "true" }), s.label)),
  );
  const sum = (key) => rows.reduce((acc, r) => acc + r[key], 0);
  const n = (v) => ({ text: fmt.count(v), value: v });
  ui.callsTable.replaceChildren(
    table({
      caption: `${word ? DIRECTIONS[state.direction] : "All"} calls per ${bucket}`,
      className: "calls-table",
      head: ["Period", "Calls", "Answered", "Missed", "Live"],
      rows: series.map((s, i) => [{ text: periodLabel(bucket, s), value: s.label }, n(rows[i].interactions), n(rows[i].answered), n(rows[i].missed), n(rows[i].live)]),
      foot: ["Total", n(sum("interactions")), n(sum("answered")), n(sum("missed")), n(sum("live"))],
    }),
  );
}

/** Monday first, as the API gives the rows (2024-01-01 was a Monday). */
const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6].map((i) => new Date(Date.UTC(2024, 0, 1 + i)));

function hourName(h) {
  return hourFormat.format(new Date(Date.UTC(2024, 0, 1, h)));
}

function renderWeek() {
  const data = state.data;
  const which = state.heat;
  const grid = (data.by_hour_of_week && data.by_hour_of_week[which]) || [];
  const values = WEEKDAYS.map((_, i) => (grid[i] || []).slice(0, 24).concat(Array(24).fill(0)).slice(0, 24));
  const noun = which === "missed" ? "missed calls" : "incoming calls";
  const total = values.flat().reduce((a, b) => a + b, 0);
  let busiest = null;
  values.forEach((row, i) =>
    row.forEach((v, h) => {
      if (v > 0 && (!busiest || v > busiest.v)) busiest = { i, h, v };
    }),
  );
  const slot = (i, h) => `${longWeekdayFormat.format(WEEKDAYS[i])} ${hourName(h)}–${hourName((h + 1) % 24)}`;
  ui.weekChart.replaceChildren(
    heatMap({
      width: chartWidth(ui.weekChart),
      values,
      rowLabels: WEEKDAYS.map((d) => weekdayFormat.format(d)),
      colLabel: hourName,
      labelSteps: [3, 6, 12],
      cellTitle: (i, h, v) => `${slot(i, h)}: ${fmt.count(v)} ${noun}`,
      label: `${which === "missed" ? "Missed" : "Incoming"} calls by day of the week and hour (${state.data.tz || state.tz}): ${fmt.count(total)} in all${busiest ? `, most on ${slot(busiest.i, busiest.h)} (${fmt.count(busiest.v)})` : ""}`,
      description: "Darker cells had more calls. The table below holds the same numbers.",
      className: which === "missed" ? "heat-missed" : "heat-inbound",
    }),
  );
  ui.weekNote.textContent = busiest
    ? `Darker is busier. Most ${noun}: ${slot(busiest.i, busiest.h)} (${fmt.count(busiest.v)}). Hours in ${state.data.tz || state.tz}.`
    : `No ${noun} in this period.`;
  const n = (v) => ({ text: fmt.count(v), value: v });
  ui.weekTable.replaceChildren(
    table({
      caption: `${noun} by day of the week (rows) and hour (columns)`,
      className: "week-table",
      head: ["Day", ...Array.from({ length: 24 }, (_, h) => hourName(h)), "Total"],
      rows: values.map((row, i) => [longWeekdayFormat.format(WEEKDAYS[i]), ...row.map(n), n(row.reduce((a, b) => a + b, 0))]),
    }),
  );
}

function renderWait() {
  const buckets = state.data.wait_distribution || [];
  const total = buckets.reduce((a, b) => a + (b.count || 0), 0);
  ui.waitChart.replaceChildren(
    barChart({
      width: chartWidth(ui.waitChart),
      height: 200,
      labels: buckets.map(waitLabel),
      stacks: [{ key: "count", label: "Calls", className: "seg-count", values: buckets.map((b) => b.count || 0) }],
      label: `Wait time of answered and missed calls: ${fmt.count(total)} calls, in ${buckets.length} ranges`,
      description: "The table below holds the same numbers.",
      barTitle: (i) => `${waitLabel(buckets[i])}: ${fmt.count(buckets[i].count || 0)} calls`,
      format: fmt.count,
      empty: "No waits measured in this period",
    }),
  );
  const w = state.data.totals.wait;
  ui.waitNote.textContent = total > 0 ? `How long callers waited before an answer, or before the call ended unanswered. Average ${seconds(w.average)}; 90 % waited ${seconds(w.p90)} or less.` : "";
  const n = (v) => ({ text: fmt.count(v), value: v });
  ui.waitTable.replaceChildren(
    table({
      caption: "Answered and missed calls by wait time",
      className: "wait-table",
      head: ["Wait", "Calls"],
      rows: buckets.map((b) => [waitLabel(b), n(b.count || 0)]),
      foot: ["Total", n(total)],
    }),
  );
}

function contactLink(c) {
  const name = c.name || c.external_id;
  return el(
    "a",
    { class: "contact-link", href: `#c=${encodeURIComponent(c.conversation_id)}`, dataset: { conversationId: String(c.conversation_id) }, title: "Open this conversation" },
    el("span", { class: "contact-name", text: name }),
    c.name && c.name !== c.external_id ? el("span", { class: "contact-number", text: c.external_id }) : null,
  );
}

function contactsTable(contacts, caption, className) {
  if (!contacts || contacts.length === 0) return el("p", { class: "empty-table", text: "No calls in this period." });
  const n = (v) => ({ text: fmt.count(v), value: v });
  return table({
    caption,
    className,
    head: ["Caller", "Calls", "Missed"],
    rows: contacts.map((c) => [contactLink(c), n(c.calls), n(c.missed)]),
  });
}

function renderTop() {
  const top = state.data.top_contacts || {};
  ui.topCalls.replaceChildren(contactsTable(top.by_calls, "Callers with the most calls", "top-calls"));
  ui.topMissed.replaceChildren(contactsTable(top.by_missed, "Callers with the most missed calls", "top-missed"));
}

function renderLines() {
  const lines = state.data.by_owned_number || [];
  if (lines.length === 0) {
    ui.lines.replaceChildren(el("p", { class: "empty-table", text: "No calls in this period." }));
    return;
  }
  const n = (v) => ({ text: fmt.count(v), value: v });
  ui.lines.replaceChildren(
    table({
      caption: "Calls by company line",
      className: "lines-table",
      head: ["Line", "Calls", "Answered", "Missed", "Missed rate"],
      rows: lines.map((l) => [
        el("span", { title: l.number, text: l.display || l.number }),
        n(l.interactions),
        n(l.answered),
        n(l.missed),
        rate(l.missed, l.interactions),
      ]),
    }),
  );
}

function renderRange(q) {
  const from = dateOf(q.since);
  const to = dateOf(q.until);
  const text = from && to ? `${longDayFormat.format(from)} – ${longDayFormat.format(to)}` : "";
  ui.range.textContent = text ? `${text} · ${(state.data && state.data.tz) || q.tz}` : "";
}

function renderCharts() {
  if (!state.data) return;
  renderCalls();
  renderWeek();
  renderWait();
}

function render() {
  const data = state.data;
  renderFigures(data.totals, data.texts);
  renderCharts();
  renderTop();
  renderLines();
  state.width = ui.inner.clientWidth;
}

// ------------------------------------------------------------ loading

function fillControls() {
  const q = query();
  ui.since.value = q.since;
  ui.until.value = q.until;
  ui.bucket.value = state.bucket;
  if (![...ui.tz.options].some((o) => o.value === state.tz)) {
    ui.tz.append(el("option", { value: state.tz, text: state.tz.replaceAll("_", " ") }));
  }
  ui.tz.value = state.tz;
  for (const button of ui.presets) button.setAttribute("aria-pressed", button.dataset.range === state.range ? "true" : "false");
  renderRange(q);
}

function setBusy(busy, text) {
  ui.root.setAttribute("aria-busy", busy ? "true" : "false");
  ui.status.textContent = text;
}

/**
 * Reads the stats for the chosen period and draws them. `quiet` (a live
 * refresh) keeps what is shown until the answer comes.
 */
async function load({ quiet = false } = {}) {
  state.generation += 1;
  const generation = state.generation;
  if (state.abort) state.abort.abort();
  state.abort = new AbortController();
  state.stale = false;
  const q = query();
  const qs = queryString(q);
  fillControls();
  if (!quiet) {
    ui.root.dataset.state = "loading";
    ui.root.classList.toggle("refreshing", qs !== state.shownQuery && Boolean(state.data));
  }
  setBusy(true, quiet ? "Updating…" : "Loading…");
  try {
    const data = await request("api/stats", { params: q, signal: state.abort.signal });
    if (generation !== state.generation) return;
    state.data = data;
    state.shownQuery = qs;
    ui.error.hidden = true;
    ui.error.textContent = "";
    render();
    renderRange(q);
    ui.root.dataset.query = qs;
    ui.root.dataset.state = "ready";
    ui.root.classList.remove("refreshing", "failed");
    setBusy(false, `${fmt.count(data.totals.interactions)} ${data.totals.interactions === 1 ? "call" : "calls"} in this period`);
  } catch (error) {
    if (generation !== state.generation) return;
    if (error && error.name === "AbortError") return;
    setBusy(false, "");
    if (error instanceof ApiError && error.status === 401) {
      state.stale = true;
      state.onAuthError(error);
      return;
    }
    ui.root.dataset.state = "error";
    ui.root.classList.remove("refreshing");
    // What is still shown is another period's: say so by dimming it.
    ui.root.classList.toggle("failed", Boolean(state.data));
    const message = error instanceof ApiError ? error.message : String(error);
    ui.error.textContent = `The dashboard could not be loaded: ${message}`;
    ui.error.hidden = false;
  }
}

/** A live refresh, after the events of a sync settle. */
function refreshSoon() {
  clearTimeout(state.liveTimer);
  state.liveTimer = setTimeout(() => {
    if (state.visible) load({ quiet: true });
    else state.stale = true;
  }, LIVE_DELAY_MS);
}

// ------------------------------------------------------------ wiring

function changed() {
  writeAddress();
  load();
}

function fillTimeZones() {
  let zones = [];
  try {
    if (typeof Intl.supportedValuesOf === "function") zones = Intl.supportedValuesOf("timeZone");
  } catch {
    zones = [];
  }
  const all = new Set(zones);
  for (const extra of ["UTC", browserTimeZone()]) all.add(extra);
  const sorted = [...all].sort((a, b) => (a === "UTC" ? -1 : b === "UTC" ? 1 : a.localeCompare(b)));
  ui.tz.replaceChildren(...sorted.map((z) => el("option", { value: z, text: z.replaceAll("_", " ") })));
}

/** Finds the page's elements and listens to the controls; `onAuthError(error)` handles a 401. */
export function initDashboard({ onAuthError } = {}) {
  ui = {
    root: $("dashboard"),
    inner: document.querySelector("#dashboard .dash-inner"),
    heading: $("dashboard-heading"),
    range: $("dash-range"),
    form: $("dash-controls"),
    presets: [...document.querySelectorAll("#dash-controls .preset")],
    since: $("dash-since"),
    until: $("dash-until"),
    bucket: $("dash-bucket"),
    tz: $("dash-tz"),
    status: $("dash-status"),
    error: $("dash-error"),
    figures: $("dash-figures"),
    callsHeading: $("calls-heading"),
    direction: $("dash-direction"),
    callsChart: $("chart-calls"),
    callsLegend: $("legend-calls"),
    callsTable: $("table-calls"),
    weekChart: $("chart-week"),
    weekNote: $("note-week"),
    weekTable: $("table-week"),
    waitChart: $("chart-wait"),
    waitNote: $("note-wait"),
    waitTable: $("table-wait"),
    topCalls: $("table-top-calls"),
    topMissed: $("table-top-missed"),
    lines: $("table-lines"),
  };
  if (onAuthError) state.onAuthError = onAuthError;
  state.tz = browserTimeZone();
  fillTimeZones();

  ui.form.addEventListener("submit", (e) => e.preventDefault());
  for (const button of ui.presets) {
    button.addEventListener("click", () => {
      const range = button.dataset.range;
      state.range = range;
      state.since = "";
      state.until = "";
      state.bucket = PRESETS[range].bucket;
      changed();
    });
  }
  const dateChanged = () => {
    const since = ui.since.value;
    const until = ui.until.value;
    if (!isDate(since) || !isDate(until)) return;
    state.range = "";
    state.since = since;
    state.until = until;
    changed();
  };
  ui.since.addEventListener("change", dateChanged);
  ui.until.addEventListener("change", dateChanged);
  // A quick period stays one (it keeps moving with today); only its bucket changes.
  ui.bucket.addEventListener("change", () => {
    state.bucket = ui.bucket.value;
    changed();
  });
  ui.tz.addEventListener("change", () => {
    state.tz = ui.tz.value;
    changed();
  });
  ui.direction.addEventListener("change", () => {
    state.direction = ui.direction.value;
    if (state.data) renderCalls();
  });
  for (const radio of document.querySelectorAll('#panel-week input[name="heat"]')) {
    radio.addEventListener("change", () => {
      state.heat = radio.value;
      if (state.data) renderWeek();
    });
  }
  if ("ResizeObserver" in window) {
    let frame = 0;
    new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const width = ui.inner.clientWidth;
        if (state.visible && state.data && width && width !== state.width) {
          state.width = width;
          renderCharts();
        }
      });
    }).observe(ui.inner);
  }
}

/**
 * Shows the dashboard for the address's `params` (URLSearchParams of the
 * fragment) and reads the stats. `focus` moves the keyboard focus to its
 * heading (when someone switched views).
 */
export function showDashboard(params, { focus = false } = {}) {
  const wanted = readParams(params);
  const before = queryString(query());
  Object.assign(state, wanted);
  const was = state.visible;
  state.visible = true;
  ui.root.hidden = false;
  fillControls();
  if (focus) ui.heading.focus({ preventScroll: true });
  if (!was || state.stale || queryString(query()) !== before || !state.data) load();
}

export function hideDashboard() {
  state.visible = false;
  ui.root.hidden = true;
}

/** A server event: the stats change when calls are stored or edited. */
export function dashboardEvent(type, data) {
  let changes = false;
  if (type === "sync") changes = (data.inserted || 0) + (data.updated || 0) + (data.moved || 0) > 0;
  else if (type === "changed" || type === "edited" || type === "resync") changes = true;
  if (!changes) return;
  if (state.visible) refreshSoon();
  else state.stale = true;
}
