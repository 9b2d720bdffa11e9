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
  return spawn(f, a, { ...options, env: withMarkers(options.env) });
}

/** execa of a program that dies with dbs; the environment is `options.env` (default: childEnv()) plus the markers, nothing else. */
export function execaChild<O extends Options>(file: string, args: readonly string[], options: O) {
  const [f, a] = dieWithDbs(file, args);
  return execa(f, a, { ...options, env: withMarkers(options.env as Record<string, string> | undefined), extendEnv: false as const });
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

/**
 * What `path --version` prints, stdout then stderr (tools differ in which they use); empty
 * when it cannot run. `env` is the program's whole environment.
 */
export async function versionOutput(path: string, env?: Record<string, string>): Promise<string> {
  const r = await execaChild(path, ['--version'], { reject: false, timeout: 10_000, stdin: 'ignore', env });
  return `${String(r.stdout ?? '')}\n${String(r.stderr ?? '')}`;
}
