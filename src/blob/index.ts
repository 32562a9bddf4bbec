import type { BlobConfig } from '../config/index.js';
import { ValidationError } from '../errors/index.js';
import { FsBlobStore } from './fs.js';
import type { BlobStore } from './types.js';

export * from './types.js';
export { FsBlobStore } from './fs.js';

/**
 * The BlobStore the configuration names. The Azure SDK is imported only when chosen,
 * so the default filesystem setup never loads it.
 */
export async function createBlobStore(config: BlobConfig): Promise<BlobStore> {
  switch (config.backend) {
    case 'fs':
      return new FsBlobStore(config.dir);
    case 'azure': {
      const { AzureBlobStore } = await import('./azure.js');
      // loadConfig refuses backend=azure without a connection string; this guards hand-built configs.
      if (!config.azureConnectionString) throw new ValidationError('azure blob backend needs a connection string', { path: 'azureConnectionString' });
      return AzureBlobStore.fromConnectionString(config.azureConnectionString, config.azureContainer);
    }
  }
}
