// The MySQL/MariaDB engine. Logical backups (mysqldump / mariadb-dump, one consistent snapshot
// as one SQL stream) live in logical.ts; physical and incremental backups (mariabackup /
// xtrabackup, one xbstream) in physical.ts. Both plug in below by backup type.
//
// Helper modules: mysql-conn (connections, option files, error mapping), mysql-tools (finding
// the stock tools), mysql-schema (selection and privileges on a live server), mysql-dump (dump
// argv and the stream guard), mysql-filter (filtering/renaming a dump while restoring),
// mysql-physical-files (argv, metadata files, LSNs, server identity of physical backups),
// mysql-physical-stream (the xbstream framing check and its guard).
import { DbsError } from '../../errors.js';
import type { BackupType, Egress, Endpoint, Engine, EngineRunContext, ProbeInfo, RestoreOutcome, ToolInfo } from '../types.js';
import type { MysqlBackupOutcome, MysqlBackupRequest, MysqlFacts, MysqlRestoreOptions, MysqlRestoreRequest, MysqlSelection, MysqlVerifyRequest } from './types.js';
import { backupLogical, probeMysql, restoreLogical, verifyLogical } from './logical.js';
import { backupPhysical, listPhysicalTools, probePhysical } from './physical.js';
import { restorePhysical, verifyPreparePhysical } from './physical-restore.js';
import { listTools } from './tools.js';

export { DUMP_ARTIFACT, planRestore, type LogicalBackupFacts } from './logical.js';
export { PHYSICAL_ARTIFACT, type PhysicalBackupFacts } from './physical.js';

export class MysqlEngine implements Engine<MysqlSelection, MysqlFacts, MysqlRestoreOptions> {
  readonly kind = 'mysql' as const;
  readonly types: readonly BackupType[] = ['logical', 'physical', 'incremental'];

  async tools(): Promise<ToolInfo[]> {
    const [logical, physical] = await Promise.all([listTools(), listPhysicalTools()]);
    return [...logical, ...physical];
  }

  /**
   * Probes for a logical backup of the selection; with type physical/incremental (an optional
   * extra argument until the Engine interface carries the type), for a physical backup: the
   * backup tool, the datadir on this host, RELOAD/PROCESS.
   */
  probe(source: Endpoint, selection: MysqlSelection, ctx: { signal: AbortSignal; type?: BackupType; egress?: Egress }): Promise<ProbeInfo> {
    if (ctx.type === 'physical' || ctx.type === 'incremental') return probePhysical(source, selection, ctx.signal, ctx.egress);
    return probeMysql(source, selection, ctx.signal, ctx.egress);
  }

  async backup(req: MysqlBackupRequest, ctx: EngineRunContext): Promise<MysqlBackupOutcome> {
    switch (req.type) {
      case 'logical':
        return backupLogical(req, ctx);
      case 'physical':
      case 'incremental':
        return backupPhysical(req, ctx);
      default:
        throw unsupported(req.type);
    }
  }

  async restore(req: MysqlRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
    switch (req.type) {
      case 'logical':
        return restoreLogical(req, ctx);
      case 'physical':
      case 'incremental':
        return restorePhysical(req, ctx);
      default:
        throw unsupported(req.type);
    }
  }

  /**
   * Proves a backup restorable without a target: a physical chain is extracted and prepared in
   * the scratch dir; a logical dump is read back and checked to be whole.
   */
  async verifyPrepare(
    req: MysqlVerifyRequest,
    ctx: EngineRunContext,
  ): Promise<{ facts: Record<string, unknown> }> {
    switch (req.type) {
      case 'logical':
        return verifyLogical(req, ctx);
      case 'physical':
      case 'incremental':
        return verifyPreparePhysical(req, ctx);
      default:
        throw unsupported(req.type);
    }
  }
}

function unsupported(type: BackupType): DbsError {
  return new DbsError('INVALID_ARGUMENT', `mysql sources do not support ${type} backups`, {
    hint: 'use --type logical, physical or incremental',
  });
}

export function createMysqlEngine(): MysqlEngine {
  return new MysqlEngine();
}
