/**
 * The custom steps Stepwise adds to Recorder flows (`customStep` with one of
 * these names). Apart from custom-steps.ts so that the schema (read by the
 * API at start) does not load Playwright.
 */
export const CUSTOM_STEP_NAMES = [
  'stepwise.extract',
  'stepwise.screenshot',
  'stepwise.select',
  'stepwise.assertText',
  'stepwise.upload',
  'stepwise.download',
] as const;

export type CustomStepName = (typeof CUSTOM_STEP_NAMES)[number];
