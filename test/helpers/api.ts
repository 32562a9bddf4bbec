import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { buildApp, type AppOptions } from '../../src/api/index.js';
import type { BlobStore } from '../../src/blob/index.js';
import type { Db } from '../../src/db/index.js';
import { silentLogger } from './fixtures.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { LOCAL_TEST_EGRESS } from './local-egress.js';

/** Parsed JSON of a response; tests read fields freely and assert on them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface ApiResponse {
  status: number;
  body: Json;
  headers: Record<string, unknown>;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  /** JSON value to send (serialised here), or a raw string sent as-is. */
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

/** An API client bound to one key (or none). */
export interface ApiClient {
  request(method: Method, url: string, opts?: RequestOptions): Promise<ApiResponse>;
  get(url: string, headers?: Record<string, string>): Promise<ApiResponse>;
  post(url: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  put(url: string, body?: unknown): Promise<ApiResponse>;
  del(url: string): Promise<ApiResponse>;
}

/** The app under test, built on a test database (not listening; requests go through `inject`). */
export async function createTestApp(db: Db, blobs?: BlobStore, options: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  return buildApp({ db, logger: silentLogger, version: 'test', blobs, egressPolicy: new EgressPolicy(LOCAL_TEST_EGRESS), ...options });
}

export function client(app: FastifyInstance, key: string | undefined): ApiClient {
  const request = async (method: Method, url: string, opts: RequestOptions = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (key !== undefined) headers.authorization = `Bearer ${key}`;
    let payload: string | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
    if (payload !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    const res = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
    let body: Json = null;
    if (res.body !== '') {
      try {
        body = JSON.parse(res.body);
      } catch {
        body = res.body;
      }
    }
    return { status: res.statusCode, body, headers: res.headers };
  };
  return {
    request,
    get: (url, headers) => request('GET', url, headers ? { headers } : {}),
    post: (url, body, headers) => request('POST', url, { body, ...(headers ? { headers } : {}) }),
    put: (url, body) => request('PUT', url, { body }),
    del: (url) => request('DELETE', url),
  };
}

/** Assert the response is our error format with this status and code; returns the error object. */
export function expectError(res: ApiResponse, status: number, code: string): { code: string; message: string; details: Json } {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toEqual({
    error: { code, message: expect.any(String), details: expect.any(Object) },
  });
  expect(Array.isArray(res.body.error.details)).toBe(false);
  return res.body.error;
}

/** Every page of a paginated list, following nextCursor until it is null. */
export async function collectPages(api: ApiClient, url: string, limit: number): Promise<{ items: Json[]; pages: number }> {
  const items: Json[] = [];
  let cursor: string | null = null;
  let pages = 0;
  const sep = url.includes('?') ? '&' : '?';
  do {
    const res: ApiResponse = await api.get(`${url}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
    pages++;
    if (pages > 1_000) throw new Error('pagination does not end');
  } while (cursor !== null);
  return { items, pages };
}

/** A small valid definition. */
export function simpleDefinition(): Json {
  return { steps: [{ id: 'only', type: 'noop' }] };
}
