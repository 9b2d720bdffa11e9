// The MySQL/MariaDB engine. Logical backups (mysqldump / mariadb-dump, one consistent snapshot
// as one SQL stream) live in mysql-logical.ts; physical backups (mariabackup / xtrabackup)
// will live next to it and plug in below by backup type.
//
// Helper modules: mysql-conn (connections, option files, error mapping), mysql-tools (finding
// the stock tools), mysql-schema (selection and privileges on a live server), mysql-dump (dump
// argv and the stream guard), mysql-filter (filtering/renaming a dump while restoring).
import { DbsError } from '../errors.js';
import type {
  BackupOutcome,
  BackupRequest,
  BackupType,
  Endpoint,
  Engine,
  EngineRunContext,
  ProbeInfo,
  RestoreOutcome,
  RestoreRequest,
  Selection,
  ToolInfo,
} from './types.js';
import { backupLogical, probeMysql, restoreLogical } from './mysql-logical.js';
import { listTools } from './mysql-tools.js';

export { DUMP_ARTIFACT, planRestore, type LogicalBackupFacts } from './mysql-logical.js';

export class MysqlEngine implements Engine {
  readonly kind = 'mysql' as const;
  readonly types: readonly BackupType[] = ['logical'];

  tools(): Promise<ToolInfo[]> {
    return listTools();
  }

  probe(source: Endpoint, selection: Selection, ctx: { signal: AbortSignal }): Promise<ProbeInfo> {
    return probeMysql(source, selection, ctx.signal);
  }

  async backup(req: BackupRequest, ctx: EngineRunContext): Promise<BackupOutcome> {
    switch (req.type) {
      case 'logical':
        return backupLogical(req, ctx);
      default:
        throw unsupported(req.type);
    }
  }

  async restore(req: RestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
    switch (req.type) {
      case 'logical':
        return restoreLogical(req, ctx);
      default:
        throw unsupported(req.type);
    }
  }
}

function unsupported(type: BackupType): DbsError {
  return new DbsError('INVALID_ARGUMENT', `mysql sources do not support ${type} backups (yet)`, {
    hint: 'use --type logical',
  });
}

export function createMysqlEngine(): MysqlEngine {
  return new MysqlEngine();
}
