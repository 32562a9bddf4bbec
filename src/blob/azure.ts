import { Readable } from 'node:stream';
import {
  BlobSASPermissions,
  BlobServiceClient,
  RestError,
  type ContainerClient,
  type StoragePipelineOptions,
} from '@azure/storage-blob';
import { BlobNotFoundError, BlobUnavailableError, type BlobFailureReason } from './errors.js';
import {
  sha256Hex,
  toBuffer,
  validateBlobKey,
  validateBlobPrefix,
  type BlobInfo,
  type BlobStore,
  type PutOptions,
  type PutResult,
} from './types.js';

/**
 * The SDK default retries 4 times with delays up to 120 s, so an unreachable account hangs a
 * caller for minutes. Three tries with short delays fail an archival batch in about a second and
 * the maintenance loop retries it on its next run anyway.
 */
const DEFAULT_PIPELINE: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 1_000, tryTimeoutInMs: 60_000 },
};

function azureFailure(operation: string, key: string, err: unknown): Error {
  if (err instanceof BlobNotFoundError || err instanceof BlobUnavailableError) return err;
  const status = err instanceof RestError ? err.statusCode : undefined;
  if (status === 404 && (operation === 'get' || operation === 'getStream')) return new BlobNotFoundError(key);
  let reason: BlobFailureReason = 'io';
  if (status === undefined) reason = 'unreachable';
  else if (status === 401 || status === 403) reason = 'denied';
  else if (status === 507 || status === 413) reason = 'full';
  else if (status >= 500) reason = 'unreachable';
  return new BlobUnavailableError(operation, key, reason, { cause: err });
}

/** Blobs in one Azure Blob Storage container (block blobs; tested against Azurite). */
export class AzureBlobStore implements BlobStore {
  readonly kind = 'azure';
  private ready: Promise<void> | undefined;

  constructor(private readonly container: ContainerClient) {}

  /** A store over `containerName` in the account the connection string names; the container is created on first use. */
  static fromConnectionString(
    connectionString: string,
    containerName: string,
    pipeline: StoragePipelineOptions = DEFAULT_PIPELINE,
  ): AzureBlobStore {
    const service = BlobServiceClient.fromConnectionString(connectionString, pipeline);
    return new AzureBlobStore(service.getContainerClient(containerName));
  }

  private ensureContainer(): Promise<void> {
    // Memoised; a failure is forgotten so the next call tries again (the account may come back).
    this.ready ??= this.container.createIfNotExists().then(
      () => undefined,
      (err: unknown) => {
        this.ready = undefined;
        throw azureFailure('createContainer', this.container.containerName, err);
      },
    );
    return this.ready;
  }

  async put(key: string, body: Buffer | Uint8Array | string, options?: PutOptions): Promise<PutResult> {
    validateBlobKey(key);
    const bytes = toBuffer(body);
    const sha256 = sha256Hex(bytes);
    await this.ensureContainer();
    try {
      // A block blob upload commits all-or-nothing: readers never see a partial blob.
      await this.container.getBlockBlobClient(key).uploadData(bytes, {
        blobHTTPHeaders: { blobContentType: options?.contentType ?? 'application/octet-stream' },
        metadata: { sha256 },
      });
    } catch (err) {
      throw azureFailure('put', key, err);
    }
    return { key, size: bytes.length, sha256 };
  }

  async get(key: string): Promise<Buffer> {
    validateBlobKey(key);
    await this.ensureContainer();
    try {
      return await this.container.getBlobClient(key).downloadToBuffer();
    } catch (err) {
      throw azureFailure('get', key, err);
    }
  }

  async getStream(key: string): Promise<Readable> {
    validateBlobKey(key);
    await this.ensureContainer();
    try {
      const res = await this.container.getBlobClient(key).download();
      const body = res.readableStreamBody;
      if (body === undefined) throw new BlobUnavailableError('getStream', key, 'io');
      return body instanceof Readable ? body : Readable.from(body);
    } catch (err) {
      throw azureFailure('getStream', key, err);
    }
  }

  async delete(key: string): Promise<boolean> {
    validateBlobKey(key);
    await this.ensureContainer();
    try {
      return (await this.container.getBlobClient(key).deleteIfExists()).succeeded;
    } catch (err) {
      throw azureFailure('delete', key, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    validateBlobKey(key);
    await this.ensureContainer();
    try {
      return await this.container.getBlobClient(key).exists();
    } catch (err) {
      throw azureFailure('exists', key, err);
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    validateBlobPrefix(prefix);
    await this.ensureContainer();
    const out: BlobInfo[] = [];
    try {
      // listBlobsFlat pages through results in lexicographic key order.
      for await (const item of this.container.listBlobsFlat({ prefix })) {
        out.push({ key: item.name, size: item.properties.contentLength ?? 0 });
      }
    } catch (err) {
      throw azureFailure('list', prefix, err);
    }
    return out;
  }

  /** A read-only service SAS URL; null when the client has no account key to sign with. */
  async signedReadUrl(key: string, expiresInSeconds: number): Promise<string | null> {
    validateBlobKey(key);
    try {
      return await this.container.getBlobClient(key).generateSasUrl({
        permissions: BlobSASPermissions.parse('r'),
        expiresOn: new Date(Date.now() + expiresInSeconds * 1000),
      });
    } catch (err) {
      // RangeError: the client was built from a SAS connection string, so it cannot sign.
      if (err instanceof RangeError) return null;
      throw azureFailure('signedReadUrl', key, err);
    }
  }

  async close(): Promise<void> {}
}
