import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { browserError } from './errors.js';
import { findChildByArg } from './process-memory.js';

/**
 * Flags of every launch: no GPU (headless servers have none), none of
 * Chromium's own traffic (component updates, sync, field trials, safe
 * browsing lists…: nothing should leave the worker except through a
 * context's egress proxy), no QUIC (it would bypass an HTTP proxy), and
 * /tmp instead of /dev/shm, which is 64 MB in many containers and crashes
 * renderers when full.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
  // WebRTC sends UDP straight to any address (a STUN request to 127.0.0.1 sent 4 packets here), around
  // the egress proxy; this policy allows only proxied UDP, i.e. none (0 packets measured with it).
  // The similar --force-webrtc-ip-handling-policy alone did not stop them.
  '--webrtc-ip-handling-policy=disable_non_proxied_udp',
  // Chromium keeps only the last --disable-features, and ours comes after playwright-core's, so this
  // repeats its list (1.64.1, the pinned version) and adds the features that call Google from a page:
  // autofill asked content-autofill.googleapis.com about every form (5 refused requests, 5 WARN rows
  // per run of the browser benchmark's login → search flow before this).
  `--disable-features=${[
    'AvoidUnnecessaryBeforeUnloadCheckSync',
    'DestroyProfileOnBrowserClose',
    'DialMediaRouteProvider',
    'GlobalMediaControls',
    'HttpsUpgrades',
    'LensOverlay',
    'MediaRouter',
    'PaintHolding',
    'ThirdPartyStoragePartitioning',
    'BlockOriginHeaderModificationOnRedirect',
    'AvoidCorsURLLoaderRestartOnRedirect',
    'Translate',
    'AutoDeElevate',
    'OptimizationHints',
    'NetworkTimeServiceQuerying',
    'AimEnabled',
    'AutofillServerCommunication',
    'SafeBrowsing',
  ].join(',')}`,
];

/**
 * The launch-wide proxy: a closed loopback port. Every context gets its own
 * egress proxy, which overrides this; anything that would go out without one
 * (the default context, a request Chromium makes for itself) hits a port
 * nothing listens on and fails. Fail closed.
 */
export const CLOSED_PROXY = 'http://127.0.0.1:1';

/** A launched browser and what the pool keeps about it. */
export interface LaunchedBrowser {
  browser: Browser;
  /** Its process id (for its memory), or null when /proc cannot say. */
  pid: number | null;
  /** Where its downloads land (Playwright's downloadsPath). */
  downloadsDir: string;
  /** How long the launch took: ~1.2 s for Debian's Chromium 156 on this 2-core machine. */
  launchMs: number;
}

/**
 * Launch Chromium from `executablePath` (Debian's package; playwright-core
 * never downloads a browser). The launch carries a unique marker flag so
 * the browser's process can be found among the worker's children.
 */
export async function launchChromium(options: { executablePath: string; sandboxed: boolean; timeoutMs: number }): Promise<LaunchedBrowser> {
  try {
    await access(options.executablePath, constants.X_OK);
  } catch {
    throw browserError(
      'BROWSER_LAUNCH_FAILED',
      `Chromium is not at ${options.executablePath} (install Debian's chromium package, or set STEPWISE_CHROMIUM_PATH)`,
      { executablePath: options.executablePath },
    );
  }
  const marker = `--stepwise-browser=${randomUUID()}`;
  const downloadsDir = await mkdtemp(join(tmpdir(), 'stepwise-downloads-'));
  const started = Date.now();
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: options.executablePath,
      args: [...CHROMIUM_ARGS, marker],
      chromiumSandbox: options.sandboxed,
      downloadsPath: downloadsDir,
      proxy: { server: CLOSED_PROXY, bypass: '<-loopback>' },
      timeout: options.timeoutMs,
      // The worker decides what a signal means (drain, then close the runtime).
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
  } catch (err) {
    throw browserError('BROWSER_LAUNCH_FAILED', `Chromium did not start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, {
      executablePath: options.executablePath,
      sandboxed: options.sandboxed,
    });
  }
  const launchMs = Date.now() - started;
  const pid = await findChildByArg(process.pid, marker);
  return { browser, pid, downloadsDir, launchMs };
}
