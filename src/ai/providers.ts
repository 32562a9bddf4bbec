import { anthropicProvider } from './anthropic.js';
import { openAiProvider } from './openai.js';
import type { ChatProvider, ProviderName, ProviderSecret } from './types.js';

export const PROVIDERS: Readonly<Record<ProviderName, ChatProvider>> = Object.freeze({
  openai: openAiProvider,
  anthropic: anthropicProvider,
});

export function providerNamed(name: string): ChatProvider | undefined {
  return Object.hasOwn(PROVIDERS, name) ? PROVIDERS[name as ProviderName] : undefined;
}

/**
 * A credential's secret as a provider needs it, or what is wrong with it
 * (never its values): `apiKey` a non-empty string, `baseUrl` an http(s)
 * URL, `apiVersion` (openai only: Azure) a short token.
 */
export function readSecret(provider: ProviderName, secret: Readonly<Record<string, unknown>>): ProviderSecret | string {
  const { apiKey, baseUrl, apiVersion } = secret;
  if (typeof apiKey !== 'string' || apiKey.length === 0) return 'its secret has no apiKey';
  if (baseUrl !== undefined && baseUrl !== null && baseUrl !== '') {
    if (typeof baseUrl !== 'string') return 'its baseUrl is not a string';
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      return 'its baseUrl is not a URL';
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'its baseUrl is not an http or https URL';
  }
  if (apiVersion !== undefined && apiVersion !== null && apiVersion !== '') {
    if (provider !== 'openai') return 'apiVersion is for Azure OpenAI (provider openai) only';
    if (typeof apiVersion !== 'string' || !/^[A-Za-z0-9._-]{1,40}$/.test(apiVersion)) return 'its apiVersion is not a version such as 2024-10-21';
  }
  return {
    apiKey,
    baseUrl: typeof baseUrl === 'string' && baseUrl !== '' ? baseUrl : undefined,
    apiVersion: typeof apiVersion === 'string' && apiVersion !== '' ? apiVersion : undefined,
  };
}
