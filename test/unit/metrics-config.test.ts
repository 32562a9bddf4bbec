import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ValidationError } from '../../src/errors/index.js';

describe('metrics configuration', () => {
  it('is off by default: no token (so /metrics is 404), no organization labels, no port of its own', () => {
    const c = loadConfig({});
    expect(c.metricsToken).toBeUndefined();
    expect(c.metricsOrganizationLabels).toBe(false);
    expect(c.metricsPort).toBeUndefined();
  });

  it('reads STEPWISE_METRICS_TOKEN, STEPWISE_METRICS_ORGANIZATION_LABELS and STEPWISE_METRICS_PORT', () => {
    const c = loadConfig({
      STEPWISE_METRICS_TOKEN: '0123456789abcdef0123456789abcdef',
      STEPWISE_METRICS_ORGANIZATION_LABELS: 'true',
      STEPWISE_METRICS_PORT: '9464',
    });
    expect(c.metricsToken).toBe('0123456789abcdef0123456789abcdef');
    expect(c.metricsOrganizationLabels).toBe(true);
    expect(c.metricsPort).toBe(9464);
    // Empty is unset, as for the other variables.
    expect(loadConfig({ STEPWISE_METRICS_TOKEN: '', STEPWISE_METRICS_PORT: '' })).toMatchObject({ metricsToken: undefined, metricsPort: undefined });
  });

  it('refuses a short token, one with spaces, a bad port and a bad flag, naming the variable', () => {
    const refused = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError);
        return err as ValidationError;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    expect(refused({ STEPWISE_METRICS_TOKEN: 'secret' }).details).toEqual({ path: 'STEPWISE_METRICS_TOKEN', min: 16, max: 1024 });
    expect(refused({ STEPWISE_METRICS_TOKEN: 'sixteen chars and a space' }).details.path).toBe('STEPWISE_METRICS_TOKEN');
    expect(refused({ STEPWISE_METRICS_PORT: '0' }).message).toMatch(/STEPWISE_METRICS_PORT must be an integer between 1 and 65535/);
    expect(refused({ STEPWISE_METRICS_PORT: '70000' }).details.path).toBe('STEPWISE_METRICS_PORT');
    expect(refused({ STEPWISE_METRICS_ORGANIZATION_LABELS: 'yes' }).message).toMatch(/STEPWISE_METRICS_ORGANIZATION_LABELS must be true or false/);
  });
});
