import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBlobStore, FsBlobStore, validateBlobKey } from '../../src/blob/index.js';
import { AzureBlobStore } from '../../src/blob/azure.js';
import { loadConfig } from '../../src/config/index.js';
import { ValidationError } from '../../src/errors/index.js';

const AZURE = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;';

describe('blob configuration', () => {
  it('defaults to the filesystem under the data directory', async () => {
    const config = loadConfig({ STEPWISE_DATA_DIR: '/tmp/sw-data' });
    expect(config.blob).toMatchObject({ backend: 'fs', dir: resolve('/tmp/sw-data/blobs'), azureContainer: 'stepwise' });
    expect(config.worker.resultInlineBytes).toBe(64 * 1024);
    const store = await createBlobStore(config.blob);
    expect(store).toBeInstanceOf(FsBlobStore);
    expect((store as FsBlobStore).root).toBe(resolve('/tmp/sw-data/blobs'));
  });

  it('STEPWISE_BLOB_DIR and STEPWISE_RESULT_INLINE_BYTES are honoured', () => {
    const config = loadConfig({ STEPWISE_BLOB_DIR: '/srv/blobs', STEPWISE_RESULT_INLINE_BYTES: '1024' });
    expect(config.blob.dir).toBe(resolve('/srv/blobs'));
    expect(config.worker.resultInlineBytes).toBe(1024);
  });

  it('chooses Azure by configuration', async () => {
    const config = loadConfig({ STEPWISE_BLOB_BACKEND: 'azure', STEPWISE_AZURE_STORAGE_CONNECTION_STRING: AZURE, STEPWISE_AZURE_CONTAINER: 'shots-1' });
    expect(config.blob).toMatchObject({ backend: 'azure', azureContainer: 'shots-1' });
    expect(await createBlobStore(config.blob)).toBeInstanceOf(AzureBlobStore);
  });

  it('refuses an unknown backend, Azure without a connection string, and a bad container name, naming the variable', () => {
    const cases: [Record<string, string>, string][] = [
      [{ STEPWISE_BLOB_BACKEND: 's4' }, 'STEPWISE_BLOB_BACKEND'],
      [{ STEPWISE_BLOB_BACKEND: 'azure' }, 'STEPWISE_AZURE_STORAGE_CONNECTION_STRING'],
      [{ STEPWISE_AZURE_CONTAINER: 'Bad_Name' }, 'STEPWISE_AZURE_CONTAINER'],
      [{ STEPWISE_RESULT_INLINE_BYTES: '2000000' }, 'STEPWISE_RESULT_INLINE_BYTES'],
    ];
    for (const [env, path] of cases) {
      let err: unknown;
      try {
        loadConfig(env);
      } catch (e) {
        err = e;
      }
      expect(err, path).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).details.path).toBe(path);
    }
  });
});

describe('blob keys', () => {
  it('accepts relative segment keys and refuses traversal', () => {
    expect(validateBlobKey('screenshots/org/ab/abc-1.png')).toBe('screenshots/org/ab/abc-1.png');
    for (const bad of ['..', '../a', 'a/..', 'a/./b', '/a', 'a/', 'a//b', '.tmp/x', 'a\u0000b', 'x'.repeat(1025)]) {
      expect(() => validateBlobKey(bad), bad).toThrow(ValidationError);
    }
  });
});
