/**
 * Chromium's setuid/namespace sandbox refuses to start as root; elsewhere it
 * is on. Apart from launch.ts so that a worker can say so at start without
 * loading Playwright.
 */
export function sandboxByDefault(): boolean {
  return typeof process.getuid !== 'function' || process.getuid() !== 0;
}
