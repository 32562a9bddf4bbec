import type { Config } from '../config/index.js';
import { EgressPolicy } from '../net/address-policy.js';
import type { Logger } from '../util/logger.js';
import { EgressProxy } from './egress-proxy.js';
import { sandboxByDefault } from './sandbox.js';
import { WorkerBrowserSessions } from './sessions.js';

/**
 * The browser sessions of a worker process as configured: Chromium at
 * STEPWISE_CHROMIUM_PATH with STEPWISE_BROWSER_CONTEXTS contexts, every one
 * behind the egress proxy under STEPWISE_EGRESS_ALLOW. Nothing starts
 * until the first browser step: Playwright is loaded then (a worker that
 * runs none pays neither its import nor a browser's ~300 MB).
 */
export function workerBrowserSessions(config: Pick<Config, 'chromiumPath' | 'browserContexts' | 'egressAllow'>, logger: Logger): WorkerBrowserSessions {
  if (!sandboxByDefault()) {
    logger.warn({ chromiumPath: config.chromiumPath }, 'browser steps: this worker runs as root, so Chromium will run without its sandbox (run workers as a non-root user to keep it)');
  }
  return new WorkerBrowserSessions({
    runtime: async () => {
      const { BrowserPool } = await import('./pool.js');
      return new BrowserPool({ executablePath: config.chromiumPath, maxContexts: config.browserContexts, logger });
    },
    proxy: () => EgressProxy.start({ policy: new EgressPolicy(config.egressAllow) }),
  });
}
