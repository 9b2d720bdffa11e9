// External programs as pipeline stages (zstd, pzstd; later age). A program is spawned with
// plain descriptors: its stdin is either a pipe Node writes into, or is handed on (before the
// producer exists) to the program or tool that writes into it; its stdout is a pipe Node reads,
// the stdin of the next program, or a pool file. Chains are spawned from their end, so every
// pipe exists before the process that writes into it: no byte can be written before its
// reader is in place, and Node never reads a pipe it hands on.
import type { ChildProcess } from 'node:child_process';
import { close as fsClose, constants, open as fsOpen } from 'node:fs';
import { mkdtemp, open, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { execaChild, spawnChild } from './child.js';

export interface ProgramSpec {
  /** For messages and the manifest, e.g. "pzstd -1". */
  label: string;
  path: string;
  args: string[];
  /**
   * The output is independent zstd frames and the program reports its input size on stderr
   * (pzstd -v: "(N => M bytes"): the edges can be taken from the first and last frames.
   */
  framed: boolean;
}

/** Where a program writes: a pipe back to Node, the stdin of the next program, or a file. */
export type ProgramOutput = 'pipe' | Writable | number;

/**
 * One running program. `input` is its stdin (a pipe's write end): Node writes into it, or
 * hands it to the producer as its stdout (then call `handedOn()` once the producer runs).
 * `output` is its stdout when that is a pipe to Node. `exited` rejects on a non-zero exit or
 * a signal, with the end of the program's stderr.
 */
export class Program {
  readonly input: Writable;
  readonly output: Readable | null;
  readonly exited: Promise<void>;
  /** Set when the program exited non-zero or was killed. */
  failure?: Error;
  /** It died of the SIGKILL that kill() sent: stopped by dbs (after another failure), not a cause. */
  killedByDbs = false;
  readonly #child: ChildProcess;
  readonly #stderr: { text: string };
  #killSent = false;

  constructor(
    readonly spec: ProgramSpec,
    stdout: ProgramOutput,
  ) {
    // Dies with dbs (child.ts): with no pipe back to Node, nothing else would stop it.
    const child = spawnChild(spec.path, spec.args, { stdio: ['pipe', stdout, 'pipe'] });
    this.#child = child;
    // Our copy of the next program's stdin must go, or that program never sees its input end.
    if (typeof stdout === 'object') stdout.destroy();
    this.input = child.stdin!;
    this.input.on('error', () => undefined); // EPIPE when the program died: its exit says why
    this.output = child.stdout;
    this.#stderr = keepTail(child.stderr!);
    this.exited = new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        if (code === 0) return resolve();
        this.killedByDbs = this.#killSent && signal === 'SIGKILL';
        this.failure = new Error(`${spec.label} failed (${signal ? `killed by ${signal}` : `exit ${code}`}): ${this.#stderr.text.trim().slice(-500)}`);
        reject(this.failure);
      });
    });
    this.exited.catch(() => undefined); // observed by the caller; never an unhandled rejection
  }

  /** The producer now holds `input` (it was given as its stdout): close our copy. */
  handedOn(): void {
    this.input.destroy();
  }

  /** What the program wrote to stderr so far (the last 8 KiB). */
  get stderrText(): string {
    return this.#stderr.text;
  }

  kill(): void {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#killSent = true;
    this.#child.kill('SIGKILL');
  }
}

/**
 * Spawns `specs` as a chain, last first: the last writes to `out`, each other into the next
 * one's stdin. Returns them in order (the first one's `input` takes the raw bytes).
 */
export function spawnChain(specs: ProgramSpec[], out: 'pipe' | number): Program[] {
  const chain: Program[] = [];
  let next: ProgramOutput = out;
  try {
    for (let i = specs.length - 1; i >= 0; i--) {
      const p: Program = new Program(specs[i]!, next);
      chain.unshift(p);
      next = p.input;
    }
  } catch (e) {
    for (const p of chain) p.kill();
    throw e;
  }
  return chain;
}

/** Keeps the last 8 KiB of a program's stderr: its summary or its error comes at the end. */
export function keepTail(stream: Readable): { text: string } {
  const tail = { text: '' };
  stream.on('data', (c: Buffer) => {
    tail.text = (tail.text + c.toString()).slice(-8192);
  });
  return tail;
}

/** Bytes per read when following a file. */
const FOLLOW_CHUNK = 1024 * 1024;
/** How long to wait at the end of a file that is still being written. */
const FOLLOW_POLL_MS = 20;

/**
 * Watches a file a program writes on a pool's disk for the one way such a program can hang for
 * good: the disk is full and the program stopped instead of exiting. (pzstd normally exits 1 on
 * ENOSPC; once in a few hundred CI runs it stayed in a futex wait, with the dump blocked writing
 * into it, until a watchdog killed the run.) When the filesystem has less than `minFree` bytes
 * left (what this process may use: bfree as root, bavail otherwise) and the file has not grown
 * for `stuckChecks` checks in a row, `onFull` runs once (kill the programs). Polls every
 * `intervalMs`; `stop()` ends it.
 */
export function watchFullDisk(path: string, onFull: () => void, o: { intervalMs?: number; stuckChecks?: number; minFree?: number } = {}): { stop(): void; readonly full: boolean } {
  const interval = o.intervalMs ?? 1000;
  const needed = o.stuckChecks ?? 3;
  const minFree = o.minFree ?? 64 * 1024;
  const root = process.getuid?.() === 0;
  let last = -1;
  let still = 0;
  let full = false;
  let busy = false;
  const timer = setInterval(() => {
    if (busy || full) return;
    busy = true;
    void (async () => {
      try {
        const [fs, st] = await Promise.all([statfs(dirname(path)), stat(path)]);
        const free = (root ? fs.bfree : fs.bavail) * fs.bsize;
        still = st.size === last && free < minFree ? still + 1 : 0;
        last = st.size;
        if (still >= needed) {
          full = true;
          clearInterval(timer);
          onFull();
        }
      } catch {
        // the file is gone (committed or aborted): nothing to watch
      } finally {
        busy = false;
      }
    })();
  }, interval);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    get full() {
      return full;
    },
  };
}

/**
 * Reads a file while another process appends to it, until `writerDone` settles and the end is
 * reached; rejects if `writerDone` rejects. Each chunk goes to `onChunk` synchronously and the
 * buffer is reused (one 1 MiB buffer: allocating one per read cost ~0.5 s of garbage
 * collection per GB). Reading back what is stored (from the page cache) costs less than
 * carrying the bytes through a pipe into Node and out again.
 */
export async function followFile(path: string, writerDone: Promise<void>, onChunk: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
  let done = false;
  const settled = writerDone.then(
    () => void (done = true),
    () => void (done = true),
  );
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(FOLLOW_CHUNK);
    let pos = 0;
    for (;;) {
      signal?.throwIfAborted();
      const writerGone = done; // read before the read: a read after the writer is gone sees everything
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        onChunk(buf.subarray(0, bytesRead));
      } else if (writerGone) {
        return await writerDone;
      } else {
        await Promise.race([settled, sleep(FOLLOW_POLL_MS)]);
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * A pipe whose read end Node reads into a buffer of its own (a FIFO, read by a net.Socket with
 * `onread`: Node has no pipe(2), and a child's stdout pipe hands Node a fresh 64 KiB buffer
 * per read). `writeFd` is for the program's stdout; close it (`closeWriter`) once the program
 * holds it, so the reader sees the end when the program exits. `readFd` is for the socket,
 * which owns it from then on (`closeReader` if no socket took it). The FIFO's name is gone
 * before this returns (both ends are open), so nothing is left behind by a kill.
 */
export interface Fifo {
  readonly writeFd: number;
  readonly readFd: number;
  closeWriter(): Promise<void>;
  closeReader(): Promise<void>;
}

const openFd = promisify(fsOpen);
const closeFd = promisify(fsClose);

export async function openFifo(): Promise<Fifo> {
  const dir = await mkdtemp(join(tmpdir(), 'dbs-pipe-'));
  try {
    const path = join(dir, 'pipe');
    await execaChild('mkfifo', ['-m', '600', path], {});
    // Read-write never blocks on Linux, and then the read-only open finds a writer and does not either.
    const writeFd = await openFd(path, constants.O_RDWR);
    const readFd = await openFd(path, constants.O_RDONLY | constants.O_NONBLOCK).catch(async (e: unknown) => {
      await closeFd(writeFd);
      throw e;
    });
    const once = (fd: number) => {
      let closed = false;
      return async () => {
        if (closed) return;
        closed = true;
        await closeFd(fd);
      };
    };
    return { writeFd, readFd, closeWriter: once(writeFd), closeReader: once(readFd) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
