// Runs dbs in-process (runCli) with captured output, as the command tests do.
import { PassThrough, Writable } from 'node:stream';
import { execa } from 'execa';
import { runCli } from '../../src/cli.js';
import type { PoolWrapper } from '../../src/storage/wrap.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

export interface DbsOptions {
  home: string;
  /** Pretend stderr (and stdin) is a terminal. */
  tty?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Wrappers around every pool driver the command opens (src/storage/faults.ts). */
  poolWrappers?: readonly PoolWrapper[];
  /** Through commander even where the short commands' fast path would take argv. */
  noFastPath?: boolean;
}

export async function dbs(args: string[], o: DbsOptions): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  stderr.isTTY = Boolean(o.tty);
  const stdin = new PassThrough();
  stdin.end();
  const code = await runCli(['--home', o.home, ...args], {
    stdout,
    stderr,
    stdin,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...o.env },
    cwd: o.cwd ?? o.home,
    signal: o.signal ?? new AbortController().signal,
    poolWrappers: o.poolWrappers,
    noFastPath: o.noFastPath,
  });
  return {
    code,
    stdout: stdout.text,
    stderr: stderr.text,
    json: () => JSON.parse(stdout.text),
  };
}

/** Spawns bin/dbs.js as a user would (compiled dist/ must exist: npm run build). */
export async function dbsBin(args: string[], o: DbsOptions & { input?: string }) {
  const r = await execa(process.execPath, [new URL('../../bin/dbs.js', import.meta.url).pathname, '--home', o.home, ...args], {
    env: { ...o.env },
    extendEnv: true,
    reject: false,
    input: o.input ?? '',
    cwd: o.cwd ?? o.home,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
