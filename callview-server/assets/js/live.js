// Live updates: the server's event stream (GET api/events) and the health
// check (GET healthz) behind the connection indicator and "Last sync".

import { eventsUrl, request } from "./api.js";

/**
 * Connects to the event stream and keeps it connected. `handlers`:
 * `onState(state)` with connecting | live | reconnecting | offline,
 * `onEvent(type, data)` for every event.
 */
export function connect({ onState, onEvent }) {
  let source = null;
  let retry = 0;
  let timer = null;
  let stopped = false;

  const open = () => {
    if (stopped) return;
    clearTimeout(timer);
    if (source) source.close();
    onState(retry === 0 ? "connecting" : "reconnecting");
    source = new EventSource(eventsUrl());
    const types = ["hello", "sync_started", "sync_progress", "sync", "changed", "edited", "resync"];
    for (const type of types) {
      source.addEventListener(type, (e) => {
        let data = {};
        try {
          data = JSON.parse(e.data);
        } catch {
          data = {};
        }
        if (type === "hello") {
          // After a reconnection, what happened meanwhile is unknown.
          if (retry > 0) onEvent("resync", data);
          retry = 0;
          onState("live");
        }
        onEvent(type, data);
      });
    }
    source.onerror = () => {
      // The browser retries by itself while the stream is CONNECTING; a
      // CLOSED stream (an error answer, such as 401) needs a new one.
      retry += 1;
      onState(navigator.onLine === false ? "offline" : "reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        const wait = Math.min(30000, 1000 * 2 ** Math.min(retry, 5));
        timer = setTimeout(open, wait);
      }
    };
  };

  window.addEventListener("online", () => {
    if (!source || source.readyState === EventSource.CLOSED) open();
  });
  window.addEventListener("offline", () => onState("offline"));
  open();

  return {
    reconnect() {
      retry = Math.max(retry, 1);
      open();
    },
    close() {
      stopped = true;
      clearTimeout(timer);
      if (source) source.close();
    },
  };
}

/** `GET healthz`: `{status, sync_running, last_sync}`; null when unreachable. */
export async function health() {
  try {
    return await request("healthz");
  } catch {
    return null;
  }
}
