// api.js - the dashboard's only door to arbor's admin API (docs/openapi.yaml).
//
// Everything goes to our own origin: the page's Content-Security-Policy allows
// nothing else (connect-src 'self'). Reads need no token; POSTs carry the bearer
// token from sessionStorage (never localStorage: it must not outlive the tab),
// and a 401 (no token yet) or a 403 (the stored one is wrong: the server
// changed its token) asks the operator for it once and retries.

const TOKEN_KEY = 'arbor.token';

// The SSE event types the server names (include/arbor/names.h), plus "gap".
// EventSource delivers named events only to listeners of that name, never to
// onmessage, so each needs its own listener.
export const EVENT_TYPES = ['created', 'state', 'failed', 'cancel', 'restart', 'deadline', 'stuck',
  'probe_failed', 'not_ready', 'ready'];

// A non-2xx answer: the status and the server's {"error":{code,message}} body
// (or whatever JSON it sent, e.g. /readyz's {"ready":false}).
export class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error;
    super(e ? `${status} ${e.code}: ${e.message}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';                   // storage disabled: act as if no token was given
  }
}

function storeToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives as long as this call */
  }
}

// The body as JSON, or null when it is empty or not JSON (a proxy's error page).
async function readJson(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// Statuses as the operator reads them in the action result.
const STATUS_TEXT = { 202: 'Accepted', 200: 'OK', 400: 'Bad Request', 401: 'Unauthorized',
  403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error' };

export function statusText(status) {
  return STATUS_TEXT[status] || '';
}

export const api = {
  // Set by the page: async () => token string, or null when the operator gave up.
  askToken: null,

  // GET a JSON resource. Resolves with the body for 2xx, rejects with an
  // ApiError otherwise (network failures reject with the browser's TypeError).
  async get(path) {
    const res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    const body = await readJson(res);
    if (!res.ok) throw new ApiError(res.status, body);
    return body;
  },

  // GET a text resource (/metrics); rejects like get().
  async text(path) {
    const res = await fetch(path, { cache: 'no-store' });
    const body = await res.text();
    if (!res.ok) throw new ApiError(res.status, null);
    return body;
  },

  // POST with no body. Resolves with {status, body} whatever the status, so the
  // caller can show a 409's message; on 401 or 403 it asks for the token and
  // retries once with it.
  async post(path) {
    let res = await postOnce(path, storedToken());
    if ((res.status === 401 || res.status === 403) && this.askToken) {
      const token = await this.askToken();
      if (token) {
        storeToken(token);
        res = await postOnce(path, token);
      }
    }
    return res;
  },

  // Follows the live event stream. onEvent(ev) gets each event's JSON with its
  // "type" (a gap arrives as {type: "gap", missed, next_seq}); onStatus gets
  // "live" when the stream is open and "reconnecting" while it is not. The
  // browser reconnects by itself with Last-Event-ID after a network error;
  // when it gives up (the server answered something other than a stream, e.g.
  // while it restarts behind a proxy) we open a new one from the last seq we
  // saw (?after=), so no event is skipped either way. Returns {close()}.
  events(onEvent, onStatus) {
    let source = null;
    let lastSeq = null;
    let retry = null;
    let closed = false;
    let delay = 500;

    const open = () => {
      const url = lastSeq === null ? '/api/v1/events' : `/api/v1/events?after=${lastSeq}`;
      source = new EventSource(url);
      source.addEventListener('open', () => {
        delay = 500;
        onStatus('live');
      });
      source.addEventListener('error', () => {
        onStatus('reconnecting');
        if (source.readyState === EventSource.CLOSED && !closed) {
          source = null;
          retry = setTimeout(open, delay);
          delay = Math.min(delay * 2, 10000);
        }
      });
      for (const type of EVENT_TYPES) {
        source.addEventListener(type, (m) => {
          let ev;
          try {
            ev = JSON.parse(m.data);
          } catch {
            return;              // not ours to crash on; the next event follows
          }
          if (m.lastEventId) lastSeq = m.lastEventId;
          onEvent(ev);
        });
      }
      source.addEventListener('gap', (m) => {
        let gap = {};
        try {
          gap = JSON.parse(m.data);
        } catch {
          /* a gap without numbers is still a gap */
        }
        onEvent({ ...gap, type: 'gap' });
      });
    };

    open();
    return {
      close() {
        closed = true;
        clearTimeout(retry);
        if (source) source.close();
      },
    };
  },
};

async function postOnce(path, token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { method: 'POST', headers, cache: 'no-store' });
  return { status: res.status, body: await readJson(res) };
}
