// Stage: the SHA-256 and size of the stored bytes, which the manifest records and every read
// (restore, verify) checks.
import { createHash } from 'node:crypto';
import type { ObserverStage } from '../stage.js';

export function hashStage(): ObserverStage {
  return {
    kind: 'observe',
    name: 'sha256',
    create() {
      const hash = createHash('sha256');
      let bytes = 0;
      return {
        update(chunk) {
          bytes += chunk.length;
          hash.update(chunk);
        },
        result: () => ({ storedBytes: bytes, sha256: hash.digest('hex') }),
      };
    },
  };
}
