import type { Locator } from 'playwright-core';
import { pause, type Deadline } from './deadline.js';
import { browserError } from './errors.js';
import { SELECT_OPTIONS } from './page-scripts.js';

/** Poll interval while waiting for an option to appear. */
const POLL_MS = 100;

/**
 * Choose a <select> option by value, else by label (the Recorder writes the
 * value; a person writes the label), waiting within the deadline for it to
 * appear (options loaded after another field changed).
 */
export async function chooseOption(element: Locator, want: { value?: string | undefined; label?: string | undefined }, deadline: Deadline): Promise<void> {
  for (;;) {
    const options = await element.evaluate(SELECT_OPTIONS);
    if (options === null) throw browserError('BROWSER_ACTION_INVALID', 'the element is not a <select>');
    const byValue = want.value !== undefined && options.some((o) => o.value === want.value);
    const byLabel = !byValue && want.label !== undefined && options.some((o) => o.label === want.label);
    if (byValue) {
      await element.selectOption({ value: want.value! }, { timeout: deadline.remaining() });
      return;
    }
    if (byLabel) {
      await element.selectOption({ label: want.label! }, { timeout: deadline.remaining() });
      return;
    }
    if (deadline.expired()) {
      throw browserError(
        'BROWSER_SELECTOR_NOT_FOUND',
        `no option with ${[want.value !== undefined ? `value ${JSON.stringify(want.value)}` : '', want.label !== undefined ? `label ${JSON.stringify(want.label)}` : ''].filter(Boolean).join(' or ')}; the options are ${options
          .slice(0, 20)
          .map((o) => JSON.stringify(o.label))
          .join(', ')}`,
      );
    }
    await pause(Math.min(POLL_MS, deadline.remaining()));
  }
}
