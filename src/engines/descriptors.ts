// What each engine declares about itself, without loading it: its backup types, which of them
// chain, and which plan and restore options apply to each type. Core checks every option a
// user gives against this table before it connects anywhere, so an option that does not apply
// is a usage error, never silently ignored (and never a reason to fall back to a default).
import type { BackupType, SourceKind } from './types.js';

/** Plan options that select what a backup holds or how it is taken. */
export type PlanOptionFlag = '--databases' | '--all-databases' | '--tables' | '--match' | '--base-plan' | '--auto-full' | '--verify-prepare' | '--password-env' | '--password-file';

/** Where a restore writes. Exactly one is given. */
export type RestoreTargetFlag = '--to' | '--to-dir' | '--to-datadir';

/** Restore options besides the target. */
export type RestoreOptionFlag = '--database' | '--tables' | '--replace' | '--flush' | '--start' | '--port' | '--password-env' | '--password-file';

export interface RestoreSpec {
  /** The target flags this type accepts (exactly one must be given). */
  targets: readonly RestoreTargetFlag[];
  options: readonly RestoreOptionFlag[];
  /**
   * True when the engine sends data into the live target as it reads the artifact (a client
   * pipe, RESTORE commands). Core then proves every artifact whole (size + sha256) before the
   * first byte is sent. False when the engine builds the result aside (a temp file, a scratch
   * datadir) and puts it in place only after the stream checked out.
   */
  streamsIntoTarget: boolean;
  /** What the target is, for messages: "a MySQL server (--to mysql://USER@HOST:PORT)". */
  targetHint: string;
}

export interface TypeSpec {
  planOptions: readonly PlanOptionFlag[];
  /** Backups of this type extend a parent backup (a chain): retention keeps what they need. */
  chained: boolean;
  restore: RestoreSpec;
}

export interface EngineDescriptor {
  kind: SourceKind;
  defaultType: BackupType;
  types: Partial<Record<BackupType, TypeSpec>>;
}

const PW: readonly RestoreOptionFlag[] = ['--password-env', '--password-file'];
const PLAN_PW: readonly PlanOptionFlag[] = ['--password-env', '--password-file'];

const mysql: EngineDescriptor = {
  kind: 'mysql',
  defaultType: 'logical',
  types: {
    logical: {
      planOptions: ['--databases', '--all-databases', '--tables', ...PLAN_PW],
      chained: false,
      restore: { targets: ['--to'], options: ['--database', '--tables', '--replace', ...PW], streamsIntoTarget: true, targetHint: '--to mysql://USER@HOST:PORT' },
    },
    physical: {
      planOptions: ['--verify-prepare', ...PLAN_PW],
      chained: false,
      restore: { targets: ['--to-datadir'], options: ['--start', '--port'], streamsIntoTarget: false, targetHint: '--to-datadir DIR (an empty directory)' },
    },
    incremental: {
      planOptions: ['--base-plan', '--auto-full', '--verify-prepare', ...PLAN_PW],
      chained: true,
      restore: { targets: ['--to-datadir'], options: ['--start', '--port'], streamsIntoTarget: false, targetHint: '--to-datadir DIR (an empty directory)' },
    },
  },
};

const redis: EngineDescriptor = {
  kind: 'redis',
  defaultType: 'logical',
  types: {
    logical: {
      planOptions: ['--databases', '--match', ...PLAN_PW],
      chained: false,
      restore: { targets: ['--to'], options: ['--replace', '--flush', ...PW], streamsIntoTarget: true, targetHint: '--to redis://HOST:PORT/DB' },
    },
    snapshot: {
      planOptions: [...PLAN_PW],
      chained: false,
      restore: { targets: ['--to-dir'], options: ['--replace'], streamsIntoTarget: false, targetHint: '--to-dir DIR (dump.rdb is written there)' },
    },
  },
};

const sqliteSnapshot: TypeSpec = {
  planOptions: [],
  chained: false,
  restore: { targets: ['--to'], options: ['--replace'], streamsIntoTarget: false, targetHint: '--to sqlite:///PATH' },
};

const DESCRIPTORS: Partial<Record<SourceKind, EngineDescriptor>> = {
  mysql,
  redis,
  sqlite: { kind: 'sqlite', defaultType: 'snapshot', types: { snapshot: sqliteSnapshot } },
  catalog: { kind: 'catalog', defaultType: 'snapshot', types: { snapshot: sqliteSnapshot } },
};

export function descriptorOf(kind: string): EngineDescriptor | undefined {
  return DESCRIPTORS[kind as SourceKind];
}
