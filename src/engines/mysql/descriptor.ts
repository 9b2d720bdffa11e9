// The MySQL/MariaDB engine as core sees it, without loading it (see ../descriptor.ts).
import { DbsError } from '../../errors.js';
import {
  decodeListSelection,
  jsonObject,
  PLAN_PW,
  PW,
  splitList,
  stringList,
  type EngineDescriptor,
  type SelectionFlags,
  type TypeSpec,
} from '../descriptor.js';
import type { BackupType } from '../types.js';
import type { MysqlFacts, MysqlRestoreOptions, MysqlSelection } from './types.js';
import { isTableName, MYSQL_USER_MAX, mysqlIdentifier } from './names.js';

const physicalRestore = { targets: ['--to-datadir'], options: ['--start', '--port'], streamsIntoTarget: false, targetHint: '--to-datadir DIR (an empty directory)' } as const;
const PREPARED = 'extracted and prepared with its chain';

const types: Partial<Record<BackupType, TypeSpec>> = {
  logical: {
    planOptions: ['--databases', '--all-databases', '--tables', ...PLAN_PW],
    restore: { targets: ['--to'], options: ['--database', '--tables', '--replace', ...PW], streamsIntoTarget: true, targetHint: '--to mysql://USER@HOST:PORT' },
    prepareCheck: 'dump read back whole (header, trailer, every database, a data section for every table)',
  },
  physical: {
    planOptions: ['--verify-prepare', ...PLAN_PW],
    chain: { role: 'full' },
    restore: physicalRestore,
    prepareCheck: PREPARED,
  },
  incremental: {
    planOptions: ['--base-plan', '--auto-full', '--verify-prepare', ...PLAN_PW],
    chain: { role: 'increment', full: 'physical' },
    restore: physicalRestore,
    prepareCheck: PREPARED,
  },
};

function parseSelection(i: SelectionFlags, type: BackupType): MysqlSelection {
  if (types[type]?.chain) {
    if (i.databases !== undefined || i.tables !== undefined) {
      throw new DbsError('USAGE', `a ${type} backup copies the whole server; --databases/--tables apply to logical backups`, { hint: 'drop them, or use --type logical' });
    }
    return { databases: [], all: true, tables: [] };
  }
  const databases = splitList(i.databases);
  const tables = splitList(i.tables);
  if (i.databases !== undefined && databases.length === 0) throw new DbsError('INVALID_ARGUMENT', '--databases is empty', { hint: 'e.g. --databases shop,crm' });
  if (i.allDatabases && (databases.length || tables.length)) throw new DbsError('USAGE', '--all-databases cannot be combined with --databases or --tables', { hint: 'choose one' });
  for (const d of databases) mysqlIdentifier(d, 'database', '--databases');
  for (const t of tables) {
    if (!isTableName(t)) throw new DbsError('INVALID_ARGUMENT', `--tables: ${JSON.stringify(t)} is not db.table`, { hint: 'e.g. --tables shop.orders,shop.customers' });
    const [db, table] = t.split('.');
    mysqlIdentifier(db, 'database', '--tables');
    mysqlIdentifier(table, 'table', '--tables');
  }
  if (!i.allDatabases && databases.length === 0 && tables.length === 0) {
    throw new DbsError('USAGE', 'choose what to back up: --databases a,b, --all-databases or --tables db.t1,db.t2', { hint: 'a MySQL plan needs a selection' });
  }
  // `databases` are whole databases; `tables` are single tables on top of them.
  return { databases, all: Boolean(i.allDatabases), tables };
}

function decodeFacts(json: unknown, where: string): MysqlFacts {
  const f = jsonObject(json, where) as MysqlFacts;
  if (f.databases !== undefined) stringList(f.databases, where, 'databases');
  if (f.tables !== undefined) stringList(f.tables, where, 'tables');
  if (f.lsn !== undefined) jsonObject(f.lsn, `${where} (lsn)`);
  if (f.server !== undefined) jsonObject(f.server, `${where} (server)`);
  return f;
}

function parseRename(v: string | undefined): MysqlRestoreOptions['renameDatabase'] {
  if (v === undefined) return undefined;
  const m = /^([^:\s]+):([^:\s]+)$/.exec(v);
  if (!m) throw new DbsError('INVALID_ARGUMENT', `--database ${JSON.stringify(v)} is not SRC:DST`, { hint: 'e.g. --database shop:shop_restored' });
  return { from: mysqlIdentifier(m[1], 'database', '--database'), to: mysqlIdentifier(m[2], 'database', '--database') };
}

export const mysqlDescriptor: EngineDescriptor<MysqlSelection, MysqlFacts, MysqlRestoreOptions> = {
  kind: 'mysql',
  title: 'MySQL/MariaDB',
  endpoint: {
    schemes: ['mysql', 'mariadb'],
    form: 'server',
    defaultPort: 3306,
    defaultUser: 'root',
    check(ep, flag) {
      if (ep.user !== undefined && ep.user.length > MYSQL_USER_MAX) {
        throw new DbsError('INVALID_ARGUMENT', `${flag}: the MySQL user name is longer than ${MYSQL_USER_MAX} characters`, { hint: 'e.g. mysql://backup@127.0.0.1:3306' });
      }
      if (ep.path !== undefined) mysqlIdentifier(ep.path, 'database', flag);
    },
  },
  doctor: true,
  defaultType: 'logical',
  types,
  asksSelection: true,
  tools: ['mariadb-dump', 'mysqldump', 'mariadb', 'mysql', 'mariabackup', 'xtrabackup', 'mbstream', 'xbstream'],
  parseSelection,
  decodeSelection: decodeListSelection,
  decodeFacts,
  parseRestore(f, b) {
    const renameDatabase = parseRename(f.database);
    const tables = f.tables ? splitList(f.tables) : undefined;
    for (const t of tables ?? []) if (!isTableName(t)) throw new DbsError('INVALID_ARGUMENT', `--tables: ${JSON.stringify(t)} is not db.table`, { hint: 'e.g. --tables shop.orders' });
    const dumped = b.facts.databases ?? b.selection.databases;
    if (renameDatabase && dumped.length && !dumped.includes(renameDatabase.from)) {
      throw new DbsError('NOT_FOUND', `backup ${b.id} holds no database ${JSON.stringify(renameDatabase.from)}`, { hint: `it holds: ${dumped.join(', ')}` });
    }
    const dumpedTables = b.facts.tables;
    if (tables && dumpedTables) {
      const missing = tables.filter((t) => !dumpedTables.includes(t));
      if (missing.length) throw new DbsError('NOT_FOUND', `backup ${b.id} holds no table ${missing.join(', ')}`, { hint: 'see its contents with: dbs backup show ID' });
    }
    return {
      options: {
        ...(tables ? { tables } : {}),
        ...(renameDatabase ? { renameDatabase } : {}),
        replace: Boolean(f.replace),
        ...(f.toDatadir !== undefined ? { toDatadir: f.toDatadir } : {}),
        ...(f.startPort !== undefined ? { start: { port: f.startPort } } : {}),
      },
      renames: renameDatabase !== undefined,
    };
  },
  async load() {
    const { MysqlEngine } = await import('./engine.js');
    return new MysqlEngine();
  },
};
