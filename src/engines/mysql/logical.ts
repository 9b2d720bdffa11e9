// MySQL/MariaDB logical backups (mysqldump / mariadb-dump -> one SQL stream) and restores
// (the SQL stream, optionally filtered/renamed, piped into the mariadb/mysql client).
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execaChild } from '../../pipeline/child.js';
import { DbsError, describeError } from '../../errors.js';
import { redactText } from '../../secret.js';
import type { ArtifactReader, EngineRunContext, ProbeInfo, RestoreOutcome } from '../types.js';
import type { LogicalBackupFacts, MysqlBackupOutcome, MysqlBackupRequest, MysqlRestoreOptions, MysqlRestoreRequest, MysqlSelection, MysqlVerifyRequest } from './types.js';
import {
  connTarget,
  describeAddress,
  describeTarget,
  quoteIdent,
  rows,
  serverInfo,
  toolEnv,
  withConnection,
  writeOptionFile,
  type ConnTarget,
} from './conn.js';
import { buildDumpArgs, DumpAccount, DumpGuard, DumpView, isToolErrorLine, tableLabel, type DumpPlan } from './dump.js';
import { collectStderr, feedStdin, spawnStreamingTool, storeToolOutput } from '../tool-stream.js';
import { createSqlFilter, type SqlFilterOptions } from './filter.js';
import {
  binlogPlan,
  checkPrivileges,
  readGrants,
  resolveSelection,
  splitTableName,
  SYSTEM_SCHEMAS,
} from './schema.js';
import { chooseTool, type ResolvedTool } from './tools.js';
import { TargetGuard } from './target-guard.js';

/** The artifact name of a logical backup: one SQL stream. */
export const DUMP_ARTIFACT = 'dump';

// ---------------------------------------------------------------------------------------------
// Probe

export async function probeMysql(
  source: import('../types.js').Endpoint,
  selection: MysqlSelection,
  signal: AbortSignal,
  egress?: import('../types.js').Egress,
): Promise<ProbeInfo> {
  const t = connTarget(source, egress);
  return withConnection(t, 'source', signal, async (conn) => {
    const server = await serverInfo(conn);
    const res = await resolveSelection(conn, selection);
    const grants = await readGrants(conn, server.flavor);
    const priv = checkPrivileges(grants, res, server.flavor);
    const binlog = binlogPlan(server.logBin, server.flavor, server.flavor, grants);
    const problems = [...res.missing, ...priv.problems];
    if (res.databases.length === 0 && res.missing.length === 0) {
      problems.push(`databases to back up do not exist on ${describeAddress(t)} (it holds only system schemas)`);
    }
    const warnings = [...priv.warnings];
    if (server.logBin && !binlog.record && binlog.reason) warnings.push(binlog.reason);
    return {
      flavor: server.flavor,
      serverVersion: server.version,
      problems,
      facts: {
        logBin: server.logBin,
        binlogCoordinates: binlog.record,
        databases: res.databases,
        objects: res.objects.length,
        tableSubset: res.tableSubset,
        sizeBytes: res.sizeBytes,
        warnings,
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Backup

/** Facts a logical backup records in the manifest (read back by restore). */

export type { LogicalBackupFacts };

export async function backupLogical(req: MysqlBackupRequest, ctx: EngineRunContext): Promise<MysqlBackupOutcome> {
  const t = connTarget(req.source, ctx.egress);
  const what = describeTarget(t);
  const secrets = [t.password];
  const log = (line: string): void => ctx.log(redactText(line, secrets));
  if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', `the backup of ${what} was interrupted`);
  // mysql2 binds to the gateway address (conn.ts); the dump tool has no option for it.
  if (t.localAddress) log(`the dump tool cannot bind to the gateway address ${t.localAddress}: its connection leaves from this host's default address (dbs's own connections leave from ${t.localAddress})`);

  const { server, res, grants } = await withConnection(t, 'source', ctx.signal, async (conn) => {
    const server = await serverInfo(conn);
    const res = await resolveSelection(conn, req.selection);
    const grants = await readGrants(conn, server.flavor);
    return { server, res, grants };
  });
  if (res.missing.length > 0) {
    throw new DbsError('SOURCE_NOT_FOUND', `${res.missing[0]} on ${describeAddress(t)}${res.missing.length > 1 ? ` (and ${res.missing.length - 1} more)` : ''}`, {
      hint: "check the plan's databases and tables",
      details: { missing: res.missing },
    });
  }
  if (res.databases.length === 0) {
    throw new DbsError('SOURCE_NOT_FOUND', `there is no database to back up on ${describeAddress(t)}`, {
      hint: 'create a database first, or name the databases to back up',
    });
  }
  const priv = checkPrivileges(grants, res, server.flavor);
  if (priv.problems.length > 0) {
    throw new DbsError('PERMISSION_DENIED', `${what}: ${priv.problems[0]}`, {
      hint: 'grant the backup user SELECT, SHOW VIEW, TRIGGER and EVENT on the selected databases',
      details: { problems: priv.problems },
    });
  }
  for (const w of priv.warnings) log(`warning: ${w}`);

  const { tool, warning } = await chooseTool('dump', server.flavor);
  if (warning) log(`warning: ${warning}`);
  const binlog = binlogPlan(server.logBin, server.flavor, tool.flavor, grants);
  if (server.logBin && !binlog.record && binlog.reason) log(`warning: ${binlog.reason}`);

  const plan: DumpPlan = {
    databases: res.databases,
    ignoreTables: res.ignoreTables,
    routinesAndEvents: !res.tableSubset,
    binlog: binlog.record,
  };
  log(
    `${tool.name} ${tool.version} of ${res.databases.length} database(s), ${res.objects.length} table(s)/view(s) ` +
      `from ${server.flavor} ${server.version} at ${describeAddress(t)}`,
  );

  const optionFile = await writeOptionFile(ctx.tmpDir, t);
  try {
    const args = buildDumpArgs(tool, optionFile.path, plan);
    // The tool's --verbose lines on stderr: its account of every table (see DumpAccount).
    const account = new DumpAccount(res.databases);
    // mariadb-dump's account is known (DumpAccount): its guard needs only the dump's edges,
    // which lets the dump go to the pool without crossing Node. Another tool's account is
    // not trusted: its guard reads the whole dump (its section titles).
    const guardMode = tool.flavor === 'mariadb' ? 'edges' : 'stream';
    const { guard } = await storeToolOutput(
      req.sink,
      DUMP_ARTIFACT,
      { extension: '.sql', guard: guardMode, ...(res.sizeBytes > 0 ? { sizeHint: res.sizeBytes } : {}) },
      (stdout) => {
        const tool_ = spawnStreamingTool(tool.path, args, {
          stdout,
          signal: ctx.signal,
          env: toolEnv(),
          log,
          secrets,
          stdoutBuffer: 1 << 20,
          clean: (line) => (account.line(line) ? '' : line),
        });
        return { tool: tool_, guard: new DumpGuard({ toolName: tool.name, exit: tool_.exit, stderrTail: () => [...tool_.stderr.tail], what, account }) };
      },
      { signal: ctx.signal, what },
    );

    const idx = guard.index;
    const binlogFacts = binlog.record ? guard.binlog() : undefined;
    if (binlog.record && !binlogFacts) log('warning: the dump carries no binlog coordinates');
    // What the dump holds, from the stream alone: its own section titles when the guard read
    // the whole dump, else the tool's account of each table, which must then be understood.
    const accountProblem = guard.whole ? undefined : account.problem();
    if (accountProblem !== undefined) {
      throw new DbsError('BACKUP_FAILED', `${what}: cannot tell which tables the dump holds: ${accountProblem}`, {
        hint: 'report this with the task log; DBS_EXECUTION=node does not help (the guard mode is chosen by the dump tool)',
      });
    }
    const listed: Pick<LogicalBackupFacts, 'databases' | 'tables' | 'views'> = guard.whole
      ? { databases: [...idx.databases], tables: [...idx.tables], views: [...idx.views] }
      : { databases: [...res.databases], tables: [...account.tables], views: [...account.views] };
    const leftOut = guard.whole ? idx.dataLeftOut : account.dataLeftOut;
    for (const l of leftOut) log(`warning: the dump holds the structure of ${tableLabel(l)} but not its rows: its engine${l.engine ? ` (${l.engine})` : ''} keeps them elsewhere`);
    const facts: LogicalBackupFacts = {
      flavor: server.flavor,
      ...listed,
      tableSubset: res.tableSubset,
      routines: !res.tableSubset,
      events: !res.tableSubset,
      ...(binlogFacts ? { binlog: binlogFacts } : {}),
      dumpBytes: guard.bytes,
    };
    log(`dump complete: ${guard.bytes} bytes, ${facts.tables.length} table(s)/view(s) in ${facts.databases.length} database(s)` + (binlogFacts ? `, binlog ${binlogFacts.file}:${binlogFacts.position}` : ''));
    return {
      serverVersion: server.version,
      toolName: tool.name,
      toolVersion: tool.version,
      facts,
    };
  } finally {
    await optionFile.remove().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Restore

export interface RestorePlan {
  /** The filter to apply; undefined: the dump goes to the client as it is. */
  filter?: SqlFilterOptions;
  /** The tables asked for ([db, name] as in the backup), when restoring some tables only. */
  tables?: Array<[string, string]>;
  /** Target [db, name] pairs the restore writes; undefined when the backup does not tell. */
  targetObjects?: Array<[string, string]>;
  /** Target databases the restore writes into. */
  targetDatabases: string[];
}

function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}

/**
 * Works out, from the backup's facts (databases, tables) and the restore options, what to keep
 * of the dump and which target tables it writes. Throws NOT_FOUND for a table/database that is
 * not in the backup.
 */
export function planRestore(facts: Record<string, unknown>, selection: MysqlSelection, options: MysqlRestoreOptions): RestorePlan {
  const dbs = strings(facts['databases']) ?? (selection.all ? undefined : selection.databases.length > 0 ? selection.databases : undefined);
  const tableNames = strings(facts['tables']);
  // "db.name" strings split against the known databases (names may contain dots).
  const dbSet = new Set(dbs ?? []);
  const objects: Array<[string, string]> | undefined = tableNames?.map((n) => {
    const s = splitTableName(n, (db) => dbSet.has(db));
    return s ?? ['', n];
  });
  const objectKeys = new Set(objects?.map(([d, n]) => `${d}\u0000${n}`));

  const rename = options.renameDatabase;
  if (rename) {
    if (!rename.from || !rename.to) throw new DbsError('INVALID_ARGUMENT', 'renaming a database needs both names (from and to)');
    if (dbs && !dbs.includes(rename.from)) {
      throw new DbsError('NOT_FOUND', `database \`${rename.from}\` is not in the backup (it holds: ${dbs.map((d) => `\`${d}\``).join(', ') || 'nothing'})`, {
        hint: 'name a database of the backup',
      });
    }
  }
  const mapDb = (db: string): string => (rename && db === rename.from ? rename.to : db);
  const renameMap = rename ? { [rename.from]: rename.to } : undefined;

  if (options.tables && options.tables.length > 0) {
    const pairs: Array<[string, string]> = [];
    const missing: string[] = [];
    for (const name of options.tables) {
      const exists = (db: string, t: string): boolean => objectKeys.has(`${db}\u0000${t}`);
      let split = splitTableName(name, exists);
      // With a rename, tables may be named under the new database name.
      if (rename && split && !exists(split[0], split[1]) && split[0] === rename.to && exists(rename.from, split[1])) {
        split = [rename.from, split[1]];
      }
      if (!split) throw new DbsError('INVALID_ARGUMENT', `table "${name}" must be given as database.table`);
      if (objects && !exists(split[0], split[1])) {
        missing.push(name);
        continue;
      }
      if (rename && split[0] !== rename.from) {
        throw new DbsError('INVALID_ARGUMENT', `table ${name} is not in database \`${rename.from}\`, which is being renamed`, {
          hint: 'with a database rename, restore only tables of that database',
        });
      }
      if (!pairs.some(([d, t]) => d === split[0] && t === split[1])) pairs.push(split);
    }
    if (missing.length > 0) {
      throw new DbsError('NOT_FOUND', `not in the backup: ${missing.join(', ')}`, {
        hint: 'list the tables of the backup with `dbs backup show`',
        details: { missing },
      });
    }
    return {
      filter: { tables: pairs, ...(renameMap ? { rename: renameMap } : {}) },
      tables: pairs,
      targetObjects: pairs.map(([d, t]) => [mapDb(d), t]),
      targetDatabases: [...new Set(pairs.map(([d]) => mapDb(d)))],
    };
  }
  if (rename) {
    return {
      filter: { databases: [rename.from], rename: renameMap ?? {} },
      ...(objects ? { targetObjects: objects.filter(([d]) => d === rename.from).map(([, t]) => [rename.to, t] as [string, string]) } : {}),
      targetDatabases: [rename.to],
    };
  }
  return {
    ...(objects ? { targetObjects: objects } : {}),
    targetDatabases: dbs ?? [],
  };
}

/** Objects of the list that exist on the server (tables, views, sequences). */
async function existingObjects(
  conn: import('mysql2/promise').Connection,
  objects: Array<[string, string]>,
): Promise<string[]> {
  const dbs = [...new Set(objects.map(([d]) => d))];
  if (dbs.length === 0) return [];
  const r = await rows<{ s: string; n: string }>(
    conn,
    'SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?)',
    [dbs],
  );
  const there = new Set(r.map((x) => `${x.s}\u0000${x.n}`));
  return objects.filter(([d, t]) => there.has(`${d}\u0000${t}`)).map(([d, t]) => `${quoteIdent(d)}.${quoteIdent(t)}`);
}

/** Databases of the list that exist and hold at least one table. */
async function nonEmptyDatabases(conn: import('mysql2/promise').Connection, dbs: string[]): Promise<string[]> {
  if (dbs.length === 0) return [];
  const r = await rows<{ s: string }>(
    conn,
    'SELECT DISTINCT TABLE_SCHEMA AS s FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?)',
    [dbs],
  );
  return r.map((x) => quoteIdent(String(x.s)));
}

export async function restoreLogical(req: MysqlRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
  const t = connTarget(req.target, ctx.egress);
  const what = describeTarget(t);
  const secrets = [t.password];
  const log = (line: string): void => ctx.log(redactText(line, secrets));
  if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', `the restore into ${what} was interrupted`);

  const artifact = dumpArtifact(req.artifacts, 'RESTORE_FAILED');
  const plan = planRestore(req.facts, req.selection, req.options);
  for (const db of plan.targetDatabases) {
    if (SYSTEM_SCHEMAS.has(db) && db !== 'mysql') {
      throw new DbsError('INVALID_ARGUMENT', `cannot restore into the system schema \`${db}\``);
    }
  }

  // Refuse BEFORE writing anything when the restore would overwrite existing tables.
  const guard = new TargetGuard();
  const server = await withConnection(t, 'target', ctx.signal, async (conn) => {
    const server = await serverInfo(conn);
    if (!req.options.replace) {
      let existing: string[];
      if (plan.targetObjects) existing = await existingObjects(conn, plan.targetObjects);
      else if (plan.targetDatabases.length > 0) existing = await nonEmptyDatabases(conn, plan.targetDatabases);
      else {
        throw new DbsError('REFUSED', `cannot tell which tables this backup would write into ${what}`, {
          hint: 'add --replace to restore anyway (existing tables of the same name are overwritten)',
        });
      }
      if (existing.length > 0) {
        const shown = existing.slice(0, 10).join(', ') + (existing.length > 10 ? `, +${existing.length - 10} more` : '');
        throw new DbsError(
          'ALREADY_EXISTS',
          `${existing.length} ${plan.targetObjects ? 'table(s)' : 'non-empty database(s)'} that the restore would write already exist on ${describeAddress(t)}: ${shown}`,
          {
            hint: 'add --replace to overwrite them, or restore under another database name',
            details: { existing },
          },
        );
      }
    }
    // What the target holds now, so that a failed restore can put it back (and with --replace,
    // the objects it overwrites are moved aside until it succeeded).
    await guard.prepare(conn, { databases: plan.targetDatabases, ...(plan.targetObjects ? { objects: plan.targetObjects } : {}), replace: Boolean(req.options.replace) });
    return server;
  });

  const { tool, warning } = await chooseTool('client', server.flavor);
  if (warning) log(`warning: ${warning}`);
  // MariaDB's dump tools start with a sandbox-mode line that MySQL's client rejects.
  const dropSandboxLine = tool.flavor === 'mysql';
  const filterOptions: SqlFilterOptions | undefined =
    plan.filter || dropSandboxLine ? { ...(plan.filter ?? {}), dropSandboxLine } : undefined;
  log(
    `restoring into ${server.flavor} ${server.version} at ${describeAddress(t)} with ${tool.name} ${tool.version}` +
      (req.options.tables?.length ? `: tables ${req.options.tables.join(', ')}` : '') +
      (req.options.renameDatabase ? ` (database ${req.options.renameDatabase.from} as ${req.options.renameDatabase.to})` : ''),
  );

  const optionFile = await writeOptionFile(ctx.tmpDir, t);
  let out: RestoreOutcome;
  try {
    out = await runClient(tool, optionFile.path, artifact, filterOptions, plan, t, ctx, log);
  } catch (e) {
    throw await undoRestore(guard, t, e, log);
  } finally {
    await optionFile.remove().catch(() => undefined);
  }
  await withConnection(t, 'target', AbortSignal.timeout(120_000), (conn) => guard.commit(conn));
  return out;
}

/**
 * Puts the target back after a failed restore (even when interrupted: with a fresh signal and
 * a time limit) and returns the error to throw, saying whether the target is as it was.
 */
async function undoRestore(guard: TargetGuard, t: ConnTarget, e: unknown, log: (line: string) => void): Promise<unknown> {
  try {
    await withConnection(t, 'target', AbortSignal.timeout(120_000), (conn) => guard.rollback(conn));
    log('the restore failed; the target was put back as it was');
    if (e instanceof DbsError) return new DbsError(e.code, `${e.message}; the target was put back as it was`, { hint: e.hint?.replace(/;?\s*the target may hold a partial restore/, '') || undefined, cause: e.cause, details: { ...e.details, targetRestored: true } });
    return e;
  } catch (undoErr) {
    const held = guard.describeHeld();
    log(`putting the target back failed: ${describeError(undoErr)}`);
    const msg = e instanceof DbsError ? e.message : describeError(e);
    return new DbsError(e instanceof DbsError ? e.code : 'RESTORE_FAILED', `${msg}; putting the target back failed too: ${describeError(undoErr)}`, {
      hint: `the target holds a partial restore${held ? `; ${held}` : ''}`,
      cause: e,
      details: { targetRestored: false },
    });
  }
}

/** The backup's dump artifact (by name, or the only one). */
function dumpArtifact(artifacts: ArtifactReader[], code: 'RESTORE_FAILED' | 'VERIFY_FAILED'): ArtifactReader {
  const artifact = artifacts.find((a) => a.name === DUMP_ARTIFACT) ?? (artifacts.length === 1 ? artifacts[0] : undefined);
  if (!artifact) {
    throw new DbsError(code, `the backup has no "${DUMP_ARTIFACT}" artifact`, {
      details: { artifacts: artifacts.map((a) => a.name) },
    });
  }
  return artifact;
}

/**
 * `backup verify --prepare` of a logical backup: reads the dump back (sha256 and decompression
 * on the way) and checks that it is a whole dump of what the manifest names: the tool's header
 * at the start, the trailer at the end, a section for every database, and a data section
 * after every table's structure (unless its engine keeps its rows elsewhere). No server is
 * needed.
 * (A dump stored without its beginning, as dbs did before session 5 when the tool wrote before
 * the hand-off, passes the sha256 check and fails here.)
 */
export async function verifyLogical(req: MysqlVerifyRequest, ctx: EngineRunContext): Promise<{ facts: Record<string, unknown> }> {
  const artifact = dumpArtifact(req.artifacts, 'VERIFY_FAILED');
  const view = new DumpView();
  await pipeline(
    await artifact.open(),
    new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _e, cb) {
        view.feed(chunk);
        cb();
      },
    }),
    { signal: ctx.signal },
  );
  const facts = req.facts;
  const problems: string[] = [];
  const incomplete = view.incomplete();
  if (incomplete) problems.push(incomplete);
  const missing = (facts.databases ?? []).filter((d) => !view.index.databases.includes(d));
  if (missing.length > 0) problems.push(`it has no section for database(s) ${missing.join(', ')}`);
  const noRows = view.missingData() ?? [];
  if (noRows.length > 0) {
    const names = noRows.slice(0, 10).map(tableLabel).join(', ') + (noRows.length > 10 ? ` and ${noRows.length - 10} more` : '');
    problems.push(`it holds the structure of ${names} without ${noRows.length === 1 ? 'its' : 'their'} data section (the rows are missing)`);
  }
  if (problems.length > 0) {
    throw new DbsError('VERIFY_FAILED', `the dump is not whole: ${problems.join('; ')}`, {
      hint: 'this backup cannot be restored; take a new one (dbs plan run) and verify the others',
    });
  }
  return { facts: { dumpBytes: view.bytes, databases: view.index.databases.length, tables: view.index.tables.length, views: view.index.views.length } };
}

/** What to do about a client that failed with `line` (its last error line). */
function restoreHint(line: string): string {
  if (/gone away|Lost connection|\b(2006|2013|1153)\b|bigger than 'max_allowed_packet'/i.test(line)) {
    return 'the server closed the connection: check its error log (did it crash or restart?) and that its max_allowed_packet holds the largest statement of the dump; the target may hold a partial restore';
  }
  return 'the target may hold a partial restore; see the log for the client\'s messages';
}

/** The client's argv: option file first; no secret in it. */
export function buildClientArgs(optionFile: string): string[] {
  return [
    `--defaults-file=${optionFile}`,
    // \0 and \r in the dump are data, not client commands.
    '--binary-mode',
    '--default-character-set=utf8mb4',
    '--max-allowed-packet=1G',
    '--batch',
  ];
}

async function runClient(
  tool: ResolvedTool,
  optionFile: string,
  artifact: ArtifactReader,
  filterOptions: SqlFilterOptions | undefined,
  plan: RestorePlan,
  t: ConnTarget,
  ctx: EngineRunContext,
  log: (line: string) => void,
): Promise<RestoreOutcome> {
  const what = describeTarget(t);
  const secrets = [t.password];
  const source = await artifact.open();
  const sub = execaChild(tool.path, buildClientArgs(optionFile), {
    stdin: 'pipe',
    stdout: 'ignore',
    stderr: 'pipe',
    buffer: false,
    encoding: 'buffer',
    reject: false,
    cancelSignal: ctx.signal,
    forceKillAfterDelay: 5_000,
    env: toolEnv(),
    extendEnv: false,
  });
  const stderr = collectStderr(sub, log);
  const filter = filterOptions ? createSqlFilter(filterOptions) : undefined;
  const { counter, piping, inputError: inputErrorOf } = feedStdin(sub, source, filter ? [filter] : []);
  const r = await sub;
  await stderr.done;
  const pipeErr = await piping;
  const inputError = inputErrorOf();

  const tail = [...stderr.tail];
  const lastErr = tail.filter((l) => isToolErrorLine(l)).at(-1) ?? tail.at(-1);
  const details = {
    tool: tool.name,
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(r.signal ? { signal: r.signal } : {}),
    stderrTail: tail,
    bytesRead: counter.bytes,
  };
  if (r.isCanceled || ctx.signal.aborted) {
    throw new DbsError('INTERRUPTED', `the restore into ${what} was interrupted; ${tool.name} was stopped`, { details });
  }
  if (inputError !== undefined) {
    throw new DbsError('RESTORE_FAILED', `reading the backup failed after ${counter.bytes} bytes: ${redactText(describeError(inputError), secrets)}`, {
      cause: inputError,
      hint: 'the restore into the target is incomplete; check the backup with `dbs backup verify`',
      details,
    });
  }
  if (r.exitCode !== 0 || r.signal) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode ?? 'unknown'}`;
    throw new DbsError('RESTORE_FAILED', `restore into ${what} failed: ${tool.name} ${how}${lastErr ? `: ${lastErr}` : ''}`, {
      hint: restoreHint(lastErr ?? ''),
      details,
    });
  }
  if (tail.some((l) => /^ERROR\b/.test(l))) {
    throw new DbsError('RESTORE_FAILED', `restore into ${what} failed: ${lastErr}`, { details });
  }
  if (pipeErr !== undefined) {
    throw new DbsError('RESTORE_FAILED', `restore into ${what} failed: ${redactText(describeError(pipeErr), secrets)}`, {
      cause: pipeErr,
      details,
    });
  }
  if (filter && plan.tables) {
    const lost = plan.tables.filter(([d, n]) => !filter.kept.has(`${d}.${n}`)).map(([d, n]) => `${d}.${n}`);
    if (lost.length > 0) {
      throw new DbsError('RESTORE_FAILED', `not found in the dump: ${lost.join(', ')}`, {
        hint: 'the backup\'s facts and its dump disagree; restore the whole database instead',
        details: { ...details, missing: lost },
      });
    }
  }
  const facts: Record<string, unknown> = {
    client: tool.name,
    clientVersion: tool.version,
    databases: filter ? [...filter.keptDatabases].map((d) => (filterOptions?.rename as Record<string, string> | undefined)?.[d] ?? d) : plan.targetDatabases,
    objects: filter ? filter.kept.size : (plan.targetObjects?.length ?? undefined),
    filtered: filter !== undefined,
  };
  log(`restore complete: ${counter.bytes} bytes of SQL applied`);
  return { bytes: counter.bytes, facts };
}

