// Prometheus metrics from the catalog: one registry whose gauges are set from a snapshot of
// the catalog (Catalog.metricsRows: index lookups, no manifest read) each time they are read.
// The daemon serves them on GET /metrics (with prom-client's process metrics); `plan run
// --metrics-file F` writes them as a node_exporter textfile (F.<pid>.tmp, then a rename).
// Labels are plan, pool, engine, type, result, driver and version: bounded sets, never a task,
// backup or restore id. The names and what they mean are listed in the README ("Metrics").
import { closeSync, fsyncSync, openSync, statSync, accessSync, constants as fsc } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { basename, dirname, resolve } from 'node:path';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { DbsError } from '../errors.js';
import type { Catalog } from '../store/catalog.js';
import { VERSION } from '../version.js';

/** The results a plan's last run may have (the `result` label of dbs_plan_last_result). */
export const RUN_RESULTS = ['succeeded', 'failed', 'interrupted'] as const;

const PLAN_LABELS = ['plan', 'pool', 'engine', 'type'] as const;
const POOL_LABELS = ['pool', 'driver'] as const;

const millis = (iso: string | null | undefined): number | undefined => {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : undefined;
};
const seconds = (iso: string | null | undefined): number | undefined => {
  const ms = millis(iso);
  return ms === undefined ? undefined : ms / 1000;
};
/** End minus start in seconds (from whole milliseconds, so 41 ms is 0.041). */
const duration = (start: string | null, end: string | null): number | undefined => {
  const a = millis(start);
  const b = millis(end);
  return a === undefined || b === undefined ? undefined : Math.max(0, b - a) / 1000;
};

export interface CatalogMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** Sets every gauge from the catalog as it is now. */
  refresh(): void;
  /** refresh(), then the text exposition format. */
  text(): Promise<string>;
}

/**
 * A registry over the catalog. `processMetrics`: add prom-client's default process and Node
 * metrics (CPU, memory, event loop, handles) of this process: for the daemon, not for the
 * textfile of a process that is about to exit.
 */
export function catalogMetrics(catalog: Catalog, o: { processMetrics: boolean }): CatalogMetrics {
  const registry = new Registry();
  const g = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Gauge<L>({ name, help, labelNames, registers: [registry] });
  const plan = {
    paused: g('dbs_plan_paused', 'Whether the plan is paused (1) or active (0).', PLAN_LABELS),
    running: g('dbs_plan_running', 'Whether a task of the plan is running now (1) or not (0).', PLAN_LABELS),
    lastRun: g('dbs_plan_last_run_timestamp_seconds', 'End time of the newest task of the plan that ended (succeeded, failed or interrupted), Unix seconds.', PLAN_LABELS),
    lastResult: g('dbs_plan_last_result', 'Result of the newest ended task of the plan: 1 for its result, 0 for the others.', [...PLAN_LABELS, 'result']),
    lastDuration: g('dbs_plan_last_run_duration_seconds', 'Duration of the newest ended task of the plan (start to end), seconds.', PLAN_LABELS),
    lastSuccess: g('dbs_plan_last_success_timestamp_seconds', 'End time of the newest succeeded task of the plan, Unix seconds.', PLAN_LABELS),
    lastSuccessDuration: g('dbs_plan_last_success_duration_seconds', 'Duration of the newest succeeded task of the plan, seconds.', PLAN_LABELS),
    lastRaw: g('dbs_plan_last_success_raw_bytes', 'Bytes the source produced in the newest succeeded task of the plan (before compression and encryption).', PLAN_LABELS),
    lastStored: g('dbs_plan_last_success_stored_bytes', 'Bytes stored in the pool by the newest succeeded task of the plan.', PLAN_LABELS),
    lastCpu: g('dbs_plan_last_task_cpu_seconds', 'CPU seconds of the newest ended task of the plan: its programs, plus the dbs process while it ran (in a daemon: the whole process).', PLAN_LABELS),
    lastRss: g('dbs_plan_last_task_peak_rss_bytes', 'Peak RSS of the newest ended task of the plan: the dbs process plus its programs, bytes.', PLAN_LABELS),
    lastIn: g('dbs_plan_last_task_in_bytes', 'Bytes the newest ended task of the plan read from its source.', PLAN_LABELS),
    lastOut: g('dbs_plan_last_task_out_bytes', 'Bytes the newest ended task of the plan sent to its pool.', PLAN_LABELS),
    lastRestore: g('dbs_plan_last_restore_success_timestamp_seconds', 'End time of the newest succeeded restore of a backup of the plan, Unix seconds (only plans with one).', PLAN_LABELS),
  };
  const pool = {
    backups: g('dbs_pool_backups', 'Backups with a ready copy in the pool.', POOL_LABELS),
    raw: g('dbs_pool_raw_bytes', 'Raw bytes of the backups with a ready copy in the pool.', POOL_LABELS),
    stored: g('dbs_pool_stored_bytes', 'Stored bytes of the ready copies in the pool.', POOL_LABELS),
    online: g('dbs_pool_online', "Whether the pool answered (1) or not (0) when dbs last used or probed it; no sample while it is unknown.", POOL_LABELS),
    checked: g('dbs_pool_last_check_timestamp_seconds', 'When dbs last learned the pool status (a run, pool check, a daemon probe), Unix seconds.', POOL_LABELS),
    orphans: g('dbs_pool_orphan_uploads', 'Incomplete uploads left by dbs processes that died, found (and aborted) by the last sweep of the pool: pool check, the start of a run on it, the daemon start; no sample before the first sweep.', POOL_LABELS),
    orphansChecked: g('dbs_pool_orphan_uploads_check_timestamp_seconds', 'When the pool was last swept for orphan uploads, Unix seconds.', POOL_LABELS),
  };
  const info = g('dbs_build_info', 'Always 1; the version label is the dbs version.', ['version']);
  if (o.processMetrics) collectDefaultMetrics({ register: registry });

  const set = (gauge: Gauge<string>, labels: Record<string, string>, v: number | null | undefined) => {
    if (v !== undefined && v !== null && Number.isFinite(v)) gauge.set(labels, v);
  };
  const refresh = () => {
    const rows = catalog.metricsRows();
    for (const x of [...Object.values(plan), ...Object.values(pool)]) x.reset();
    info.reset();
    info.set({ version: VERSION }, 1);
    for (const p of rows.plans) {
      const l = { plan: p.name, pool: p.pool, engine: p.sourceKind, type: p.backupType };
      set(plan.paused, l, p.status === 'paused' ? 1 : 0);
      set(plan.running, l, p.running ? 1 : 0);
      if (p.lastRun) {
        set(plan.lastRun, l, seconds(p.lastRun.endedAt));
        for (const r of RUN_RESULTS) set(plan.lastResult, { ...l, result: r }, p.lastRun.status === r ? 1 : 0);
        set(plan.lastDuration, l, duration(p.lastRun.startedAt, p.lastRun.endedAt));
      }
      if (p.lastSuccess) {
        set(plan.lastSuccess, l, seconds(p.lastSuccess.endedAt));
        set(plan.lastSuccessDuration, l, duration(p.lastSuccess.startedAt, p.lastSuccess.endedAt));
        set(plan.lastRaw, l, p.lastSuccess.rawBytes);
        set(plan.lastStored, l, p.lastSuccess.storedBytes);
      }
      set(plan.lastRestore, l, seconds(p.lastRestoreAt));
      if (p.lastUsage) {
        set(plan.lastCpu, l, p.lastUsage.cpuSeconds);
        set(plan.lastRss, l, p.lastUsage.rssPeakBytes);
        set(plan.lastIn, l, p.lastUsage.bytesIn);
        set(plan.lastOut, l, p.lastUsage.bytesOut);
      }
    }
    for (const p of rows.pools) {
      const l = { pool: p.name, driver: p.type };
      set(pool.backups, l, p.backups);
      set(pool.raw, l, p.rawBytes);
      set(pool.stored, l, p.storedBytes);
      if (p.status !== 'unknown') set(pool.online, l, p.status === 'online' ? 1 : 0);
      set(pool.checked, l, seconds(p.checkedAt));
      set(pool.orphans, l, p.orphanUploads);
      set(pool.orphansChecked, l, seconds(p.orphansCheckedAt));
    }
  };
  return {
    registry,
    contentType: registry.contentType,
    refresh,
    async text() {
      refresh();
      return registry.metrics();
    },
  };
}

// ---- the textfile (node_exporter's textfile collector) --------------------------------------

/**
 * Checks a --metrics-file path before anything runs: a `.prom` file (the collector reads no
 * other) in a folder that exists and that this process may write. Returns the absolute path.
 */
export function checkMetricsFile(path: string, cwd: string): string {
  const abs = resolve(cwd, path);
  const hint = 'give a .prom file in the folder node_exporter reads (--collector.textfile.directory), e.g. --metrics-file /var/lib/node_exporter/textfile/dbs.prom';
  if (!basename(abs).endsWith('.prom') || basename(abs) === '.prom') {
    throw new DbsError('INVALID_PATH', `--metrics-file ${path}: node_exporter's textfile collector reads only files whose names end in .prom`, { hint });
  }
  const dir = dirname(abs);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // missing
  }
  if (!isDir) throw new DbsError('INVALID_PATH', `--metrics-file ${path}: the folder ${dir} does not exist`, { hint });
  try {
    accessSync(dir, fsc.W_OK);
  } catch {
    throw new DbsError('INVALID_PATH', `--metrics-file ${path}: this user may not write in ${dir}`, { hint });
  }
  try {
    if (statSync(abs).isDirectory()) throw new DbsError('INVALID_PATH', `--metrics-file ${path} is a folder`, { hint });
  } catch (e) {
    if (e instanceof DbsError) throw e;
  }
  return abs;
}

/**
 * Writes `text` to `path` so that a reader sees the old file or the new one, never a part:
 * into `<path>.<pid>.tmp` (the collector ignores it: no .prom ending), fsync, rename over
 * `path`, fsync the folder. Mode 0644: metrics hold no secret and node_exporter runs as
 * another user.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.chmod(0o644);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new DbsError('IO_ERROR', `cannot write the metrics file ${path}: ${(cause as Error).message}`, { cause, hint: 'check the folder exists and this user may write in it' });
  }
  try {
    const fd = openSync(dirname(path), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort: the rename is done
  }
}

/** The catalog's metrics (no process metrics) as a textfile at `path` (checked by checkMetricsFile). */
export async function writeMetricsFile(catalog: Catalog, path: string): Promise<void> {
  await writeFileAtomic(path, await catalogMetrics(catalog, { processMetrics: false }).text());
}

// ---- the daemon's HTTP endpoint ----------------------------------------------------------

export interface Listen {
  host: string;
  port: number;
}

/** Parses ADDR:PORT (`127.0.0.1:9150`, `[::1]:9150`, `0.0.0.0:9150`, `localhost:9150`). */
export function parseListen(text: string): Listen {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const hint = 'e.g. --metrics-listen 127.0.0.1:9150 (or [::1]:9150; 0.0.0.0:9150 for every address)';
  if (!m) throw new DbsError('INVALID_ARGUMENT', `--metrics-listen ${JSON.stringify(text)} is not ADDR:PORT`, { hint });
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (m[1] !== undefined ? isIP(host) !== 6 : isIP(host) !== 4 && host !== 'localhost') {
    throw new DbsError('INVALID_ARGUMENT', `--metrics-listen ${JSON.stringify(text)}: ${JSON.stringify(host)} is not an IP address (IPv6 goes in brackets)`, { hint });
  }
  if (port < 1 || port > 65535) throw new DbsError('INVALID_ARGUMENT', `--metrics-listen ${JSON.stringify(text)}: port ${port} is not 1-65535`, { hint });
  return { host, port };
}

export interface MetricsServer {
  /** The address and port bound. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics (HEAD too); every other path is 404, other methods on /metrics 405. */
export async function serveMetrics(metrics: CatalogMetrics, listen: Listen): Promise<MetricsServer> {
  // getBuiltinModule, not an ESM import of node:http: its ESM facade loads undici (start-up).
  const server: Server = process.getBuiltinModule('node:http').createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('only GET and HEAD\n');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : body),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`cannot read the catalog: ${(e as Error).message}\n`),
    );
  });
  const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      if (code === 'EADDRINUSE') reject(new DbsError('IN_USE', `--metrics-listen ${where}: the address is in use by another process`, { cause: e, hint: 'pick another port, or stop what listens there (ss -ltnp)' }));
      else if (code === 'EADDRNOTAVAIL') reject(new DbsError('INVALID_ARGUMENT', `--metrics-listen ${where}: ${listen.host} is not an address of this host`, { cause: e, hint: 'use 127.0.0.1, 0.0.0.0 or an address `ip addr` shows' }));
      else if (code === 'EACCES') reject(new DbsError('PERMISSION_DENIED', `--metrics-listen ${where}: not allowed to listen on port ${listen.port}`, { cause: e, hint: 'use a port above 1023 (the usual one for dbs is 9150)' }));
      else reject(new DbsError('FAILED', `--metrics-listen ${where}: cannot listen: ${e.message}`, { cause: e, hint: 'check the address and port' }));
    });
    server.listen({ host: listen.host, port: listen.port, exclusive: true }, () => resolvePromise());
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : listen.port;
  return {
    address: typeof a === 'object' && a ? a.address : listen.host,
    port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
