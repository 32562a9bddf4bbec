import type { Page } from 'playwright-core';
import type { Deadline } from './deadline.js';
import { browserError } from './errors.js';
import { EGRESS_DENIED_HEADER } from './proxy-http.js';

/** An http(s) URL (relative ones resolved against `base`), else BROWSER_URL_REFUSED. */
export function webUrl(raw: string, base?: string): URL {
  let url: URL;
  try {
    url = base && /^https?:/.test(base) ? new URL(raw, base) : new URL(raw);
  } catch {
    throw browserError('BROWSER_URL_REFUSED', `${JSON.stringify(raw.slice(0, 200))} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw browserError('BROWSER_URL_REFUSED', `only http and https URLs may be opened, not ${url.protocol} (${JSON.stringify(raw.slice(0, 200))})`, {
      protocol: url.protocol,
    });
  }
  return url;
}

/** Go to an http(s) URL and wait for its load event. */
export async function navigate(page: Page, raw: string, deadline: Deadline): Promise<void> {
  const url = webUrl(raw, page.url());
  let response;
  try {
    response = await page.goto(url.href, { timeout: deadline.remaining(), waitUntil: 'load' });
  } catch (err) {
    // Chromium reports a CONNECT the proxy refused only as a failed tunnel.
    if (err instanceof Error && /net::ERR_TUNNEL_CONNECTION_FAILED/.test(err.message)) {
      throw browserError('EGRESS_DENIED', `navigate to ${url.origin}: the egress proxy refused the connection (or could not reach it)`, { url: url.href });
    }
    throw err;
  }
  // The egress proxy marks the answer it gives instead of a refused request: a navigation that ends
  // there fails EGRESS_DENIED rather than showing the proxy's page as if it were the site.
  if (response && response.headers()[EGRESS_DENIED_HEADER.name.toLowerCase()] === EGRESS_DENIED_HEADER.value) {
    throw browserError('EGRESS_DENIED', `navigate to ${url.href}: the egress proxy refused ${response.url()}`, { url: url.href, refused: response.url() });
  }
}
