import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fixture "payer portal" on loopback for browser-step tests: a login that
 * sets a session cookie, a search whose results table appears after a
 * delay, a flaky element, a shadow-DOM widget, an iframe form, downloads
 * (a small CSV and one over 25 MiB streamed lazily), a redirect to a
 * forbidden address, an upload form, a masked field and a side-effecting
 * "submit claim" POST that counts its calls; for the egress tests, pages
 * that try to reach a target of the test's choosing (an image and a fetch,
 * a websocket, an open redirect) and a page held open until the test
 * releases it. Deterministic: no timers except the results delay, no
 * randomness in what pages show.
 */
export interface Portal {
  url: string;
  /** Calls of the side-effecting POST /claims. */
  claimsSubmitted: () => number;
  /** Requests per path (query left out). */
  hits: Map<string, number>;
  /** Bytes the large download actually wrote before the client stopped reading. */
  largeBytesSent: () => number;
  /** Every session id POST /login issued (the `sid` cookie values), oldest first. */
  issuedSessions: () => string[];
  /** Resolves when a GET /hold?key=KEY request is being held (it answers only after `release(KEY)`). */
  held: (key: string) => Promise<void>;
  /** Lets the held GET /hold?key=KEY answer (now, or as soon as it arrives). */
  release: (key: string) => void;
  close(): Promise<void>;
}

/** What `startPortal` may change; without options it behaves as it always has. */
export interface PortalOptions {
  /** The password POST /login accepts (default PORTAL_PASSWORD). */
  password?: string;
}

export const PORTAL_USER = 'ada';
export const PORTAL_PASSWORD = 'correct horse';
/** Delay before the results table appears (ms). */
export const RESULTS_DELAY_MS = 300;
/** Size of /files/large.csv: 30 MiB, over the 25 MiB download cap. */
export const LARGE_DOWNLOAD_BYTES = 30 * 1024 * 1024;
export const SMALL_CSV = 'claim,amount\nC-1,10.00\nC-2,20.50\n';
/** Where /escape redirects: the cloud metadata address, which the egress proxy must refuse. */
export const FORBIDDEN_URL = 'http://169.254.169.254/latest/meta-data/';

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<style>body{margin:0;font:16px sans-serif}</style></head><body>${body}</body></html>`;
}

/** A JavaScript string literal of `text` safe inside a <script> element. */
function scriptString(text: string): string {
  return JSON.stringify(text).replace(/</g, '\\u003c');
}

/** `text` escaped for an HTML attribute value in double quotes. */
function attribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export async function startPortal(options: PortalOptions = {}): Promise<Portal> {
  const password = options.password ?? PORTAL_PASSWORD;
  const sessions = new Set<string>();
  const issued: string[] = [];
  const holds = new Map<string, { arrived: Promise<void>; arrive: () => void; released: Promise<void>; release: () => void }>();
  const hold = (key: string) => {
    let entry = holds.get(key);
    if (!entry) {
      let arrive!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((resolve) => (arrive = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      holds.set(key, (entry = { arrived, arrive, released, release }));
    }
    return entry;
  };
  const hits = new Map<string, number>();
  let claims = 0;
  let largeSent = 0;

  const send = (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(html);
  };
  const loggedIn = (req: IncomingMessage) => {
    const sid = /(?:^|;\s*)sid=([a-f0-9]+)/.exec(req.headers.cookie ?? '')?.[1];
    return sid !== undefined && sessions.has(sid);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const url = new URL(req.url ?? '/', 'http://portal');
    const path = url.pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    switch (`${req.method} ${path}`) {
      case 'GET /':
      case 'GET /login':
        return send(
          res,
          200,
          page(
            'Sign in',
            `<h1>Payer portal</h1>
<form method="post" action="/login">
  <label for="user">User name</label> <input id="user" name="user" autocomplete="off">
  <label for="password">Password</label> <input id="password" name="password" type="password">
  <button type="submit" id="sign-in">Sign in</button>
</form>${url.searchParams.has('failed') ? '<p id="error">Wrong user name or password</p>' : ''}`,
          ),
        );
      case 'POST /login': {
        const form = new URLSearchParams(body);
        if (form.get('user') !== PORTAL_USER || form.get('password') !== password) {
          res.writeHead(303, { location: '/login?failed=1' }).end();
          return;
        }
        const sid = randomBytes(16).toString('hex');
        sessions.add(sid);
        issued.push(sid);
        res.writeHead(303, { location: '/home', 'set-cookie': `sid=${sid}; HttpOnly; Path=/; SameSite=Lax` }).end();
        return;
      }
      case 'GET /home':
        if (!loggedIn(req)) {
          res.writeHead(303, { location: '/login' }).end();
          return;
        }
        return send(
          res,
          200,
          page(
            'Home',
            `<h1 id="welcome">Welcome, ${PORTAL_USER}</h1>
<nav><a href="/search">Search claims</a> <a href="/claims/new">New claim</a></nav>
<button id="remember">Remember draft</button>
<p id="remembered"></p>
<script>
// One click keeps a draft in all three stores a session restore must bring back.
document.getElementById('remember').addEventListener('click', () => {
  sessionStorage.setItem('draft', 'claim-42');
  localStorage.setItem('layout', 'compact');
  const open = indexedDB.open('portal', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('drafts');
  open.onsuccess = () => {
    const tx = open.result.transaction('drafts', 'readwrite');
    tx.objectStore('drafts').put({ amount: 12 }, 'claim-42');
    tx.oncomplete = () => { document.getElementById('remembered').textContent = 'remembered'; };
  };
});
</script>`,
          ),
        );
      case 'GET /search':
        return send(
          res,
          200,
          page(
            'Search',
            `<form action="/results" method="get">
  <label for="member">Member ID</label> <input id="member" name="member">
  <label for="plan">Plan</label>
  <select id="plan" name="plan"><option value="">Any</option><option value="hmo">HMO Gold</option><option value="ppo">PPO Silver</option></select>
  <button type="submit">Search</button>
</form>
<p id="chosen"></p>
<script>document.getElementById('plan').addEventListener('change', (e) => { document.getElementById('chosen').textContent = 'plan:' + e.target.value; });</script>`,
          ),
        );
      case 'GET /results': {
        const member = (url.searchParams.get('member') ?? '').replace(/[^A-Za-z0-9-]/g, '');
        return send(
          res,
          200,
          page(
            'Results',
            `<h1>Claims of <span id="member-id">${member}</span></h1><div id="results">Loading…</div>
<script>
setTimeout(() => {
  document.getElementById('results').innerHTML =
    '<table id="claims"><thead><tr><th>Claim</th><th>Date</th><th>Amount</th><th></th></tr></thead>' +
    '<tbody><tr><td>C-1</td><td>2024-01-02</td><td>$10.00</td><td>paid</td></tr>' +
    '<tr><td>C-2</td><td>2024-02-03</td><td>$20.50</td><td>open</td></tr></tbody></table>';
}, ${RESULTS_DELAY_MS});
</script>`,
          ),
        );
      }
      case 'GET /flaky': {
        const n = hits.get(path)!;
        return send(res, 200, page('Flaky', n >= 2 ? '<p id="ready">Ready</p>' : '<p>Try again</p>'));
      }
      case 'GET /widget':
        return send(
          res,
          200,
          page(
            'Widget',
            `<claim-widget id="widget"></claim-widget><p id="widget-result"></p>
<script>
customElements.define('claim-widget', class extends HTMLElement {
  connectedCallback() {
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = '<div class="inner"><button id="inner-button" aria-label="Approve claim">Approve</button></div>';
    root.querySelector('button').addEventListener('click', () => { document.getElementById('widget-result').textContent = 'approved'; });
  }
});
</script>`,
          ),
        );
      case 'GET /frame':
        return send(res, 200, page('Framed', `<h1>Outer</h1><iframe id="inner-frame" src="/frame/inner" width="400" height="200"></iframe>`));
      case 'GET /frame/inner':
        return send(
          res,
          200,
          page(
            'Inner',
            `<form onsubmit="event.preventDefault(); document.getElementById('frame-result').textContent = 'sent ' + document.getElementById('note').value;">
  <input id="note" name="note"><button id="send" type="submit">Send</button></form><p id="frame-result"></p>`,
          ),
        );
      case 'GET /downloads':
        return send(res, 200, page('Downloads', `<a id="small" href="/files/claims.csv">Claims CSV</a> <a id="large" href="/files/large.csv">Everything</a>`));
      case 'GET /files/claims.csv':
        res.writeHead(200, { 'content-type': 'text/csv', 'content-disposition': 'attachment; filename="claims.csv"' }).end(SMALL_CSV);
        return;
      case 'GET /files/large.csv': {
        res.writeHead(200, { 'content-type': 'text/csv', 'content-disposition': 'attachment; filename="large.csv"' });
        const chunk = Buffer.alloc(256 * 1024, 'x');
        // Lazily: each chunk is written only when the client has taken the previous one.
        const pump = () => {
          while (largeSent < LARGE_DOWNLOAD_BYTES) {
            largeSent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('close', () => res.removeAllListeners('drain'));
        pump();
        return;
      }
      case 'GET /escape':
        res.writeHead(302, { location: FORBIDDEN_URL }).end();
        return;
      case 'GET /claims/new':
        return send(
          res,
          200,
          page('New claim', `<form method="post" action="/claims"><input id="amount" name="amount" value="12.00"><button id="submit-claim" type="submit">Submit claim</button></form>`),
        );
      case 'POST /claims':
        claims++;
        return send(res, 200, page('Claim submitted', `<p id="confirmation">Claim ${claims} submitted</p>`));
      case 'GET /upload':
        return send(
          res,
          200,
          page(
            'Upload',
            `<input id="file" type="file"><p id="file-info"></p>
<script>document.getElementById('file').addEventListener('change', async (e) => {
  const f = e.target.files[0];
  document.getElementById('file-info').textContent = f.name + ' ' + f.size + ' ' + (await f.text());
});</script>`,
          ),
        );
      case 'GET /masked':
        // Fixed geometry: the SSN box is at (40, 40), 240 × 60 CSS pixels.
        return send(
          res,
          200,
          page(
            'Masked',
            `<div id="ssn" style="position:absolute;left:40px;top:40px;width:240px;height:60px;background:linear-gradient(90deg,#f00,#0f0,#00f);color:#fff;font-size:32px">123-45-6789</div>`,
          ),
        );
      case 'GET /late':
        // The title and URL change a moment after the load: asserted events must wait for them.
        return send(res, 200, page('Loading', `<script>setTimeout(() => { history.replaceState(null, '', '/late/done'); document.title = 'Done'; }, 200);</script>`));
      case 'GET /confirm':
        return send(
          res,
          200,
          page('Confirm', `<button id="ask" onclick="document.getElementById('answer').textContent = confirm('Submit this claim?') ? 'yes' : 'no'">Ask</button><p id="answer"></p>`),
        );
      case 'GET /text':
        return send(res, 200, page('Text', `<p id="status">  Claim   C-1 is <b>paid</b> </p><a id="by-attr" data-claim="C-1" href="/home">C-1</a>`));
      case 'GET /leaky': {
        // A page that tries to reach ?target= as an image and with fetch, then says it is done (#done) either way.
        const target = url.searchParams.get('target') ?? '';
        return send(
          res,
          200,
          page(
            'Leaky',
            `<img id="pixel" src="${attribute(target)}" alt=""><p id="status">loading</p>
<script>
const target = ${scriptString(target)};
const image = new Promise((resolve) => {
  const img = document.getElementById('pixel');
  if (img.complete) resolve(img.naturalWidth > 0 ? 'loaded' : 'error');
  img.addEventListener('load', () => resolve('loaded'));
  img.addEventListener('error', () => resolve('error'));
});
const fetched = fetch(target, { mode: 'no-cors' }).then(() => 'fetched', (e) => 'fetch failed: ' + e.message);
Promise.all([image, fetched]).then((results) => {
  const done = document.createElement('p');
  done.id = 'done';
  done.textContent = results.join('; ');
  document.body.append(done);
});
</script>`,
          ),
        );
      }
      case 'GET /ws-leak': {
        // A page that opens a websocket to ?target= and says how it ended (#done).
        const target = url.searchParams.get('target') ?? '';
        return send(
          res,
          200,
          page(
            'Websocket',
            `<p id="status">connecting</p>
<script>
const finish = (text) => {
  if (document.getElementById('done')) return;
  const done = document.createElement('p');
  done.id = 'done';
  done.textContent = text;
  document.body.append(done);
};
try {
  const ws = new WebSocket(${scriptString(target)});
  ws.addEventListener('open', () => finish('open'));
  ws.addEventListener('error', () => finish('error'));
  ws.addEventListener('close', (e) => finish('closed ' + e.code));
} catch (e) {
  finish('threw ' + e.message);
}
</script>`,
          ),
        );
      }
      case 'GET /redirect':
        // An open redirect to ?to= (what an attacker-controlled page could do).
        res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
        return;
      case 'GET /hold': {
        // Answers only when the test releases ?key=: a step's page waits here while the test does something else.
        const entry = hold(url.searchParams.get('key') ?? '');
        entry.arrive();
        void entry.released.then(() => send(res, 200, page('Released', '<p id="released">released</p>')));
        return;
      }
      default:
        send(res, 404, page('Not found', '<p>Not found</p>'));
    }
  };

  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    claimsSubmitted: () => claims,
    hits,
    largeBytesSent: () => largeSent,
    issuedSessions: () => [...issued],
    held: (key) => hold(key).arrived,
    release: (key) => hold(key).release(),
    close: async () => {
      for (const entry of holds.values()) entry.release();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
