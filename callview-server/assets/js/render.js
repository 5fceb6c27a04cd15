// Building the DOM for conversations and calls. Everything is created with
// DOM methods and textContent: no HTML strings, so no value from the API is
// ever parsed as markup.

import * as fmt from "./format.js";
import { url as apiUrl } from "./api.js";

/** `el("p", {class: "x", text: "hi"}, child, ...)`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function timeElement(value, className) {
  const d = fmt.toDate(value);
  return el("time", {
    class: className,
    datetime: d.toISOString(),
    title: fmt.fullTime(d),
    "data-relative": "true",
    text: fmt.ago(d),
  });
}

/** "edited by NAME, 5 min. ago" (or "edited 5 min. ago" without a name), for annotations. */
export function editedLine(meta) {
  if (!meta || !meta.edited_at) return null;
  const by = meta.edited_by ? `edited by ${meta.edited_by}, ` : "edited ";
  return el("p", { class: "edited-by" }, by, timeElement(meta.edited_at, "edited-at"));
}

/** Re-renders every relative time on the page. */
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const t of root.querySelectorAll("time[data-relative]")) {
    t.textContent = fmt.ago(t.getAttribute("datetime"), now);
  }
}

function badge(actualDirection, displayStatus) {
  const [, group] = fmt.status(displayStatus);
  return el(
    "span",
    { class: "dir-badge", dataset: { direction: actualDirection || "inbound", status: group } },
    fmt.directionIcon(actualDirection),
  );
}

/** The name and number of a conversation's contact. */
export function names(conversation) {
  const contact = conversation.contact || {};
  const formatted = (contact.metadata && contact.metadata.formatted_number) || conversation.external_id;
  const name = contact.name || formatted;
  return { name, number: name === formatted ? "" : formatted };
}

/** Whether a message of a thread (or a list's `last_message`) is a text. */
export function isText(message) {
  return Boolean(message) && (message.type === "sms" || message.type === "mms");
}

/** "3 calls, 2 texts" (texts only when there are some). */
export function countsLabel(meta) {
  const calls = meta.total_calls || 0;
  const texts = meta.total_messages || 0;
  const parts = [`${fmt.count(calls)} ${calls === 1 ? "call" : "calls"}`];
  if (texts) parts.push(`${fmt.count(texts)} ${texts === 1 ? "text" : "texts"}`);
  return parts.join(", ");
}

/** One row of the conversation list: a link selecting the conversation. */
export function conversationRow(conversation, href, selected) {
  const last = conversation.last_message;
  if (isText(last)) return textRow(conversation, href, selected);
  const meta = (last && last.metadata) || {};
  const actual = meta.actual_direction || conversation.metadata.last_call_direction || "inbound";
  const displayStatus = meta.display_status || "";
  const [statusLabel, group] = fmt.status(displayStatus);
  const { name, number } = names(conversation);
  const sub = el(
    "span",
    { class: "conv-sub" },
    el("span", { class: "status-word", dataset: { status: group }, text: statusLabel }),
    ` · ${fmt.direction(actual)}`,
    number ? ` · ${number}` : "",
  );
  const link = el(
    "a",
    {
      class: "conv",
      href,
      "aria-current": selected ? "true" : null,
      "aria-label": `${name}, ${fmt.direction(actual).toLowerCase()} call, ${statusLabel.toLowerCase()}, ${fmt.ago(conversation.last_message_at)}, ${countsLabel(conversation.metadata)}`,
      dataset: {
        conversationId: conversation.id,
        type: "call",
        status: displayStatus,
        group,
        direction: actual,
        updated: String(conversation.updated_at),
      },
    },
    badge(actual, displayStatus),
    el("span", { class: "conv-main" }, el("span", { class: "conv-name", text: name }), sub),
    conversationMeta(conversation),
  );
  return el("li", {}, link);
}

/** The time of the newest message and how many there are. */
function conversationMeta(conversation) {
  const meta = conversation.metadata;
  const total = (meta.total_calls || 0) + (meta.total_messages || 0);
  return el(
    "span",
    { class: "conv-meta" },
    timeElement(conversation.last_message_at),
    el("span", { class: "count", title: countsLabel(meta), text: fmt.count(total) }),
  );
}

/** A row whose newest message is a text: its first words instead of a call's outcome. */
function textRow(conversation, href, selected) {
  const last = conversation.last_message;
  const meta = last.metadata || {};
  const actual = meta.actual_direction || "inbound";
  const [statusLabel, textGroup] = fmt.textStatus(meta.status);
  const failed = textGroup === "failed";
  const group = failed ? "missed" : "text";
  const { name, number } = names(conversation);
  const marker = last.type === "mms" ? "🖼️" : "💬";
  const sub = el(
    "span",
    { class: "conv-sub" },
    el("span", { class: "marker", "aria-hidden": "true", text: `${marker} ` }),
    actual === "inbound" ? "" : el("span", { class: "you", text: "You: " }),
    failed ? el("span", { class: "status-word", dataset: { status: "missed" }, text: `${statusLabel} · ` }) : "",
    el("span", { class: "blurb", text: last.blurb || "" }),
    number ? ` · ${number}` : "",
  );
  const kind = last.type === "mms" ? "picture message" : "text";
  const link = el(
    "a",
    {
      class: "conv",
      href,
      "aria-current": selected ? "true" : null,
      "aria-label": `${name}, ${actual === "inbound" ? "incoming" : actual === "internal" ? "internal" : "outgoing"} ${kind}${failed ? `, ${statusLabel.toLowerCase()}` : ""}: ${last.blurb || ""}, ${fmt.ago(conversation.last_message_at)}, ${countsLabel(conversation.metadata)}`,
      dataset: {
        conversationId: conversation.id,
        type: last.type,
        status: meta.status || "",
        group,
        direction: actual,
        updated: String(conversation.updated_at),
      },
    },
    el(
      "span",
      { class: "dir-badge", dataset: { direction: actual, status: group, kind: "text" } },
      fmt.textIcon(),
    ),
    el("span", { class: "conv-main" }, el("span", { class: "conv-name", text: name }), sub),
    conversationMeta(conversation),
  );
  return el("li", {}, link);
}

export function skeletonRows(n) {
  const rows = [];
  for (let i = 0; i < n; i++) {
    rows.push(
      el(
        "li",
        { class: "skeleton", "aria-hidden": "true" },
        el(
          "div",
          { class: "skeleton-row shimmer" },
          el("span", { class: "bone round" }),
          el("span", {}, el("span", { class: "bone wide", style: null }), el("span", { class: "bone narrow" })),
          el("span", { class: "bone" }),
        ),
      ),
    );
  }
  return rows;
}

function endpoint(raw) {
  if (!raw) return "(unknown)";
  return raw;
}

function copyButton(sid) {
  const button = el("button", { type: "button", class: "copy", "aria-label": `Copy call SID ${sid}`, text: "Copy" });
  button.addEventListener("click", async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(sid);
      ok = true;
    } catch {
      // No clipboard access (plain HTTP on another host): select the text instead.
      const code = button.previousElementSibling;
      const range = document.createRange();
      range.selectNodeContents(code);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    button.dataset.copied = ok ? "true" : "false";
    button.textContent = ok ? "Copied" : "Selected";
    setTimeout(() => {
      button.dataset.copied = "false";
      button.textContent = "Copy";
    }, 1600);
  });
  return button;
}

function legItem(leg) {
  const [label, group] = fmt.legStatus(leg);
  const detail = [];
  if (leg.duration > 0) detail.push(fmt.duration(leg.duration));
  detail.push(fmt.when(leg.start_time));
  return el(
    "li",
    { class: "leg", dataset: { sid: leg.sid, status: leg.status } },
    el("span", { class: "leg-target", text: `→ ${endpoint(leg.to)}` }),
    el("span", { class: "status-badge", dataset: { status: group }, text: label }),
    el("span", { class: "leg-detail", text: detail.join(" · ") }),
    leg.notes ? el("p", { class: "call-notes leg-notes", text: leg.notes }) : null,
    tagChips(leg.tags, "Tags of this leg"),
  );
}

/** Tags as chips; each is a button that filters the list by its tag. */
export function tagChips(tags, label) {
  if (!tags || tags.length === 0) return null;
  return el(
    "ul",
    { class: "tags", "aria-label": label },
    tags.map((tag) =>
      el(
        "li",
        {},
        el("button", { type: "button", class: "tag", dataset: { tag }, title: `Show conversations tagged ${tag}`, text: tag }),
      ),
    ),
  );
}

/** One card per interaction (a root call with its legs folded in). */
export function callCard(message) {
  const meta = message.metadata;
  const call = message.call;
  const actual = meta.actual_direction;
  const [statusLabel, group] = fmt.status(meta.display_status);
  const title = `${fmt.direction(actual)} call`;
  const legs = meta.legs || [];
  // A running call has no duration yet.
  const running = group === "live" && !meta.total_duration;
  const seconds = (value) => (running ? "—" : fmt.duration(value));
  const figures = el(
    "dl",
    { class: "figures" },
    el("div", {}, el("dt", { text: "Total" }), el("dd", { text: seconds(meta.total_duration) })),
    el("div", {}, el("dt", { text: "Talk" }), el("dd", { text: seconds(meta.talk_time) })),
    el("div", {}, el("dt", { text: "Wait" }), el("dd", { text: seconds(meta.wait_time) })),
    el("div", {}, el("dt", { text: "Cost" }), el("dd", { text: fmt.cost(meta.price, meta.price_unit) })),
  );
  const parties = el(
    "p",
    { class: "parties" },
    "From ",
    el("strong", { text: endpoint(meta.from_number) }),
    " to ",
    el("strong", { text: endpoint(meta.to_number) }),
    meta.answered_by ? ` · answered by ${meta.answered_by}` : "",
  );
  const legList = legs.length
    ? [
        el("p", { class: "legs-title", text: legs.length === 1 ? "1 leg" : `${legs.length} legs` }),
        el("ul", { class: "legs", "aria-label": "Forwarded and transferred legs" }, legs.map(legItem)),
      ]
    : [];
  const foot = el(
    "div",
    { class: "call-foot" },
    el("span", { class: "sid" }, "SID ", el("code", { text: call.sid }), copyButton(call.sid)),
  );
  const recordings = (meta.recordings || []).map((r) => recordingBlock(r, title));
  const notes = meta.notes ? el("p", { class: "call-notes", text: meta.notes }) : null;
  const annotations = el(
    "div",
    { class: "call-annotations" },
    notes,
    tagChips(meta.tags, "Tags of this call"),
    editedLine(meta),
    meta.no_longer_followed ? el("p", { class: "unfollowed", text: "No longer updated from Twilio: this is the last known state." }) : null,
    el("button", {
      type: "button",
      class: "link-button edit-call",
      dataset: { messageId: message.id },
      text: meta.notes || (meta.tags && meta.tags.length) ? "Edit note and tags" : "Add a note or tags",
    }),
  );
  return el(
    "li",
    {},
    el(
      "article",
      {
        class: "call",
        "aria-label": `${title}, ${statusLabel.toLowerCase()}, ${fmt.fullTime(call.start_time)}`,
        dataset: { sid: call.sid, status: meta.display_status, group, legs: String(legs.length) },
      },
      el(
        "div",
        { class: "call-top" },
        badge(actual, meta.display_status),
        el("span", { class: "call-title", text: title }),
        el("span", { class: "status-badge", dataset: { status: group }, text: statusLabel }),
        el(
          "span",
          { class: "call-time" },
          el("time", { datetime: fmt.toDate(call.start_time).toISOString(), title: fmt.fullTime(call.start_time), text: fmt.when(call.start_time) }),
        ),
      ),
      figures,
      parties,
      legList,
      recordings.length ? el("div", { class: "recordings" }, recordings) : null,
      annotations,
      foot,
    ),
  );
}

/**
 * A text message as a chat bubble: inbound on the left, outbound on the
 * right (internal ones too, styled apart). The body is set as text, its
 * line breaks kept by CSS.
 */
export function textBubble(message) {
  const meta = message.metadata || {};
  const actual = meta.actual_direction || (message.direction === "inbound" ? "inbound" : "outbound");
  const [statusLabel, group] = fmt.textStatus(meta.status);
  const at = fmt.toDate(message.created_at);
  const media = meta.media || [];
  const who = actual === "inbound" ? `from ${meta.from_number || "the contact"}` : `to ${meta.to_number || "the contact"}`;
  const pictures = media.length
    ? el(
        "div",
        { class: "bubble-media" },
        media.map((m, i) => mediaItem(m, i, media.length, who)),
      )
    : null;
  const details = [
    el("time", { datetime: at.toISOString(), title: fmt.fullTime(at), text: fmt.when(at) }),
    " · ",
    el("span", { class: "text-status", dataset: { status: group }, text: statusLabel }),
  ];
  if (meta.price !== undefined && meta.price !== null && meta.price !== "") {
    details.push(" · ", el("span", { class: "text-price", title: "Cost", text: fmt.cost(meta.price, meta.price_unit) }));
  }
  if (meta.num_segments > 1) details.push(` · ${meta.num_segments} segments`);
  let problem = null;
  if (group === "failed" || meta.error_code) {
    const reason = meta.error_message || (meta.error_code ? `Twilio error ${meta.error_code}` : "");
    const code = meta.error_code && meta.error_message ? ` (error ${meta.error_code})` : "";
    problem = el("p", { class: "bubble-error", text: reason ? `${reason}${code}` : `${statusLabel}.` });
  }
  const kind = message.type === "mms" ? "picture message" : "text";
  return el(
    "li",
    { class: "text-item", dataset: { direction: actual } },
    el(
      "article",
      {
        class: "bubble",
        "aria-label": `${fmt.textDirection(actual).replace(/text$/, kind)}, ${statusLabel.toLowerCase()}, ${fmt.fullTime(at)}`,
        dataset: { sid: message.external_id, status: meta.status || "", group, direction: actual, type: message.type },
      },
      message.body ? el("p", { class: "bubble-body", text: message.body }) : null,
      pictures,
      el("p", { class: "bubble-meta" }, details),
      problem,
    ),
  );
}

/** One picture of an MMS: lazy, sized by CSS, opening full size in a new tab. */
function mediaItem(media, index, count, who) {
  // A path from the server's root: resolve it against where the API is.
  const src = apiUrl(String(media.url || "").replace(/^\//, "")).href;
  const image = (media.content_type || "image/").startsWith("image/");
  const label = `${image ? "Picture" : "Attachment"}${count > 1 ? ` ${index + 1} of ${count}` : ""} ${who}`;
  if (!image) {
    return el("a", { class: "media-file", href: src, target: "_blank", rel: "noopener", text: `${label} (${media.content_type})` });
  }
  const img = el("img", { src, alt: label, loading: "lazy", decoding: "async", dataset: { sid: media.sid } });
  // A media cookie that expired: get a new one and try once more.
  let retried = false;
  img.addEventListener("error", () => {
    img.dataset.failed = "true";
    if (retried) return;
    retried = true;
    document.dispatchEvent(new CustomEvent("callview:media-session"));
  });
  img.addEventListener("load", () => {
    delete img.dataset.failed;
  });
  return el("a", { class: "media-link", href: src, target: "_blank", rel: "noopener", title: `${label}: open full size in a new tab` }, img);
}

const SPEEDS = [0.75, 1, 1.25, 1.5, 2];

/** The transcript worth showing: Voice Intelligence (sentences) first, then legacy text. */
function shownTranscript(recording) {
  const done = (recording.transcripts || []).filter((t) => t.status === "completed" && t.text);
  return done.find((t) => t.sentences && t.sentences.length) || done[0] || null;
}

/** A recording: player (play/pause, seek, speed, download) and its transcript. */
export function recordingBlock(recording, title) {
  const length = recording.duration ? ` · ${fmt.duration(recording.duration)}` : "";
  const label = el("p", { class: "recording-title", text: `Recording${length}` });
  if (!recording.url) {
    return el(
      "section",
      { class: "recording", dataset: { sid: recording.sid, status: recording.status } },
      label,
      el("p", { class: "recording-note", text: "Deleted at Twilio: it can no longer be played." }),
    );
  }
  if (recording.status !== "completed") {
    return el(
      "section",
      { class: "recording", dataset: { sid: recording.sid, status: recording.status } },
      label,
      el("p", { class: "recording-note", text: "Twilio is still processing this recording." }),
    );
  }
  // The API gives a path from the server's root; the viewer may be served
  // under a prefix, so resolve it against where the API is.
  const src = apiUrl(recording.url.replace(/^\//, "")).href;
  const audio = el("audio", {
    controls: true,
    preload: "metadata",
    src,
    "aria-label": `Recording of the ${title.toLowerCase()}`,
  });
  // A media cookie that expired (or a token changed in another tab): get a
  // new one and try once more.
  let retried = false;
  audio.addEventListener("error", async () => {
    if (retried) return;
    retried = true;
    document.dispatchEvent(new CustomEvent("callview:media-session"));
  });
  const speed = el(
    "select",
    { class: "speed", "aria-label": "Playback speed" },
    SPEEDS.map((v) => el("option", { value: String(v), selected: v === 1, text: `${v}×` })),
  );
  speed.addEventListener("change", () => {
    audio.playbackRate = Number(speed.value);
  });
  const download = el("a", { class: "download", href: src, download: `${recording.sid}.mp3`, text: "Download" });
  const transcript = shownTranscript(recording);
  let text = null;
  if (transcript && transcript.sentences && transcript.sentences.length) {
    text = el(
      "ol",
      { class: "transcript", "aria-label": "Transcript" },
      transcript.sentences.map((s) => {
        const button = el(
          "button",
          { type: "button", class: "sentence", dataset: { start: String(s.start) }, title: `Play from ${fmt.duration(Math.floor(s.start))}` },
          el("span", { class: "speaker", dataset: { channel: String(s.channel) }, text: `Speaker ${s.channel + 1}` }),
          el("span", { class: "at", text: fmt.clock(s.start) }),
          el("span", { class: "said", text: s.text }),
        );
        button.addEventListener("click", () => {
          audio.currentTime = s.start;
          audio.play().catch(() => {});
        });
        return el("li", {}, button);
      }),
    );
    // The sentence being said is marked as the audio plays.
    const buttons = [...text.querySelectorAll(".sentence")];
    audio.addEventListener("timeupdate", () => {
      const now = audio.currentTime;
      transcript.sentences.forEach((s, i) => {
        const on = now >= s.start && now < Math.max(s.end, s.start + 0.1);
        if (on) buttons[i].setAttribute("aria-current", "true");
        else buttons[i].removeAttribute("aria-current");
      });
    });
  } else if (transcript) {
    text = el("blockquote", { class: "transcript legacy", text: transcript.text });
  }
  return el(
    "section",
    { class: "recording", dataset: { sid: recording.sid, status: recording.status } },
    label,
    el("div", { class: "player" }, audio, speed, download),
    text,
  );
}

export function skeletonCards(n) {
  const cards = [];
  for (let i = 0; i < n; i++) {
    cards.push(el("li", { "aria-hidden": "true" }, el("div", { class: "call skeleton-card shimmer" })));
  }
  return cards;
}
