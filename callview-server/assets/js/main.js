// Call Viewer: the conversation list on the left, the selected
// conversation's calls on the right, kept current by the server's events.
//
// What is shown is in the address's fragment, so reloads, links and the
// Back button keep it: #c=<conversation id>&q=&status=&direction=&since=&until=
// (since/until are dates, YYYY-MM-DD, in the browser's time zone), or
// #view=dashboard&... for the dashboard (dashboard.js reads the rest).

import { ApiError, adoptTokenFromAddress, request, setToken, token } from "./api.js";
import { connect, health } from "./live.js";
import * as fmt from "./format.js";
import { callCard, conversationRow, editedLine, el, isText, names, refreshTimes, skeletonCards, skeletonRows, tagChips, textBubble } from "./render.js";
import { dashboardEvent, dashboardHash, hideDashboard, initDashboard, showDashboard } from "./dashboard.js";

const PAGE = 50;
const THREAD_PAGE = 50;
const MAX_LIMIT = 200;
/** The largest page of a conversation's calls the API serves. */
const MAX_MESSAGES = 500;
const SEARCH_DELAY_MS = 250;
const HEALTH_EVERY_MS = 30000;
const PROGRESS_REFRESH_MS = 3000;
const MEDIA_SESSION_RENEW_MS = 6 * 60 * 60 * 1000;
const FILTER_KEYS = ["q", "status", "direction", "type", "since", "until", "tag", "recorded"];
const EMPTY_FILTERS = { q: "", status: "", direction: "", type: "", since: "", until: "", tag: "", recorded: "" };
/** The longest text Twilio sends (characters). */
const MAX_TEXT_CHARS = 1600;

const $ = (id) => document.getElementById(id);
const ui = {
  layout: $("layout"),
  filters: $("filters"),
  search: $("search"),
  direction: $("direction"),
  kind: $("kind"),
  since: $("since"),
  until: $("until"),
  recorded: $("recorded"),
  clear: $("clear-filters"),
  tagFilter: $("tag-filter"),
  count: $("list-count"),
  scroll: $("list-scroll"),
  list: $("conversation-list"),
  end: $("list-end"),
  loadMore: $("load-more"),
  thread: $("thread"),
  threadEmpty: $("thread-empty"),
  threadContent: $("thread-content"),
  connection: $("connection"),
  lastSync: $("last-sync"),
  syncNow: $("sync-now"),
  notice: $("notice"),
  whoami: $("whoami"),
  whoamiName: $("whoami-name"),
  whoamiRole: $("whoami-role"),
  signOut: $("sign-out"),
  tokenForm: $("token-form"),
  tokenInput: $("token-input"),
  announcer: $("announcer"),
  navConversations: $("nav-conversations"),
  navDashboard: $("nav-dashboard"),
};

const state = {
  view: "conversations",
  filters: { ...EMPTY_FILTERS },
  me: { canSendTexts: false, role: null },
  composer: null,
  drafts: new Map(),
  selected: null,
  list: { items: [], total: 0, loading: false, generation: 0, abort: null, error: null },
  thread: { id: null, conversation: null, messages: [], total: 0, nextCursor: null, abort: null, generation: 0, editing: false, stale: false },
  sync: { running: false, lastSuccessAt: null, lastError: null },
  connection: "connecting",
  refreshing: false,
  refreshAgain: false,
  lastProgressRefresh: 0,
  live: null,
};

// ------------------------------------------------------------ address

function readAddress() {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  // The dashboard's part of the address is its own: the conversations
  // keep their filters and selection while it is shown.
  const view = params.get("view") === "dashboard" ? "dashboard" : "conversations";
  const filters = {};
  for (const key of FILTER_KEYS) filters[key] = view === "conversations" ? (params.get(key) || "").trim() : "";
  const c = view === "conversations" ? params.get("c") : null;
  return { view, params, filters, selected: c && /^\d+$/.test(c) ? c : null };
}

function hashFor(selected, filters = state.filters) {
  const params = new URLSearchParams();
  if (selected) params.set("c", selected);
  for (const key of FILTER_KEYS) if (filters[key]) params.set(key, filters[key]);
  const text = params.toString();
  return text ? `#${text}` : "#";
}

/** The top bar's links lead back to what each view showed last. */
function updateNav() {
  ui.navConversations.setAttribute("href", hashFor(state.selected));
  ui.navDashboard.setAttribute("href", dashboardHash());
}

/** Shows the conversations or the dashboard. */
function showView(view) {
  state.view = view;
  const dashboard = view === "dashboard";
  document.body.dataset.view = view;
  ui.layout.hidden = dashboard;
  if (dashboard) ui.navDashboard.setAttribute("aria-current", "page");
  else ui.navDashboard.removeAttribute("aria-current");
  if (dashboard) ui.navConversations.removeAttribute("aria-current");
  else ui.navConversations.setAttribute("aria-current", "page");
  document.title = dashboard ? "Dashboard · Call Viewer" : "Call Viewer";
  if (!dashboard) hideDashboard();
}

function writeAddress({ push = false } = {}) {
  updateNav();
  const hash = hashFor(state.selected);
  if (hash === (window.location.hash || "#")) return;
  const target = window.location.pathname + window.location.search + hash;
  if (push) window.history.pushState(null, "", target);
  else window.history.replaceState(null, "", target);
}

function sameFilters(a, b) {
  return FILTER_KEYS.every((k) => (a[k] || "") === (b[k] || ""));
}

// ------------------------------------------------------------ notices

function showNotice(message, kind = "error") {
  ui.notice.textContent = message;
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = false;
  clearTimeout(showNotice.timer);
  showNotice.timer = setTimeout(() => {
    ui.notice.hidden = true;
  }, kind === "error" ? 10000 : 5000);
}

function announce(text) {
  ui.announcer.textContent = "";
  window.setTimeout(() => {
    ui.announcer.textContent = text;
  }, 50);
}

function needToken(rejected) {
  document.body.classList.add("needs-token");
  ui.tokenForm.hidden = false;
  if (rejected) showNotice("The access token was not accepted. Enter the server's token.");
  ui.tokenInput.focus();
}

/** Handles an API failure; returns true when it was shown. */
function failed(error, what) {
  if (error && error.name === "AbortError") return true;
  if (error instanceof ApiError && error.status === 401) {
    needToken(Boolean(token()));
    return true;
  }
  const message = error instanceof ApiError ? error.message : String(error);
  showNotice(`${what}: ${message}`);
  return false;
}

// ------------------------------------------------------------ query

function dayStart(text, plusDays = 0) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
  if (!m) return undefined;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plusDays).getTime();
}

function apiFilters() {
  const f = state.filters;
  return {
    q: f.q,
    status: f.status,
    direction: f.direction,
    type: f.type,
    since: dayStart(f.since),
    until: dayStart(f.until, 1),
    tag: f.tag,
    has_recording: f.recorded ? "true" : undefined,
  };
}

function hasFilters() {
  return FILTER_KEYS.some((k) => state.filters[k]);
}

function describeCount(total) {
  const n = fmt.count(total);
  const noun = total === 1 ? "conversation" : "conversations";
  const status = { missed: "with a missed last call", answered: "with an answered last call", "in-progress": "with a live call" }[state.filters.status];
  if (status) return `${n} ${noun} ${status}`;
  const kind = { call: "with calls", sms: "with texts" }[state.filters.type];
  if (kind && FILTER_KEYS.every((k) => k === "type" || !state.filters[k])) return `${n} ${noun} ${kind}`;
  if (state.filters.tag && FILTER_KEYS.every((k) => k === "tag" || !state.filters[k])) return `${n} ${noun} tagged ${state.filters.tag}`;
  return hasFilters() ? `${n} matching ${noun}` : `${n} ${noun}`;
}

// ------------------------------------------------------------ list

function rowHref(id) {
  return hashFor(id);
}

function renderList({ flash = new Set() } = {}) {
  const { items, total } = state.list;
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest(".conv");
  const focusedId = focused ? focused.dataset.conversationId : null;
  const rows = items.map((c) => conversationRow(c, rowHref(c.id), c.id === state.selected));
  if (rows.length === 0) {
    const text = hasFilters() ? "No conversation matches these filters." : state.sync.running ? "Nothing yet: the first sync is running…" : "No calls or texts stored yet.";
    rows.push(el("li", { class: "empty" }, text));
  }
  ui.list.replaceChildren(...rows);
  for (const id of flash) {
    const link = ui.list.querySelector(`.conv[data-conversation-id="${id}"]`);
    if (link) link.classList.add("flash");
  }
  if (focusedId) {
    const again = ui.list.querySelector(`.conv[data-conversation-id="${focusedId}"]`);
    if (again) again.focus({ preventScroll: true });
  }
  ui.list.setAttribute("aria-busy", "false");
  ui.count.textContent = describeCount(total);
  ui.clear.hidden = !hasFilters();
  ui.loadMore.hidden = items.length >= total;
}

async function loadList() {
  const list = state.list;
  list.generation += 1;
  const generation = list.generation;
  if (list.abort) list.abort.abort();
  list.abort = new AbortController();
  list.loading = true;
  ui.list.setAttribute("aria-busy", "true");
  ui.list.replaceChildren(...skeletonRows(8));
  ui.count.textContent = "Loading…";
  ui.loadMore.hidden = true;
  try {
    const page = await request("api/conversations", {
      params: { limit: PAGE, offset: 0, ...apiFilters() },
      signal: list.abort.signal,
    });
    if (generation !== list.generation) return;
    list.items = page.conversations;
    list.total = page.total;
    ui.scroll.scrollTop = 0;
    renderList();
  } catch (error) {
    if (generation !== list.generation) return;
    if (!failed(error, "Loading conversations")) {
      ui.list.replaceChildren(el("li", { class: "empty" }, "The conversations could not be loaded."));
    }
    ui.count.textContent = "";
    ui.list.setAttribute("aria-busy", "false");
  } finally {
    if (generation === list.generation) list.loading = false;
  }
}

async function loadMore() {
  const list = state.list;
  if (list.loading || list.items.length >= list.total) return;
  const generation = list.generation;
  list.loading = true;
  ui.loadMore.disabled = true;
  try {
    const page = await request("api/conversations", {
      params: { limit: PAGE, offset: list.items.length, ...apiFilters() },
    });
    if (generation !== list.generation) return;
    const known = new Set(list.items.map((c) => c.id));
    const fresh = page.conversations.filter((c) => !known.has(c.id));
    list.items = list.items.concat(fresh);
    list.total = page.total;
    const start = ui.list.querySelector(".empty");
    if (start) start.remove();
    ui.list.append(...fresh.map((c) => conversationRow(c, rowHref(c.id), c.id === state.selected)));
    ui.count.textContent = describeCount(list.total);
    ui.loadMore.hidden = list.items.length >= list.total;
  } catch (error) {
    failed(error, "Loading more conversations");
  } finally {
    if (generation === list.generation) list.loading = false;
    ui.loadMore.disabled = false;
  }
}

/** Reloads what the list shows (as many rows as are loaded) without resetting it. */
async function refreshList() {
  const list = state.list;
  if (list.loading) return;
  const generation = list.generation;
  const want = Math.max(PAGE, list.items.length);
  const items = [];
  let total = 0;
  for (let offset = 0; offset < want; offset += MAX_LIMIT) {
    const page = await request("api/conversations", {
      params: { limit: Math.min(MAX_LIMIT, want - offset), offset, ...apiFilters() },
    });
    if (generation !== list.generation) return;
    items.push(...page.conversations);
    total = page.total;
    if (page.conversations.length === 0) break;
  }
  const before = new Map(list.items.map((c) => [c.id, c.updated_at]));
  const flash = new Set(items.filter((c) => before.get(c.id) !== c.updated_at).map((c) => c.id));
  const scroll = ui.scroll.scrollTop;
  list.items = items;
  list.total = total;
  renderList({ flash: before.size ? flash : new Set() });
  ui.scroll.scrollTop = scroll;
}

// ------------------------------------------------------------ thread

function threadHeader(conversation) {
  const { name, number } = names(conversation);
  const contact = conversation.contact || {};
  const meta = conversation.metadata;
  const contactMeta = contact.metadata || {};
  const details = [number, contact.metadata && contact.metadata.country_code, contact.metadata && contact.metadata.is_mobile === true ? "mobile" : null]
    .filter(Boolean)
    .join(" · ");
  return el(
    "header",
    { class: "thread-header" },
    el("a", { class: "button back-link", href: hashFor(null), "aria-label": "Back to the conversation list", text: "← Back" }),
    el(
      "div",
      { class: "thread-title" },
      el("h2", { id: "thread-title", text: name }),
      el("p", { text: details || contact.handle || "" }),
      contactMeta.company_name ? el("p", { class: "company", text: contactMeta.company_name }) : null,
      contactMeta.notes ? el("p", { class: "contact-notes", text: contactMeta.notes }) : null,
      tagChips(contactMeta.tags, "Tags of this contact"),
      editedLine(contactMeta),
      el("button", { type: "button", class: "link-button", id: "edit-contact", text: "Edit contact" }),
    ),
    el(
      "div",
      { class: "thread-stats" },
      el("span", { class: "stat" }, el("strong", { text: fmt.count(meta.total_calls) }), meta.total_calls === 1 ? "call" : "calls"),
      meta.total_messages ? el("span", { class: "stat" }, el("strong", { text: fmt.count(meta.total_messages) }), meta.total_messages === 1 ? "text" : "texts") : null,
      el("span", { class: "stat" }, el("strong", { text: fmt.duration(meta.total_duration) }), "total time"),
    ),
  );
}

function renderThread({ flash = new Set() } = {}) {
  const t = state.thread;
  const texts = Boolean(t.conversation.metadata.total_messages) || t.messages.some(isText);
  const cards = t.messages.map((m) => (isText(m) ? textBubble(m) : callCard(m)));
  const list = el("ol", { class: "calls", "aria-label": texts ? "Calls and texts, newest first" : "Calls, newest first" }, cards);
  for (const sid of flash) {
    const card = list.querySelector(`.call[data-sid="${sid}"], .bubble[data-sid="${sid}"]`);
    if (card) card.classList.add("flash");
  }
  const older = `Show older ${texts ? "messages" : "calls"} (${fmt.count(t.total - t.messages.length)})`;
  const more =
    t.nextCursor
      ? el("div", { class: "more-calls" }, el("button", { type: "button", class: "button", id: "older-calls", disabled: t.editing, text: older }))
      : null;
  if (more) more.querySelector("button").addEventListener("click", loadOlderCalls);
  const header = threadHeader(t.conversation);
  const composer = composerFor(t);
  if (composer && composer.parentNode === ui.threadContent) {
    // The reply box stays in place (with what is typed in it and the
    // keyboard focus); everything around it is rebuilt.
    for (const child of [...ui.threadContent.children]) if (child !== composer) child.remove();
    composer.before(header);
    composer.after(list, more || "");
  } else {
    ui.threadContent.replaceChildren(header, composer || "", list, more || "");
  }
  ui.threadContent.dataset.conversationId = t.id;
  ui.threadContent.hidden = false;
  ui.threadEmpty.hidden = true;
  ui.thread.setAttribute("aria-labelledby", "thread-title");
}

function showThreadPlaceholder(title, text) {
  ui.threadContent.hidden = true;
  ui.threadContent.replaceChildren();
  delete ui.threadContent.dataset.conversationId;
  ui.threadEmpty.hidden = false;
  ui.threadEmpty.querySelector("h2").textContent = title;
  ui.threadEmpty.querySelector("p").textContent = text;
  ui.thread.setAttribute("aria-labelledby", "thread-heading");
}

async function fetchThread(id, limit, signal) {
  const [conversation, page] = await Promise.all([
    request(`api/conversations/${id}`, { signal }),
    request(`api/conversations/${id}/messages`, { params: { limit }, signal }),
  ]);
  return { conversation, page };
}

async function openThread(id) {
  const t = state.thread;
  if (t.abort) t.abort.abort();
  t.generation += 1;
  t.editing = false;
  t.stale = false;
  const generation = t.generation;
  if (!id) {
    t.id = null;
    showThreadPlaceholder("Select a conversation", "Its calls and texts appear here, newest first, with forwarded legs, times and recordings.");
    return;
  }
  t.abort = new AbortController();
  t.id = id;
  ui.threadEmpty.hidden = true;
  ui.threadContent.hidden = false;
  ui.threadContent.replaceChildren(
    el("div", { class: "thread-header" }, el("div", { class: "thread-title" }, el("span", { class: "bone wide shimmer" }))),
    el("ol", { class: "calls", "aria-busy": "true" }, skeletonCards(3)),
  );
  try {
    const { conversation, page } = await fetchThread(id, THREAD_PAGE, t.abort.signal);
    if (generation !== t.generation) return;
    t.conversation = conversation;
    t.messages = page.messages;
    t.total = page.total;
    t.nextCursor = page.next_cursor;
    renderThread();
    ui.thread.scrollTop = 0;
  } catch (error) {
    if (generation !== t.generation) return;
    if (error instanceof ApiError && error.status === 404) {
      showThreadPlaceholder("Conversation not found", "It no longer exists: its calls may have moved into another conversation.");
    } else if (!failed(error, "Loading the calls")) {
      showThreadPlaceholder("The calls could not be loaded", error.message || "");
    }
  }
}

async function loadOlderCalls() {
  const t = state.thread;
  // Never wipe a form someone is typing in.
  if (t.editing) return;
  const generation = t.generation;
  try {
    const page = await request(`api/conversations/${t.id}/messages`, {
      params: { limit: THREAD_PAGE, cursor: t.nextCursor },
    });
    if (generation !== t.generation) return;
    const known = new Set(t.messages.map((m) => m.external_id));
    t.messages = t.messages.concat(page.messages.filter((m) => !known.has(m.external_id)));
    t.total = page.total;
    t.nextCursor = page.next_cursor;
    const scroll = ui.thread.scrollTop;
    renderThread();
    ui.thread.scrollTop = scroll;
  } catch (error) {
    failed(error, "Loading older calls");
  }
}

function signature(message) {
  const m = message.metadata;
  if (isText(message)) return [m.status, m.price, m.error_code, m.num_media, message.body].join("|");
  return [m.display_status, m.status, m.duration, m.price, m.recording_url, m.legs.map((l) => `${l.sid}:${l.status}:${l.duration}`).join(",")].join("|");
}

async function refreshThread() {
  const t = state.thread;
  if (!t.id || !t.conversation) return;
  const generation = t.generation;
  try {
    const limit = Math.min(MAX_MESSAGES, Math.max(THREAD_PAGE, t.messages.length));
    const { conversation, page } = await fetchThread(t.id, limit);
    if (generation !== t.generation) return;
    const before = new Map(t.messages.map((m) => [m.external_id, signature(m)]));
    const flash = new Set(page.messages.filter((m) => before.get(m.external_id) !== signature(m)).map((m) => m.external_id));
    t.conversation = conversation;
    t.messages = page.messages;
    t.total = page.total;
    t.nextCursor = page.next_cursor;
    if (t.editing) {
      // Never wipe what someone is typing: shown when the form closes.
      t.stale = true;
      return;
    }
    const scroll = ui.thread.scrollTop;
    renderThread({ flash });
    ui.thread.scrollTop = scroll;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      showThreadPlaceholder("Conversation not found", "It no longer exists: its calls moved into another conversation.");
    }
  }
}

// ------------------------------------------------------------ texting

/** Whether a reply can be texted to this conversation's party. */
function canText(conversation) {
  const handle = (conversation && conversation.contact && conversation.contact.handle) || "";
  return state.me.canSendTexts && handle.startsWith("+");
}

/**
 * The reply box of the open thread (one per conversation, kept across
 * re-renders), or null when no text can be sent from here.
 */
function composerFor(t) {
  if (!canText(t.conversation)) {
    state.composer = null;
    return null;
  }
  if (state.composer && state.composer.id === t.id) return state.composer.form;
  const id = t.id;
  const { name } = names(t.conversation);
  const textarea = el("textarea", {
    id: "reply-body",
    name: "body",
    rows: 3,
    maxlength: MAX_TEXT_CHARS,
    placeholder: `Text ${name}`,
    "aria-describedby": "reply-count reply-hint",
    "aria-keyshortcuts": "Control+Enter Meta+Enter",
    autocomplete: "off",
  });
  textarea.value = state.drafts.get(id) || "";
  const counter = el("span", { class: "char-count", id: "reply-count" });
  const send = el("button", { type: "submit", class: "button primary", id: "reply-send", text: "Send" });
  const error = el("p", { class: "form-error composer-error", id: "reply-error", role: "alert", hidden: true });
  const form = el(
    "form",
    { class: "composer", id: "composer", "aria-label": `Reply to ${name} by text`, dataset: { conversationId: id } },
    el("label", { for: "reply-body", class: "composer-label", text: `Reply by text to ${name}` }),
    textarea,
    el(
      "div",
      { class: "composer-foot" },
      counter,
      el("span", { class: "composer-hint", id: "reply-hint", text: "Ctrl+Enter sends" }),
      send,
    ),
    error,
  );
  const showError = (text) => {
    error.textContent = text;
    error.hidden = !text;
    if (text) textarea.setAttribute("aria-invalid", "true");
    else textarea.removeAttribute("aria-invalid");
  };
  const count = () => {
    const { chars, segments } = fmt.textLength(textarea.value);
    counter.textContent = `${fmt.count(chars)} / ${fmt.count(MAX_TEXT_CHARS)}${segments > 1 ? ` · ${segments} segments` : ""}`;
    counter.dataset.over = chars > MAX_TEXT_CHARS ? "true" : "false";
    counter.title = `${chars} of at most ${MAX_TEXT_CHARS} characters${segments ? `, sent as ${segments} SMS ${segments === 1 ? "segment" : "segments"}` : ""}`;
  };
  count();
  textarea.addEventListener("input", () => {
    state.drafts.set(id, textarea.value);
    count();
    if (!error.hidden) showError("");
  });
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (form.dataset.sending === "true") return;
    const body = textarea.value;
    if (!body.trim()) {
      showError("Write a message first: an empty text cannot be sent.");
      textarea.focus();
      return;
    }
    if ([...body].length > MAX_TEXT_CHARS) {
      showError(`A text has at most ${fmt.count(MAX_TEXT_CHARS)} characters.`);
      textarea.focus();
      return;
    }
    showError("");
    form.dataset.sending = "true";
    form.setAttribute("aria-busy", "true");
    send.disabled = true;
    textarea.readOnly = true;
    send.textContent = "Sending…";
    try {
      const text = await request(`api/conversations/${id}/messages`, { method: "POST", body: { body } });
      textarea.value = "";
      state.drafts.delete(id);
      count();
      announce("Text sent");
      const t = state.thread;
      if (t.id === id && text && !t.messages.some((m) => m.external_id === text.external_id)) {
        t.messages = [text, ...t.messages];
        t.total += 1;
        if (!t.editing) {
          const scroll = ui.thread.scrollTop;
          renderThread({ flash: new Set([text.external_id]) });
          ui.thread.scrollTop = scroll;
        } else {
          t.stale = true;
        }
      }
      refreshList().catch(() => {});
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) failed(failure, "Sending the text");
      else showError(failure instanceof ApiError ? failure.message : String(failure));
    } finally {
      form.dataset.sending = "false";
      form.removeAttribute("aria-busy");
      send.disabled = false;
      textarea.readOnly = false;
      send.textContent = "Send";
      if (form.isConnected) textarea.focus({ preventScroll: true });
    }
  });
  state.composer = { id, form };
  return form;
}

// ------------------------------------------------------------ editing

function splitTags(text) {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

function field(label, control) {
  return el("label", { class: "field" }, el("span", { class: "field-label", text: label }), control);
}

/**
 * An edit form: its fields, Save and Cancel, and a place for errors. On a
 * 412 it keeps what was typed and offers to reload the other version.
 */
function editForm({ id, title, fields, save, returnFocus }) {
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const reload = el("button", { type: "button", class: "button", hidden: true, text: "Reload" });
  const form = el(
    "form",
    { class: "edit-form", id, "aria-label": title },
    ...fields,
    error,
    el(
      "div",
      { class: "form-actions" },
      el("button", { type: "submit", class: "button primary", text: "Save" }),
      el("button", { type: "button", class: "button cancel", text: "Cancel" }),
      reload,
    ),
  );
  // Closing re-reads the thread and gives the keyboard focus back to the
  // button that opened the form.
  const close = async () => {
    state.thread.editing = false;
    state.thread.stale = false;
    await refreshThread();
    const back = ui.threadContent.querySelector(returnFocus);
    if (back) back.focus();
  };
  const submit = form.querySelector('button[type="submit"]');
  form.querySelector(".cancel").addEventListener("click", close);
  reload.addEventListener("click", close);
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      // Closes the form only, not the thread around it.
      e.stopPropagation();
      close();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (submit.disabled) return;
    error.hidden = true;
    error.textContent = "";
    submit.disabled = true;
    try {
      await save();
      announce("Saved");
      await close();
      refreshList();
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 412) {
        error.textContent = "Changed elsewhere: someone saved this after you opened it. Your text stays here; reload to see their version.";
        reload.hidden = false;
      } else if (failure instanceof ApiError && failure.status === 401) {
        failed(failure, "Saving");
      } else {
        error.textContent = failure instanceof ApiError ? failure.message : String(failure);
      }
      error.hidden = !error.textContent;
    } finally {
      submit.disabled = false;
    }
  });
  state.thread.editing = true;
  return form;
}

function openContactForm() {
  const contact = state.thread.conversation.contact;
  const meta = contact.metadata || {};
  const version = meta.version;
  const ownName = contact.name && contact.name !== meta.formatted_number ? contact.name : "";
  const name = el("input", { name: "name", value: ownName, maxlength: 200, autocomplete: "off" });
  const company = el("input", { name: "company_name", value: meta.company_name || "", maxlength: 200, autocomplete: "off" });
  const notes = el("textarea", { name: "notes", rows: 3, maxlength: 10000 });
  notes.value = meta.notes || "";
  const tags = el("input", { name: "tags", value: (meta.tags || []).join(", "), autocomplete: "off" });
  const form = editForm({
    id: "contact-form",
    returnFocus: "#edit-contact",
    title: "Edit contact",
    fields: [field("Name", name), field("Company", company), field("Notes", notes), field("Tags (comma-separated)", tags)],
    save: () =>
      request(`api/contacts/${contact.id}`, {
        method: "PATCH",
        ifMatch: version,
        body: { name: name.value, company_name: company.value, notes: notes.value, tags: splitTags(tags.value) },
      }),
  });
  ui.threadContent.querySelector(".thread-header").after(form);
  name.focus();
}

function openCallForm(button) {
  const id = button.dataset.messageId;
  const message = state.thread.messages.find((m) => m.id === id);
  if (!message) return;
  const meta = message.metadata;
  const notes = el("textarea", { name: "notes", rows: 3, maxlength: 10000 });
  notes.value = meta.notes || "";
  const tags = el("input", { name: "tags", value: (meta.tags || []).join(", "), autocomplete: "off" });
  const form = editForm({
    id: `call-form-${id}`,
    returnFocus: `.edit-call[data-message-id="${id}"]`,
    title: "Note and tags of this call",
    fields: [field("Note", notes), field("Tags (comma-separated)", tags)],
    save: () =>
      request(`api/messages/${id}`, {
        method: "PATCH",
        ifMatch: meta.version,
        body: { notes: notes.value, tags: splitTags(tags.value) },
      }),
  });
  button.replaceWith(form);
  notes.focus();
}

function filterByTag(tag) {
  if (state.filters.tag === tag) return;
  state.filters.tag = tag;
  fillInputs();
  filtersChanged();
  announce(`Showing conversations tagged ${tag}`);
}

// ------------------------------------------------------------ live

async function refreshAll() {
  if (state.refreshing) {
    state.refreshAgain = true;
    return;
  }
  state.refreshing = true;
  try {
    do {
      state.refreshAgain = false;
      await Promise.all([refreshList(), refreshThread()]);
    } while (state.refreshAgain);
  } catch (error) {
    failed(error, "Refreshing");
  } finally {
    state.refreshing = false;
  }
}

function setConnection(value) {
  state.connection = value;
  const text = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" }[value] || value;
  ui.connection.dataset.state = value;
  ui.connection.querySelector(".connection-text").textContent = text;
  ui.connection.title = value === "live" ? "Updates appear as they are synced" : "Live updates are paused; the page reconnects by itself";
}

function renderSyncState() {
  const s = state.sync;
  const label = ui.lastSync.querySelector(".last-sync-text");
  let text;
  if (s.running) text = "Syncing…";
  else if (s.lastError) text = `Last sync failed${s.lastSuccessAt ? ` · ok ${fmt.ago(s.lastSuccessAt)}` : ""}`;
  else if (s.lastSuccessAt) text = `Last sync ${fmt.ago(s.lastSuccessAt)}`;
  else text = "Last sync: —";
  label.textContent = text;
  ui.lastSync.dataset.error = s.lastError && !s.running ? "true" : "false";
  ui.lastSync.title = s.lastError || (s.lastSuccessAt ? fmt.fullTime(s.lastSuccessAt) : "");
  const busy = s.running || ui.syncNow.dataset.requested === "true";
  ui.syncNow.setAttribute("aria-busy", busy ? "true" : "false");
  ui.syncNow.querySelector(".button-label").textContent = busy ? "Syncing…" : "Sync now";
}

async function pollHealth() {
  const h = await health();
  if (!h) {
    if (state.connection !== "live") setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    return;
  }
  state.sync.running = Boolean(h.sync_running);
  const last = h.last_sync;
  if (last) {
    state.sync.lastSuccessAt = last.last_success_at || null;
    state.sync.lastError = last.ok ? null : last.error || "the sync failed";
  }
  renderSyncState();
}

function onEvent(type, data) {
  dashboardEvent(type, data);
  switch (type) {
    case "sync_started":
      state.sync.running = true;
      renderSyncState();
      break;
    case "sync_progress": {
      // A long sync (the first one) shows what it stored so far.
      const now = Date.now();
      if ((data.trigger === "initial" || state.list.total === 0) && now - state.lastProgressRefresh > PROGRESS_REFRESH_MS) {
        state.lastProgressRefresh = now;
        refreshAll();
      }
      break;
    }
    case "sync":
      state.sync.running = false;
      if (data.ok) {
        state.sync.lastSuccessAt = data.at;
        state.sync.lastError = null;
      } else {
        state.sync.lastError = data.error || "the sync failed";
      }
      renderSyncState();
      if ((data.inserted || 0) + (data.updated || 0) + (data.moved || 0) > 0) {
        refreshAll();
        const n = (data.inserted || 0) + (data.updated || 0);
        if (n > 0) announce(`${n} ${n === 1 ? "call" : "calls"} updated`);
      }
      break;
    case "changed":
    case "edited":
    case "resync":
      refreshAll();
      if (type === "resync") pollHealth();
      break;
    default:
      break;
  }
}

async function syncNow() {
  if (ui.syncNow.dataset.requested === "true") return;
  ui.syncNow.dataset.requested = "true";
  ui.syncNow.disabled = true;
  renderSyncState();
  try {
    const result = await request("api/sync/today", { method: "POST" });
    showNotice(result.message || "Synced.", "info");
    if (state.connection !== "live") await refreshAll();
  } catch (error) {
    if (error instanceof ApiError && error.code === "sync_in_progress") showNotice("A sync is already running; its calls appear when it finishes.", "info");
    else failed(error, "Sync");
  } finally {
    ui.syncNow.dataset.requested = "false";
    ui.syncNow.disabled = false;
    await pollHealth();
  }
}

// ------------------------------------------------------------ wiring

function selectedChanged(id, { focusThread = false } = {}) {
  state.selected = id;
  for (const link of ui.list.querySelectorAll(".conv")) {
    if (link.dataset.conversationId === id) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
  ui.layout.classList.toggle("show-thread", Boolean(id));
  openThread(id);
  if (focusThread && id) ui.thread.focus({ preventScroll: true });
}

function fillInputs() {
  const f = state.filters;
  if (ui.search.value.trim() !== f.q) ui.search.value = f.q;
  ui.direction.value = f.direction;
  ui.kind.value = f.type;
  ui.since.value = f.since;
  ui.until.value = f.until;
  ui.recorded.checked = Boolean(f.recorded);
  ui.tagFilter.hidden = !f.tag;
  ui.tagFilter.textContent = f.tag ? `Tag: ${f.tag} ✕` : "";
  ui.tagFilter.setAttribute("aria-label", f.tag ? `Stop filtering by the tag ${f.tag}` : "");
  for (const radio of ui.filters.querySelectorAll('input[name="status"]')) radio.checked = radio.value === f.status;
}

function filtersChanged() {
  writeAddress();
  loadList();
}

function applyAddress() {
  const { view, params, filters, selected } = readAddress();
  const switching = view !== state.view;
  showView(view);
  if (view === "dashboard") {
    // Someone who chose the dashboard from the top bar lands on its heading.
    showDashboard(params, { focus: switching && document.activeElement === ui.navDashboard });
    updateNav();
    return;
  }
  const newFilters = !sameFilters(filters, state.filters);
  if (newFilters) {
    state.filters = filters;
    fillInputs();
    loadList();
  }
  if (selected !== state.selected) selectedChanged(selected);
  updateNav();
}

function wire() {
  ui.threadContent.addEventListener("click", (e) => {
    const target = e.target;
    if (!(target instanceof Element)) return;
    if (target.id === "edit-contact" && !state.thread.editing) openContactForm();
    else if (target.classList.contains("edit-call") && !state.thread.editing) openCallForm(target);
    else if (target.classList.contains("tag")) filterByTag(target.dataset.tag);
  });
  ui.tagFilter.addEventListener("click", () => {
    state.filters.tag = "";
    fillInputs();
    filtersChanged();
  });
  let searchTimer = null;
  ui.search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const q = ui.search.value.trim();
      if (q === state.filters.q) return;
      state.filters.q = q;
      filtersChanged();
    }, SEARCH_DELAY_MS);
  });
  ui.filters.addEventListener("submit", (e) => e.preventDefault());
  ui.filters.addEventListener("change", (e) => {
    const target = e.target;
    if (target === ui.search) return;
    if (target.name === "status") state.filters.status = target.value;
    else if (target === ui.direction) state.filters.direction = ui.direction.value;
    else if (target === ui.kind) state.filters.type = ui.kind.value;
    else if (target === ui.since) state.filters.since = ui.since.value;
    else if (target === ui.until) state.filters.until = ui.until.value;
    else if (target === ui.recorded) state.filters.recorded = ui.recorded.checked ? "1" : "";
    else return;
    filtersChanged();
  });
  ui.clear.addEventListener("click", () => {
    state.filters = { ...EMPTY_FILTERS };
    fillInputs();
    filtersChanged();
    ui.search.focus();
  });

  ui.list.addEventListener("click", (e) => {
    const link = e.target.closest(".conv");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    const id = link.dataset.conversationId;
    if (id !== state.selected) {
      state.selected = id;
      writeAddress({ push: true });
      selectedChanged(id);
    } else {
      ui.layout.classList.add("show-thread");
    }
  });
  ui.list.addEventListener("keydown", (e) => {
    const links = [...ui.list.querySelectorAll(".conv")];
    const index = links.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (e.key === "ArrowDown") next = links[index + 1];
    else if (e.key === "ArrowUp") next = links[index - 1];
    else if (e.key === "Home") next = links[0];
    else if (e.key === "End") next = links[links.length - 1];
    if (next) {
      e.preventDefault();
      next.focus();
    }
    if (e.key === "ArrowDown" && index >= links.length - 3) loadMore();
  });
  ui.loadMore.addEventListener("click", loadMore);
  if ("IntersectionObserver" in window) {
    new IntersectionObserver(
      (entries) => {
        if (entries.some((en) => en.isIntersecting)) loadMore();
      },
      { root: ui.scroll, rootMargin: "240px" },
    ).observe(ui.end);
  }

  document.querySelector(".skip-link").addEventListener("click", (e) => {
    e.preventDefault();
    ui.thread.focus();
  });
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest && e.target.closest("input, select, textarea, [contenteditable]");
    if (state.view !== "conversations") return;
    if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      ui.search.focus();
      ui.search.select();
    } else if (e.key === "Escape" && ui.layout.classList.contains("show-thread") && window.matchMedia("(max-width: 760px)").matches) {
      window.location.hash = hashFor(null);
    }
  });
  window.addEventListener("hashchange", applyAddress);
  document.addEventListener("callview:dashboard-address", updateNav);
  initDashboard({ onAuthError: (error) => failed(error, "Loading the dashboard") });
  ui.syncNow.addEventListener("click", syncNow);
  ui.signOut.addEventListener("click", signOut);
  ui.tokenForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = ui.tokenInput.value.trim();
    if (!value) return;
    setToken(value);
    ui.tokenInput.value = "";
    ui.tokenForm.hidden = true;
    ui.notice.hidden = true;
    document.body.classList.remove("needs-token");
    start();
  });
  document.addEventListener("callview:media-session", () => renewMediaSession());
  // The cookie lasts 12 hours: renew it well before, for tabs left open.
  window.setInterval(() => {
    if (token() && Date.now() - (state.mediaSessionAt || 0) > MEDIA_SESSION_RENEW_MS) startMediaSession();
  }, 60 * 1000);
  window.setInterval(() => {
    refreshTimes();
    renderSyncState();
  }, 30000);
  window.setInterval(pollHealth, HEALTH_EVERY_MS);
}

/**
 * Asks the server for the cookie that lets <audio> elements (which cannot
 * send the bearer token) play recordings. Without a token there is none.
 */
async function startMediaSession() {
  if (!token()) return;
  try {
    await request("api/session", { method: "POST" });
    state.mediaSessionAt = Date.now();
  } catch {
    // A rejected token shows the token form through the list's request.
  }
}

/** A new media cookie, then every player that failed loads again. */
async function renewMediaSession() {
  await startMediaSession();
  for (const audio of document.querySelectorAll(".recording audio")) {
    if (audio.error) audio.load();
  }
  for (const img of document.querySelectorAll('.bubble-media img[data-failed="true"]')) {
    // The same address again: the browser asks anew, now with the cookie.
    const src = img.getAttribute("src");
    img.removeAttribute("src");
    img.setAttribute("src", src);
  }
}

/**
 * Who the tab's token is (`GET /api/me`): its name and role in the top
 * bar, and the role on <body> so that what it may not do is not offered.
 */
async function loadMe() {
  try {
    const me = await request("api/me");
    document.body.dataset.role = me.role;
    state.me = { canSendTexts: me.can_send_texts === true, role: me.role };
    // The reply box depends on it: show (or hide) it in the open thread.
    const t = state.thread;
    if (t.conversation && ui.threadContent.dataset.conversationId === t.id && !t.editing) renderThread();
    const named = Boolean(me.auth_required && me.name);
    ui.whoami.hidden = !named;
    if (named) {
      ui.whoamiName.textContent = me.name;
      ui.whoamiRole.textContent = me.role;
      ui.whoami.title = `Signed in as ${me.name} (${me.role})`;
    }
  } catch (error) {
    failed(error, "Reading who is signed in");
  }
}

/** Forgets the tab's token and asks for one. */
function signOut() {
  setToken("");
  state.mediaSessionAt = 0;
  if (state.live) state.live.close();
  state.live = null;
  ui.whoami.hidden = true;
  delete document.body.dataset.role;
  state.me = { canSendTexts: false, role: null };
  ui.notice.hidden = true;
  needToken(false);
  announce("Signed out");
}

async function start() {
  // Before any <audio> element asks for a recording.
  await startMediaSession();
  loadMe();
  const { view, params, filters, selected } = readAddress();
  state.filters = filters;
  fillInputs();
  loadList();
  state.selected = null;
  selectedChanged(selected);
  showView(view);
  if (view === "dashboard") showDashboard(params);
  updateNav();
  pollHealth();
  if (state.live) state.live.reconnect();
  else state.live = connect({ onState: setConnection, onEvent });
}

adoptTokenFromAddress();
wire();
renderSyncState();
start();
