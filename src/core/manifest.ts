// The manifest: written last, its presence in the pool is what makes a backup exist.
import type { StoredArtifact } from '../engines/types.js';

export const MANIFEST_FORMAT = 1;

export interface Manifest {
  format: number;
  dbsVersion: string;
  backupId: string;
  plan: { id: string; name: string };
  source: { kind: string; url: string };
  backupType: string;
  selection: Record<string, unknown>;
  parentId: string | null;
  tool: { name?: string; version?: string };
  server: { version?: string };
  facts: Record<string, unknown>;
  artifacts: (StoredArtifact & { encryption: 'none' })[];
  /** How the data path ran: the execution of the artifacts (joined with + when they differ) and the stages. */
  pipeline?: { execution: string; stages: string[] };
  rawBytes: number;
  storedBytes: number;
  startedAt: string;
  endedAt: string;
}

/** Backup ids sort by time: b-20261121T131500Z-3fa9. */
export function newBackupId(now: Date, rand: string): string {
  return `b-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${rand}`;
}
