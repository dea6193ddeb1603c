// Types of sync-client/file-storage.js (Node only), exported as
// `@syncd/client/file-storage`. `storage: 'dir'` uses it too.

import type { Patch, StoredCheckpoint, SyncStorage } from '../sync-client.js';

/**
 * A SyncStorage in a directory: checkpoint.json (replaced atomically),
 * pending-G.log (patches appended after checkpoint G, fdatasynced before
 * they are sent) and a lock file naming the process that uses it.
 */
export class FileStorage implements SyncStorage {
  /**
   * Creates the directory if need be and locks it. Rejects if another live
   * process (or another client in this one) holds it.
   */
  static open(dir: string): Promise<FileStorage>;
  readonly dir: string;
  load(): Promise<StoredCheckpoint | null>;
  appendPending(patches: Patch[]): Promise<void>;
  saveCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  close(): Promise<void>;
}
