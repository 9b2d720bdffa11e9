// Small process/port helpers shared by the test-bed servers (MariaDB, Redis, Ceph RGW).
//
// Everything here is about servers the test suite starts itself: free loopback ports,
// polling until something is up, and stopping a daemon by PID. PID 1 on the CI machines
// does not reap orphans, so a stopped daemon may linger as a zombie: "gone" is judged
// from /proc/PID (missing, empty cmdline or state Z), never from `kill -0` alone.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

/** Ceph OSDs bind ports in this range; keep every other server out of it. */
const CEPH_OSD_PORT_MIN = 6800;
const CEPH_OSD_PORT_MAX = 7300;

function bindPortZero(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 (bound with port 0, then released). Never returns a port in
 * Ceph's OSD range 6800-7300, and never the same port twice within one process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await bindPortZero();
    if (port === 0) continue;
    if (port >= CEPH_OSD_PORT_MIN && port <= CEPH_OSD_PORT_MAX) continue;
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('freePort: could not find a free loopback port outside 6800-7300');
}

/**
 * freePort() releases the port before the server binds it, so another process may take it
 * in between (rare). Run `start` again (with a new port) when its error says so.
 */
export async function retryOnPortClash<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      if (i >= attempts || !/Address already in use|EADDRINUSE/i.test((err as Error).message)) throw err;
    }
  }
}

export interface WaitForOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Poll interval (default 50 ms). */
  intervalMs?: number;
  /** What is being waited for, e.g. "MariaDB on 127.0.0.1:41234"; used in the error. */
  what: string;
  /** One call of `fn` that takes longer than this counts as a failed poll (default 5 s). */
  attemptTimeoutMs?: number;
  /**
   * Called before every poll; throw from it to fail fast (e.g. when the daemon exited).
   */
  abortIf?: () => void;
}

/**
 * Poll `fn` until it returns a value other than `false`/`undefined`/`null`; a throw or a
 * rejection counts as "not yet". Throws `Error("<what> did not come up within N ms: <last
 * error>")` on timeout, or whatever `abortIf` throws.
 */
export async function waitFor<T>(
  fn: () => Promise<T | false | null | undefined> | T | false | null | undefined,
  opts: WaitForOptions,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.abortIf?.();
    let timer: NodeJS.Timeout | undefined;
    let watcher: NodeJS.Timeout | undefined;
    let aborted: { error: unknown } | undefined;
    try {
      const attempt = Promise.resolve(fn());
      attempt.catch(() => undefined); // a late rejection after a timeout must not go unhandled
      const v = await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          const ms = opts.attemptTimeoutMs ?? 5_000;
          timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
          // A slow attempt must not hide that the daemon has died meanwhile.
          if (opts.abortIf) {
            const abortIf = opts.abortIf;
            watcher = setInterval(() => {
              try {
                abortIf();
              } catch (error) {
                aborted = { error };
                reject(error);
              }
            }, 50);
          }
        }),
      ]);
      if (v !== false && v !== null && v !== undefined) return v;
      lastError = undefined;
    } catch (err) {
      if (aborted) throw aborted.error;
      lastError = err;
    } finally {
      clearTimeout(timer);
      clearInterval(watcher);
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : lastError !== undefined ? `: ${String(lastError)}` : '';
      throw new Error(`${opts.what} did not come up within ${timeoutMs} ms${why}`);
    }
    await sleep(intervalMs);
  }
}

export interface Proc {
  pid: number;
  comm: string;
}
/** Direct children of `pid` (from /proc/PID/stat's ppid). */
export function childrenOf(pid: number): Proc[] {
  const out: Proc[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === pid) out.push({ pid: Number(e), comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch {
      // gone
    }
  }
  return out;
}

/** SIGKILLs this process's direct children whose name (comm) matches. */
export function killChildren(comm: RegExp): void {
  for (const c of childrenOf(process.pid)) {
    if (!comm.test(c.comm)) continue;
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * True while PID names a live (non-zombie) process. A zombie, a missing /proc entry or an
 * empty cmdline (zombies have one) counts as gone.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ..." - comm may contain spaces/parens, so split after the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`);
    return cmdline.length > 0;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // ESRCH: already gone.
  }
}

/**
 * Stop a process we started: SIGTERM, wait up to `graceMs` (default 10 s) for it to be gone
 * (per /proc, zombies count as gone), then SIGKILL and wait up to 5 s more. Throws only if
 * the process survives SIGKILL.
 */
export async function killPid(pid: number, opts: { graceMs?: number; signal?: NodeJS.Signals } = {}): Promise<void> {
  if (!pidAlive(pid)) return;
  signal(pid, opts.signal ?? 'SIGTERM');
  const graceDeadline = Date.now() + (opts.graceMs ?? 10_000);
  while (Date.now() < graceDeadline) {
    if (!pidAlive(pid)) return;
    await sleep(25);
  }
  signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 5_000;
  while (Date.now() < killDeadline) {
    if (!pidAlive(pid)) return;
    await sleep(25);
  }
  throw new Error(`killPid: process ${pid} is still alive after SIGKILL`);
}

// --- Safety net. Test servers run detached (their own session), so nothing stops them if
// the process that started them dies without calling stop(): a forgotten stop(), Ctrl-C
// (vitest's main process exits at once and its watchdog SIGKILLs the fork workers, so no
// exit handler runs there), a crash. Each server's temp dir therefore gets a guard: a tiny
// detached `sh` whose stdin is a pipe from this process. It learns the PIDs to guard over
// that pipe; when the pipe hits EOF without a "disarm" (i.e. this process is gone, however
// it died) it SIGKILLs those PIDs' process groups and removes the dir.

const GUARD_SCRIPT = `
dir=$1
pids=
while IFS= read -r line; do
  case $line in
    "add "*) pids="$pids \${line#add }" ;;
    "del "*) keep=; for p in $pids; do [ "$p" = "\${line#del }" ] || keep="$keep $p"; done; pids=$keep ;;
    disarm) exit 0 ;;
  esac
done
for p in $pids; do kill -KILL -$p 2>/dev/null; kill -KILL $p 2>/dev/null; done
sleep 0.5
case $dir in */dbs-test-*) rm -rf -- "$dir" ;; esac
`;

/** Kills the registered PIDs and removes `dir` if this process dies before disarm(). */
export interface Guard {
  readonly dir: string;
  addPid(pid: number): void;
  removePid(pid: number): void;
  /** Normal shutdown done: the guard exits without touching anything. */
  disarm(): void;
}

function startGuard(dir: string): Guard {
  const child = spawn('sh', ['-c', GUARD_SCRIPT, 'dbs-test-guard', dir], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => undefined);
  const stdin = child.stdin as Socket | null;
  stdin?.on('error', () => undefined);
  // Neither the guard nor its pipe may keep the event loop (and so vitest) alive.
  child.unref();
  stdin?.unref();
  let armed = true;
  const send = (line: string): void => {
    if (armed && stdin && !stdin.destroyed) stdin.write(`${line}\n`);
  };
  return {
    dir,
    addPid: (pid) => send(`add ${pid}`),
    removePid: (pid) => send(`del ${pid}`),
    disarm: () => {
      send('disarm');
      armed = false;
      stdin?.end();
    },
  };
}

/**
 * Make `os.tmpdir()/dbs-test-<name>-XXXXXX` with a guard (see above). Call
 * `guard.disarm()` after a normal stop (removeGuardedDir does both).
 */
export async function makeGuardedDir(name: string): Promise<Guard> {
  const dir = await mkdtemp(join(tmpdir(), `dbs-test-${name}-`));
  return startGuard(dir);
}

/** Synchronous makeGuardedDir (for helpers that must return a path right away). */
export function makeGuardedDirSync(name: string): Guard {
  return startGuard(mkdtempSync(join(tmpdir(), `dbs-test-${name}-`)));
}

/** Remove the dir and disarm its guard (after the guarded processes were stopped). */
export async function removeGuardedDir(guard: Guard): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rm(guard.dir, { recursive: true, force: true, maxRetries: 3 });
      break;
    } catch (err) {
      // A daemon that just exited may still have files closing (ENOTEMPTY races).
      if (attempt >= 10) throw err;
      await sleep(100);
    }
  }
  guard.disarm();
}

export interface DaemonProcess {
  pid: number;
  child: ChildProcess;
  /** Set once the process has exited (code or signal). */
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** killPid() it, then drop it from the guard. */
  stop(opts?: { graceMs?: number; signal?: NodeJS.Signals }): Promise<void>;
}

/**
 * Start a long-running server process detached from the caller: its own session and
 * process group, stdin from /dev/null, stdout+stderr appended to `outputFile` (never the
 * caller's stdout, and no other inherited fd), unref'd so it does not keep the event loop
 * alive, and registered with `guard`.
 */
export function spawnDaemon(
  command: string,
  args: readonly string[],
  opts: { outputFile: string; guard: Guard; cwd?: string; env?: NodeJS.ProcessEnv },
): DaemonProcess {
  const fd = openSync(opts.outputFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) {
    throw new Error(`could not start ${command}`);
  }
  const pid = child.pid;
  opts.guard.addPid(pid);
  const proc: DaemonProcess = {
    pid,
    child,
    exited: undefined,
    stop: async (stopOpts) => {
      await killPid(pid, stopOpts);
      opts.guard.removePid(pid);
    },
  };
  child.on('error', () => {
    proc.exited ??= { code: null, signal: null };
  });
  child.on('exit', (code, sig) => {
    proc.exited = { code, signal: sig };
  });
  child.unref();
  return proc;
}

export interface ToolResult {
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  stdout: string;
  /** stdout and stderr interleaved. */
  all: string;
}

/**
 * Run a short-lived tool (mariadb-install-db, monmaptool, ceph, radosgw-admin...) to
 * completion. It gets its own process group, registered with `guard` while it runs, and on
 * timeout the whole group is SIGKILLed (a killed wrapper script such as mariadb-install-db
 * must not leave its mariadbd --bootstrap behind). Never rejects on a non-zero exit.
 */
export async function runTool(
  command: string,
  args: readonly string[],
  opts: { timeoutMs: number; guard: Guard; cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<ToolResult> {
  const sub = execa(command, args, {
    cwd: opts.cwd,
    ...(opts.env ? { env: opts.env, extendEnv: false } : {}),
    stdin: 'ignore',
    all: true,
    reject: false,
    detached: true,
    cleanup: false,
  });
  const pid = sub.pid;
  if (pid !== undefined) opts.guard.addPid(pid);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (pid !== undefined) {
      signal(-pid, 'SIGKILL');
      signal(pid, 'SIGKILL');
    }
  }, opts.timeoutMs);
  try {
    const r = await sub;
    return {
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut,
      stdout: String(r.stdout ?? ''),
      all: String(r.all ?? ''),
    };
  } finally {
    clearTimeout(timer);
    if (pid !== undefined) opts.guard.removePid(pid);
  }
}

/** Last `lines` lines of a text file, or a note that it cannot be read. */
export async function tailFile(path: string, lines = 30): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd();
    } finally {
      await fh.close();
    }
  } catch (err) {
    return `(cannot read ${path}: ${(err as Error).message})`;
  }
}

export function describeExit(e: DaemonProcess['exited']): string {
  if (!e) return 'still running';
  return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
}
