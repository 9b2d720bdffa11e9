// The one way dbs starts a program (dump tools, compressors, clients, checkers). Every child:
//   - dies with dbs: it runs under `setpriv --pdeathsig KILL` (util-linux), so the kernel
//     SIGKILLs it when the dbs process dies, however it died (SIGKILL, OOM kill). setpriv
//     sets the signal and execs the program, so the child's pid is the program's own and the
//     setting survives further execs (stdbuf);
//   - gets only the environment it needs (childEnv): no variable of the caller's (a password
//     named by --password-env, AWS keys) leaks into a tool; secrets it needs are passed by
//     the caller explicitly (REDISCLI_AUTH) or through 0600 option files, never argv;
//   - carries a marker, DBS_PARENT=<pid>:<start time> of the dbs process (and DBS_TASK=<task>
//     inside a task), so recovery can find and end a child whose dbs died anyway (setpriv
//     missing, or the instant between fork and the death-signal setting): see
//     src/core/orphans.ts.
// The one deliberate exception is a server started on a restored datadir, which must outlive
// dbs (src/engines/mysql/physical-restore.ts): it gets neither.
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { execa, type Options } from 'execa';
import { programOnPath } from '../which.js';

export const PARENT_MARKER = 'DBS_PARENT';
export const TASK_MARKER = 'DBS_TASK';

/** Variables a program may need to run (locale, time zone, temp dir, home for its own files). */
const PASSED = /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|LC_[A-Z_]+|TZ|TMPDIR|LD_LIBRARY_PATH|SSL_CERT_FILE|SSL_CERT_DIR)$/;

/** A process's start time in clock ticks since boot (field 22 of /proc/PID/stat). */
export function procStartTicks(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

let marker: string | undefined;
/** "<pid>:<start ticks>" of this process: names it even after its pid is reused. */
export function parentMarker(): string {
  marker ??= `${process.pid}:${procStartTicks('self') ?? '0'}`;
  return marker;
}

const taskTag = new AsyncLocalStorage<string>();

/** Runs `fn` so that every program started inside it carries DBS_TASK=`task`. */
export function withTaskTag<T>(task: string, fn: () => T): T {
  return taskTag.run(task, fn);
}

/**
 * The whole environment of a child: the allowed variables of this process, then `extra`,
 * then the markers. `outlivesDbs` leaves the markers out (a process meant to stay).
 */
export function childEnv(extra: Record<string, string> = {}, o: { outlivesDbs?: boolean; drop?: RegExp } = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && PASSED.test(k) && !o.drop?.test(k)) env[k] = v;
  }
  Object.assign(env, extra);
  delete env[PARENT_MARKER];
  delete env[TASK_MARKER];
  if (!o.outlivesDbs) {
    env[PARENT_MARKER] = parentMarker();
    const task = taskTag.getStore();
    if (task) env[TASK_MARKER] = task;
  }
  return env;
}

/** `file args` under `setpriv --pdeathsig KILL` when setpriv is on PATH (Linux). */
export function dieWithDbs(file: string, args: readonly string[]): [string, string[]] {
  const setpriv = process.platform === 'linux' ? programOnPath('setpriv') : undefined;
  return setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', file, ...args]] : [file, [...args]];
}

/** Whether children get the death signal here (setpriv found). */
export function deathSignalAvailable(): boolean {
  return process.platform === 'linux' && programOnPath('setpriv') !== undefined;
}

/**
 * node:child_process spawn of a program that dies with dbs. `env` is the child's whole
 * environment before the markers (default: childEnv()).
 */
export function spawnChild(file: string, args: readonly string[], options: Omit<SpawnOptions, 'env' | 'detached'> & { env?: Record<string, string> } = {}): ChildProcess {
  const [f, a] = dieWithDbs(file, args);
  const child = spawn(f, a, { ...options, env: withMarkers(options.env) });
  track(child.pid, (done) => child.once('exit', done));
  return child;
}

/** execa of a program that dies with dbs; the environment is `options.env` (default: childEnv()) plus the markers, nothing else. */
export function execaChild<O extends Options>(file: string, args: readonly string[], options: O) {
  const [f, a] = dieWithDbs(file, args);
  const sub = execa(f, a, { ...options, env: withMarkers(options.env as Record<string, string> | undefined), extendEnv: false as const });
  // execa's subprocess is a promise (no 'exit' event): it settles once the program exited.
  track(sub.pid, (done) => void sub.then(done, done));
  return sub;
}

function withMarkers(env: Record<string, string> | undefined): Record<string, string> {
  if (!env) return childEnv();
  const out = { ...env };
  delete out[PARENT_MARKER];
  delete out[TASK_MARKER];
  out[PARENT_MARKER] = parentMarker();
  const task = taskTag.getStore();
  if (task) out[TASK_MARKER] = task;
  return out;
}

// ---- what the children of a task use (the samples of src/core/samples.ts) ------------------
//
// Every child started here is remembered by pid with the task tag it was started under. While
// it runs, its CPU time (utime+stime) and RSS are read from /proc/PID/stat. Once it exited and
// was reaped, /proc has nothing more of it; its whole CPU time then shows in this process's
// cutime+cstime (the children it waited for): the growth of those since the previous exit is
// the CPU of the child(ren) reaped since, credited to the exiting child's task (never less than
// what was last read of it). Two children reaped in one go credit the first with both: the
// total stays right, the split between two tasks of a daemon may not.

/** Linux USER_HZ: /proc times are in 1/100 s on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

interface TrackedChild {
  task: string | undefined;
  /** utime+stime last read, ticks. */
  ticks: number;
}

const live = new Map<number, TrackedChild>();
/** CPU ticks of the exited children of each task. */
const exitedTicks = new Map<string, number>();
let reapedTicks: number | undefined;

/** Fields after the command name of /proc/PID/stat (field 3 is index 0), or undefined. */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** cutime+cstime of this process: CPU of its reaped children, ticks. */
function selfChildTicks(): number {
  const f = statFields('self');
  return f ? Number(f[13]) + Number(f[14]) : 0;
}

function track(pid: number | undefined, onExit: (done: () => void) => void): void {
  if (pid === undefined || process.platform !== 'linux') return;
  reapedTicks ??= selfChildTicks();
  const entry: TrackedChild = { task: taskTag.getStore(), ticks: 0 };
  live.set(pid, entry);
  onExit(() => {
    live.delete(pid);
    const now = selfChildTicks();
    const grown = Math.max(0, now - (reapedTicks ?? now));
    reapedTicks = now;
    if (entry.task !== undefined) exitedTicks.set(entry.task, (exitedTicks.get(entry.task) ?? 0) + Math.max(grown, entry.ticks));
  });
}

let pageSize: number | undefined;
/** Bytes per page of /proc's rss: what makes this process's page count its RSS. */
function pageBytes(): number {
  if (pageSize === undefined) {
    const pages = Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]);
    const ratio = pages > 0 ? process.memoryUsage.rss() / pages : 4096;
    pageSize = [4096, 16384, 65536].reduce((best, p) => (Math.abs(p - ratio) < Math.abs(best - ratio) ? p : best), 4096);
  }
  return pageSize;
}

export interface ChildUsage {
  /** CPU seconds of the task's children so far: exited ones whole, running ones until now. */
  cpuSeconds: number;
  /** RSS of the task's running children now, bytes. */
  rssBytes: number;
  /** How many of them run now. */
  running: number;
}

/** What the children started under task tag `task` used (Linux /proc; zeros elsewhere). */
export function taskChildUsage(task: string): ChildUsage {
  let ticks = exitedTicks.get(task) ?? 0;
  let rss = 0;
  let running = 0;
  for (const [pid, c] of live) {
    if (c.task !== task) continue;
    const f = statFields(pid);
    if (!f) continue;
    c.ticks = Math.max(c.ticks, Number(f[11]) + Number(f[12]));
    ticks += c.ticks;
    rss += Number(f[21]) * pageBytes();
    running++;
  }
  return { cpuSeconds: ticks / TICKS_PER_SECOND, rssBytes: rss, running };
}

/** Drops what is kept of a task's exited children (its sampler stopped). */
export function forgetTaskChildren(task: string): void {
  exitedTicks.delete(task);
}

/** The tag of the task the caller runs in (withTaskTag), if any. */
export function currentTaskTag(): string | undefined {
  return taskTag.getStore();
}

/**
 * What `path --version` prints, stdout then stderr (tools differ in which they use); empty
 * when it cannot run. `env` is the program's whole environment.
 */
export async function versionOutput(path: string, env?: Record<string, string>): Promise<string> {
  const r = await execaChild(path, ['--version'], { reject: false, timeout: 10_000, stdin: 'ignore', env });
  return `${String(r.stdout ?? '')}\n${String(r.stderr ?? '')}`;
}
