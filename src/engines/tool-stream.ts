// Shared by engines that stream a tool's stdout into a sink (mariadb-dump, mariabackup): the
// spawn with the exit record, the stderr tail, and the guard whose end waits for the tool's
// exit, so a consumer never sees a clean end of a failed run.
import { createInterface } from 'node:readline';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ResultPromise } from 'execa';
import { DbsError, isAbort } from '../errors.js';
import { redactText, type Secret } from '../secret.js';
import { execaChild } from '../pipeline/child.js';
import { programOnPath } from '../which.js';
import type { ArtifactSink, ArtifactWriteOptions, StoredArtifact } from './types.js';

export const STDERR_TAIL_LINES = 40;

export interface ToolExit {
  exitCode?: number;
  signal?: string;
  /** Killed through the cancel signal. */
  canceled: boolean;
  /** A spawn or stream failure reported by execa. */
  failureMessage?: string;
}

export interface ToolGuardOptions {
  toolName: string;
  /** Resolves when the tool has exited AND its stderr has been read to the end. */
  exit: Promise<ToolExit>;
  /** The last lines of the tool's stderr (redacted). */
  stderrTail: () => string[];
  /** What to name in messages, e.g. "root@127.0.0.1:3306". */
  what: string;
}

/**
 * A pass-through Transform over a tool's stdout. Its _flush waits for the tool to exit and
 * asks check() whether the run succeeded; when not, the stream errors instead of ending.
 */
export abstract class ToolGuard extends Transform {
  protected readonly opts: ToolGuardOptions;
  /** The error the stream failed with, if any. */
  failure?: DbsError;

  constructor(opts: ToolGuardOptions) {
    // Large buffers: the tool's 64 KiB reads pass straight through.
    super({ highWaterMark: 1024 * 1024 });
    this.opts = opts;
  }

  /** Decides from the exit (and what passed through) whether the run succeeded. */
  abstract check(exit: ToolExit): DbsError | undefined;

  override _flush(cb: TransformCallback): void {
    this.opts.exit.then(
      (exit) => {
        const err = this.check(exit);
        if (err) {
          this.failure = err;
          cb(err);
        } else cb();
      },
      (e: unknown) => {
        this.failure = new DbsError('BACKUP_FAILED', `${this.opts.toolName} failed: ${String(e)}`, { cause: e });
        cb(this.failure);
      },
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (err && !this.failure && err instanceof DbsError) this.failure = err;
    cb(err);
  }
}

export interface StderrTail {
  tail: string[];
  done: Promise<void>;
}

/**
 * Reads a child's stderr (and optionally another stream) line by line: each kept line goes to
 * `log` and into a bounded tail. `clean` may rewrite a line or drop it (return '').
 */
export function collectStderr(sub: ResultPromise, log: (line: string) => void, o: { also?: Readable | null; clean?: (line: string) => string } = {}): StderrTail {
  const tail: string[] = [];
  const read = async (stream: Readable | null | undefined): Promise<void> => {
    if (!stream) return;
    for await (const raw of createInterface({ input: stream, crlfDelay: Infinity })) {
      const trimmed = raw.replace(/\s+$/, '');
      const line = o.clean ? o.clean(trimmed) : trimmed;
      if (!line) continue;
      log(line);
      tail.push(line);
      if (tail.length > STDERR_TAIL_LINES) tail.shift();
    }
  };
  const done = Promise.all([read(sub.stderr as Readable | null), read(o.also)]).then(
    () => undefined,
    () => undefined,
  );
  return { tail, done };
}

export interface StreamingTool {
  sub: ResultPromise;
  /** The tool's stdout when it writes to 'pipe'; null when it writes into a program's stdin. */
  stdout: Readable | null;
  stderr: StderrTail;
  /** Resolves once the tool exited and its stderr was read to the end. */
  exit: Promise<ToolExit>;
}

/**
 * Spawns a tool whose stdout is a backup stream; credentials go through `env` or files.
 * `stdout` is what the sink opened for it (ArtifactSink.writeTool): 'pipe', or the stdin of the
 * first program of the data path, which the tool then writes into directly.
 */
export function spawnStreamingTool(
  path: string,
  args: string[],
  o: {
    stdout: 'pipe' | Writable;
    signal: AbortSignal;
    env: Record<string, string>;
    log: (line: string) => void;
    secrets: (Secret | string | undefined)[];
    killSignal?: NodeJS.Signals;
    cwd?: string;
    clean?: (line: string) => string;
    /**
     * Give the tool's stdio a stdout buffer of this many bytes (coreutils stdbuf, when on
     * PATH). mariadb-dump writes its output through stdio, which on a pipe flushes every 4 KiB:
     * 215,000 writes for a 880 MB dump, each waking the reader; with 1 MiB, 850.
     */
    stdoutBuffer?: number;
  },
): StreamingTool {
  const stdbuf = o.stdoutBuffer ? programOnPath('stdbuf') : undefined;
  const [file, argv] = stdbuf ? [stdbuf, [`-o${o.stdoutBuffer}`, path, ...args]] : [path, args];
  const sub = execaChild(file, argv, {
    stdin: 'ignore',
    stdout: o.stdout,
    stderr: 'pipe',
    buffer: false,
    encoding: 'buffer',
    reject: false,
    cancelSignal: o.signal,
    ...(o.killSignal ? { killSignal: o.killSignal } : {}),
    forceKillAfterDelay: 5_000,
    env: o.env,
    ...(o.cwd ? { cwd: o.cwd } : {}),
  });
  const stderr = collectStderr(sub, o.log, { clean: o.clean });
  const exit: Promise<ToolExit> = (async () => {
    const r = await sub;
    await stderr.done;
    return {
      ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
      canceled: r.isCanceled || o.signal.aborted,
      ...(r.failed && r.exitCode === undefined ? { failureMessage: redactText(r.shortMessage ?? 'failed', o.secrets) } : {}),
    };
  })();
  return { sub, stdout: (sub.stdout as Readable | null) ?? null, stderr, exit };
}

/**
 * Stores a tool's output: the sink opens its input, then `start(stdout)` spawns the tool into
 * it and makes its guard. When storing fails the tool is stopped and the real cause reported
 * (the guard's verdict, an interruption, or the storage error). The guard is judged once, by
 * the data path; a sink that resolved without ending it is a bug, reported as such.
 */
export async function storeToolOutput<G extends ToolGuard>(
  sink: ArtifactSink,
  name: string,
  options: ArtifactWriteOptions,
  start: (stdout: 'pipe' | Writable) => { tool: StreamingTool; guard: G },
  o: { signal: AbortSignal; what: string },
): Promise<{ artifact: StoredArtifact; tool: StreamingTool; guard: G }> {
  let started: { tool: StreamingTool; guard: G } | undefined;
  try {
    const artifact = await sink.writeTool(name, options, (stdout) => {
      started = start(stdout);
      return { stdout: started.tool.stdout, inspector: started.guard };
    });
    if (!started) throw new DbsError('INTERNAL', `the sink stored ${name} without starting its tool`);
    if (!started.guard.writableFinished) throw new DbsError('INTERNAL', `the sink stored ${name} before its guard judged it`);
    return { artifact, ...started };
  } catch (err) {
    if (!started) throw err;
    const { tool, guard } = started;
    tool.sub.kill('SIGKILL'); // a no-op when it has exited
    guard.destroy();
    await tool.exit;
    if (guard.failure) throw guard.failure;
    if (o.signal.aborted || isAbort(err)) throw new DbsError('INTERRUPTED', `the backup of ${o.what} was interrupted`, { cause: err });
    throw err;
  }
}

/** Counts the bytes that pass. */
export class ByteCounter extends Transform {
  bytes = 0;
  constructor() {
    super({ highWaterMark: 1024 * 1024 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** EPIPE and friends follow from a tool that exited; they are not a broken input. */
export function isPipeConsequence(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET';
}

export interface StdinFeed {
  /** Bytes of `source` that went in. */
  counter: ByteCounter;
  /** Settles with the pipeline's error (or undefined) once the feed is over. */
  piping: Promise<unknown>;
  /** The input's own failure (checksum, decompression, storage), if any. */
  inputError(): unknown;
}

/**
 * Pipes `source` (through `extra` transforms) into the tool's stdin. A broken input must stop
 * the tool BEFORE its stdin closes, or the tool would take a cut stream for the whole: the
 * listeners that kill it are added before pipeline's own, so they run first.
 */
export function feedStdin(sub: ResultPromise, source: Readable, extra: Transform[] = []): StdinFeed {
  const stdin = sub.stdin;
  if (!stdin) throw new DbsError('INTERNAL', 'the tool has no stdin');
  const counter = new ByteCounter();
  const stages = [source, counter, ...extra];
  let inputError: unknown;
  const onInputError = (err: unknown): void => {
    if (isPipeConsequence(err)) return;
    inputError ??= err;
    sub.kill('SIGKILL'); // a no-op when it has exited
  };
  for (const st of stages) st.once('error', onInputError);
  const piping = pipeline([...stages, stdin]).then(
    () => undefined,
    (err: unknown) => err,
  );
  return { counter, piping, inputError: () => inputError };
}
