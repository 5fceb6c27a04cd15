// How values are shown: times, durations, money, statuses, directions.

const LOCALE = undefined; // the browser's

const timeFormat = new Intl.DateTimeFormat(LOCALE, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(LOCALE, { month: "short", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(LOCALE, {
  weekday: "short",
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "numeric",
  minute: "2-digit",
  second: "2-digit",
});
const relative = new Intl.RelativeTimeFormat(LOCALE, { numeric: "auto", style: "short" });
const integer = new Intl.NumberFormat(LOCALE);

export function count(n) {
  return integer.format(n);
}

/** "2026-02-06T15:17:13.000Z" or Unix ms -> Date. */
export function toDate(value) {
  return value instanceof Date ? value : new Date(value);
}

/** A short relative time: "now", "5 min. ago", "yesterday", "Feb 3". */
export function ago(value, now = Date.now()) {
  const t = toDate(value).getTime();
  const seconds = Math.round((t - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  if (abs < 7 * 86400) return relative.format(Math.round(seconds / 86400), "day");
  return dayFormat.format(t);
}

/** When a call happened: "3:17 PM" today, "Feb 6, 3:17 PM" before. */
export function when(value, now = Date.now()) {
  const d = toDate(value);
  const today = new Date(now);
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? timeFormat.format(d) : `${dayFormat.format(d)}, ${timeFormat.format(d)}`;
}

export function fullTime(value) {
  return fullFormat.format(toDate(value));
}

/** Seconds as "40s", "2m 05s", "1h 02m 03s" (the call model's form). */
export function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (h > 0) return `${h}h ${pad(m)}m ${pad(r)}s`;
  if (m > 0) return `${m}m ${pad(r)}s`;
  return `${r}s`;
}

/** Twilio's price ("-0.01400", negative = a charge) as a cost: "$0.014". */
export function cost(price, unit) {
  if (price === undefined || price === null || price === "") return "—";
  const value = Math.abs(Number(price));
  if (!Number.isFinite(value)) return String(price);
  try {
    return new Intl.NumberFormat(LOCALE, {
      style: "currency",
      currency: (unit || "USD").toUpperCase(),
      minimumFractionDigits: 2,
      maximumFractionDigits: 4,
    }).format(value);
  } catch {
    return `${value} ${unit || ""}`.trim();
  }
}

const STATUS = {
  completed: ["Answered", "answered"],
  "no-answer": ["Missed", "missed"],
  busy: ["Busy", "missed"],
  failed: ["Failed", "missed"],
  canceled: ["Canceled", "missed"],
  queued: ["Queued", "live"],
  initiated: ["Dialing", "live"],
  ringing: ["Ringing", "live"],
  "in-progress": ["In progress", "live"],
};

/** A display status as [label, group] with group answered | missed | live | other. */
export function status(displayStatus) {
  return STATUS[displayStatus] || [displayStatus ? displayStatus[0].toUpperCase() + displayStatus.slice(1) : "Unknown", "other"];
}

/** A leg's own outcome, from Twilio's status and its duration. */
export function legStatus(call) {
  if (call.status === "completed" && call.duration > 0) return ["Answered", "answered"];
  if (call.status === "completed") return ["Not answered", "missed"];
  return status(call.status);
}

const DIRECTION = {
  inbound: "Incoming",
  outbound: "Outgoing",
  internal: "Internal",
};

export function direction(actual) {
  return DIRECTION[actual] || "Call";
}

const ICONS = {
  inbound: "M19 6.4 17.6 5 7 15.6V9H5v10h10v-2H8.4z",
  outbound: "M5 17.6 6.4 19 17 8.4V15h2V5H9v2h6.6z",
  internal: "M7 7h10l-3-3 1.4-1.4L20.8 8l-5.4 5.4L14 12l3-3H7zm10 10H7l3 3-1.4 1.4L3.2 16l5.4-5.4L10 12l-3 3h10z",
};

/** An SVG element for a direction (decorative: aria-hidden). */
export function directionIcon(actual) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[actual] || ICONS.inbound);
  svg.append(path);
  return svg;
}

/** Seconds as `m:ss` (a position in a recording). */
export function clock(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const m = Math.floor(total / 60);
  const s = String(total % 60).padStart(2, "0");
  return `${m}:${s}`;
}

const TEXT_STATUS = {
  accepted: ["Queued", "pending"],
  scheduled: ["Scheduled", "pending"],
  queued: ["Queued", "pending"],
  sending: ["Sending", "pending"],
  sent: ["Sent", "sent"],
  delivered: ["Delivered", "delivered"],
  read: ["Read", "delivered"],
  undelivered: ["Not delivered", "failed"],
  failed: ["Failed", "failed"],
  canceled: ["Canceled", "failed"],
  receiving: ["Receiving", "pending"],
  received: ["Received", "received"],
};

/**
 * A text's Twilio status as [label, group] with group
 * pending | sent | delivered | failed | received | other.
 */
export function textStatus(value) {
  return TEXT_STATUS[value] || [value ? value[0].toUpperCase() + value.slice(1) : "Unknown", "other"];
}

const TEXT_DIRECTION = {
  inbound: "Incoming text",
  outbound: "Outgoing text",
  internal: "Internal text",
};

/** "Incoming text", "Outgoing text", "Internal text". */
export function textDirection(actual) {
  return TEXT_DIRECTION[actual] || "Text";
}

// The GSM 03.38 alphabet (and its extension, two septets each): texts in it
// take 160 characters a segment (153 when split), others 70 (67).
const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED = "^{}\\[~]|€\f";

/** Characters (code points) and SMS segments of a text's body. */
export function textLength(body) {
  const chars = [...body];
  let septets = 0;
  let gsm = true;
  for (const c of chars) {
    if (GSM.includes(c)) septets += 1;
    else if (GSM_EXTENDED.includes(c)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  const units = gsm ? septets : [...body].reduce((n, c) => n + (c.codePointAt(0) > 0xffff ? 2 : 1), 0);
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  return { chars: chars.length, segments };
}

const CHAT_ICON = "M6 4h12a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H9l-5 4V6a2 2 0 0 1 2-2zm2 6v2h2v-2zm3 0v2h2v-2zm3 0v2h2v-2z";

/** An SVG speech bubble (decorative: aria-hidden). */
export function textIcon() {
  const svg = directionIcon("inbound");
  const path = svg.querySelector("path");
  path.setAttribute("d", CHAT_ICON);
  path.setAttribute("fill-rule", "evenodd");
  return svg;
}
