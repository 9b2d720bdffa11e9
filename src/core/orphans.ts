// Ends programs that outlived the dbs process that started them. Every child of dbs carries
// DBS_PARENT=<pid>:<start ticks> in its environment (src/pipeline/child.ts); a process whose
// marker names a dbs process that is gone (its pid is dead, or now another process with
// another start time) is an orphan: a dump tool still holding its server connection and a
// metadata lock, a compressor writing into a pool file.
//
// Why a marker in the environment rather than child pids recorded on the task row: a pid
// read back later may belong to an unrelated process by then (the marker is in the process
// itself, so it cannot name the wrong one); it covers every child, also those of restores,
// verifies and version probes, and a child started just before dbs died, before any row
// could be written; it needs no catalog write on the data path; and it survives the exec
// chain setpriv -> stdbuf -> tool. /proc/PID/environ is readable for processes of the same
// user (and by root), which children of dbs are.
import { readdirSync, readFileSync } from 'node:fs';
import { PARENT_MARKER, TASK_MARKER, procStartTicks } from '../pipeline/child.js';
import { pidAlive } from './locks.js';

export interface Orphan {
  pid: number;
  /** The program's name (comm). */
  command: string;
  parentPid: number;
  task?: string;
}

function environOf(pid: number): Map<string, string> | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return undefined;
  }
  if (!raw.includes(`${PARENT_MARKER}=`)) return undefined;
  const env = new Map<string, string>();
  for (const kv of raw.split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return env;
}

function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Children of dbs processes that are gone, found in /proc (Linux; elsewhere none). */
export function findOrphans(): Orphan[] {
  if (process.platform !== 'linux') return [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: Orphan[] = [];
  const parents = new Map<string, boolean>();
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    const env = environOf(pid);
    const m = /^(\d+):(\d+)$/.exec(env?.get(PARENT_MARKER) ?? '');
    if (!m) continue;
    const parentPid = Number(m[1]);
    let alive = parents.get(m[0]);
    if (alive === undefined) {
      alive = pidAlive(parentPid) && procStartTicks(parentPid) === m[2];
      parents.set(m[0], alive);
    }
    if (alive || !pidAlive(pid)) continue;
    const task = env?.get(TASK_MARKER);
    out.push({ pid, command: commOf(pid), parentPid, ...(task ? { task } : {}) });
  }
  return out;
}

/** SIGKILLs every orphan (they are stuck or would finish work nobody collects); returns them. */
export function reapOrphans(): Orphan[] {
  const killed: Orphan[] = [];
  for (const o of findOrphans()) {
    try {
      process.kill(o.pid, 'SIGKILL');
      killed.push(o);
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}
