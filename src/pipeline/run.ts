// Runs one artifact through an ExecutionPlan (plan.ts): source -> [guard] -> transforms ->
// observers -> target. The source is a tool (spawned here, into the plan's input: the sink is
// in place before the tool's first byte) or a stream Node produces. Whatever the execution:
//   - the engine's guard (an inspector) is fed once, in the mode the engine chose: every raw
//     byte (`stream`) or the edges and the size (`edges`, takeEdges then end), and the
//     artifact is stored only after the guard ended without error;
//   - the stored body ends cleanly only after every program exited 0 and the input side
//     finished: a failure anywhere makes the target see an error, never a clean end;
//   - on failure every program is killed.
import { close as fsClose } from 'node:fs';
import { open, statfs } from 'node:fs/promises';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { dirname } from 'node:path';
import { pipeline as pipelineCb, PassThrough, Readable, Transform, Writable, type Duplex, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DbsError } from '../errors.js';
import { deathSignalAvailable } from './child.js';
import { type Inspector, type StreamEdges } from './edges.js';
import { planExecution, type Execution, type ExecutionPlan, type GuardMode } from './plan.js';
import { followFile, openFifo, spawnChain, watchFullDisk, type Program } from './programs.js';
import { STAGE_BUFFER, type Observer, type Stage, type SyncTransform } from './stage.js';
import { ProgressCounter } from './stages.js';
import { FrameEdgeCopier, FrameEdgeKeeper, FrameSpans, type FrameEdges } from './zstd-frames.js';

const closeFd = promisify(fsClose);

/** A pool object written by a program (local pools): see PoolDriver.openFile. */
export interface FileOut {
  readonly fd: number;
  readonly path: string;
  commit(): Promise<{ size: number }>;
  abort(): Promise<void>;
}

/** Where the stored bytes go: a put of a stream, or (capability localFiles) a file a program writes. */
export interface ArtifactTarget {
  put(body: Readable): Promise<{ size: number }>;
  openFile?(): Promise<FileOut>;
}

/** What a tool spawned into the plan's input gives back. */
export interface ToolStart {
  /** The tool's stdout when it was asked to write to 'pipe' (the node execution). */
  stdout: Readable | null;
  inspector?: Inspector;
}

export type ArtifactSource =
  | { kind: 'stream'; stream: Readable; inspector?: Inspector }
  /** `spawn(stdout)` starts the tool with that as its stdout: 'pipe', or a program's stdin. */
  | { kind: 'tool'; spawn(stdout: 'pipe' | Writable): ToolStart };

export interface RunArtifactOptions {
  stages: Stage[];
  source: ArtifactSource;
  guard: GuardMode;
  target: ArtifactTarget;
  /** The target takes files written by a program (driver capability). */
  localFiles: boolean;
  force?: Execution;
  /** A small stream (ArtifactWriteOptions.small): compressed in Node rather than by a program. */
  small?: boolean;
  signal: AbortSignal;
  onRawBytes?: (n: number) => void;
  /** Called with each chunk's length as stored bytes go to the target (every execution). */
  onStoredBytes?: (n: number) => void;
  /**
   * Called with each chunk's length as it comes out of a transform stage, named by the part of
   * the stage's name before ':' (compress, encrypt): in Node every transform; of a chain of
   * programs the last one (Node reads its output or follows its file; those before it hand
   * their bytes to the next program without Node).
   */
  onStageBytes?: (stage: string, n: number) => void;
}

/** The short name of a stage for the throughput counters: "compress:zstd-1" -> "compress". */
export const stageKey = (name: string): string => name.split(':')[0]!;

/**
 * Counts what comes out of each (stream, stage name) pair by a 'data' listener: no extra stream
 * (no buffer, no hop) on the data path. Attached after the streams are piped (flowing), so a
 * listener neither starts nor resumes a stream that backpressure paused.
 */
function countStages(o: RunArtifactOptions, outs: [Readable, string][]): void {
  const cb = o.onStageBytes;
  if (!cb) return;
  for (const [stream, name] of outs) {
    const key = stageKey(name);
    stream.on('data', (c: Buffer) => cb(key, c.length));
  }
}

export interface RunArtifactResult {
  execution: Execution;
  /** Stage names, in order. */
  stages: string[];
  rawBytes: number;
  /** What the observers recorded (hash: storedBytes, sha256). */
  facts: Record<string, unknown>;
}

export async function runArtifact(o: RunArtifactOptions): Promise<RunArtifactResult> {
  const plan = planExecution({ stages: o.stages, source: o.source.kind, guard: o.guard, localFiles: o.localFiles && Boolean(o.target.openFile), deathSignal: deathSignalAvailable(), force: o.force, small: o.small });
  const observers = plan.observers.map((s) => s.create());
  const done = (rawBytes: number): RunArtifactResult => ({
    execution: plan.execution,
    stages: o.stages.map((s) => s.name),
    rawBytes,
    facts: Object.assign({}, ...plan.transforms.map((t) => t.facts?.() ?? {}), ...observers.map((x) => x.result())) as Record<string, unknown>,
  });
  if (plan.execution === 'node') return done(await runInNode(o, plan, observers));
  return done(await runPrograms(o, plan, observers));
}

// ---------------------------------------------------------------------------------------------
// node

async function runInNode(o: RunArtifactOptions, plan: ExecutionPlan, observers: Observer[]): Promise<number> {
  const raw = rawCount(o);
  let src: Readable;
  let inspector: Inspector | undefined;
  if (o.source.kind === 'tool') {
    // 'pipe': the pipeline below starts reading in this same tick, so nothing is dropped.
    const t = o.source.spawn('pipe');
    if (!t.stdout) throw new DbsError('INTERNAL', 'the tool was spawned without a stdout pipe');
    src = t.stdout;
    inspector = t.inspector;
  } else {
    src = o.source.stream;
    inspector = o.source.inspector;
  }
  const transforms = plan.transforms.map((t) => [t.node(), t.name] as [Transform, string]);
  const body = chain(src, ...guardStages(o.guard, inspector), raw, ...transforms.map((x) => x[0]), new ObserverTap(observers, undefined, o.onStoredBytes));
  countStages(o, transforms);
  await o.target.put(body);
  return raw.bytes;
}

// ---------------------------------------------------------------------------------------------
// programs, file

async function runPrograms(o: RunArtifactOptions, plan: ExecutionPlan, observers: Observer[]): Promise<number> {
  const file = plan.execution === 'file' ? await o.target.openFile!() : undefined;
  const fifo = !file && syncTailApplies(o, plan) ? await openFifo() : undefined;
  let programs: Program[] = [];
  let syncTail: SyncTail | undefined;
  // A program writing the pool file that stops on a full disk instead of exiting: kill it.
  const fullDisk = file ? watchFullDisk(file.path, () => programs.forEach((p) => p.kill())) : undefined;
  try {
    programs = spawnChain(plan.programs, file ? file.fd : fifo ? fifo.writeFd : 'pipe');
    await fifo?.closeWriter();
    const first = programs[0]!;
    const last = programs.at(-1)!;
    const exited = Promise.all(programs.map((p) => p.exited)).then(() => undefined);
    // The input side: the tool writes into the first program, or Node does.
    let inspector: Inspector | undefined;
    let inputDone: Promise<void>;
    let inputRaw: ProgressCounter | undefined;
    if (o.source.kind === 'tool') {
      const t = o.source.spawn(first.input);
      first.handedOn();
      inspector = t.inspector;
      inputDone = Promise.resolve();
    } else {
      inspector = o.source.inspector;
      inputRaw = rawCount(o);
      inputDone = pipeline([o.source.stream, ...guardStages(o.guard, inspector), inputRaw, first.input]);
      inputDone.catch(() => programs.forEach((p) => p.kill())); // a cut input must not end as a whole one
    }
    if (o.guard !== 'none' && !inspector) throw new DbsError('INTERNAL', `guard mode ${o.guard} without an inspector`);
    // Guard on the output side only when the tool wrote straight into the programs.
    const outGuard = o.source.kind === 'tool' ? o.guard : 'none';
    const allDone = Promise.all([exited, inputDone]).then(() => undefined);

    // The last program's stage: what Node sees of the chain.
    const lastStage = stageKey(plan.transforms[plan.programs.length - 1]!.name);
    if (file) {
      const spans = plan.framed ? new FrameSpans() : undefined;
      const progress = plan.framed ? new FrameProgress(first, o.onRawBytes) : undefined;
      let bytes = 0;
      await followFile(
        file.path,
        allDone,
        (chunk) => {
          if (o.onStageBytes) o.onStageBytes(lastStage, chunk.length);
          spans?.feed(chunk);
          for (const x of observers) x.update(chunk);
          bytes += chunk.length;
          o.onStoredBytes?.(chunk.length);
          if (spans) progress?.frames(spans.walker.frames);
        },
        o.signal,
      );
      let rawBytes: number;
      if (spans) {
        const reader = await open(file.path, 'r');
        const edges = await spans.edges(reader).finally(() => reader.close());
        rawBytes = await judgeEdges(outGuard === 'edges' ? inspector : undefined, edges, first.stderrText);
        progress!.done(rawBytes);
      } else rawBytes = inputRaw!.bytes;
      const put = await file.commit();
      if (put.size !== bytes) throw new DbsError('INTERNAL', `read back ${bytes} bytes, the file holds ${put.size}`);
      return rawBytes;
    }

    if (fifo) {
      // programs, with a Node tail that has a sync form: read the output into reused buffers.
      const check = o.source.kind === 'tool' ? new SyncEdgeCheck(outGuard === 'edges' ? inspector : undefined, first, o.onRawBytes) : undefined;
      syncTail = new SyncTail(fifo.readFd, plan.tail.map((t) => ({ name: stageKey(t.name), sync: t.sync!() })), lastStage, check, observers, allDone, o);
      await o.target.put(syncTail.body);
      await syncTail.done;
      return check ? check.rawBytes : inputRaw!.bytes;
    }

    // programs: Node reads the last program's output.
    let rawBytes = (): number => inputRaw?.bytes ?? 0;
    const verdict: Transform[] = [];
    if (o.source.kind === 'tool') {
      if (plan.framed) {
        const check = new EdgeCheck(outGuard === 'edges' ? inspector : undefined, first, o.onRawBytes);
        rawBytes = () => check.rawBytes;
        verdict.push(check);
      } else {
        // No frames to read the edges from: the guard (or the count) gets a decompressed copy.
        const count = rawCount(o);
        rawBytes = () => count.bytes;
        const seer = guardStages(outGuard, inspector)[0] ?? new PassThrough();
        const undo = plan.transforms.filter((t) => !plan.tail.includes(t)).map((t) => t.inverse?.());
        if (!undo.every((u) => u !== undefined)) throw new DbsError('INTERNAL', 'a program stage that cannot be undone for the guard');
        verdict.push(inspectCopy(undo.reverse(), seer, count));
      }
    }
    const tail = plan.tail.map((t) => [t.node(), t.name] as [Transform, string]);
    const body = chain(last.output!, ...verdict, ...tail.map((x) => x[0]), new ObserverTap(observers, allDone, o.onStoredBytes));
    countStages(o, [[last.output!, lastStage], ...tail]);
    await o.target.put(body);
    await allDone;
    return rawBytes();
  } catch (err) {
    // A program that died is the cause of what followed (a truncated stream): name it.
    const died = await programFailure(programs);
    const e = died ?? err;
    for (const p of programs) p.kill();
    syncTail?.body.destroy();
    if (!file) throw o.signal.aborted ? (o.signal.reason ?? e) : e;
    const full = o.signal.aborted ? undefined : fullDisk?.full ? noSpaceError(file.path, e, 'the program writing it stopped') : await noSpace(e, file.path); // before the abort frees the space
    await file.abort();
    if (o.signal.aborted) throw o.signal.reason ?? e;
    throw full ?? e;
  } finally {
    fullDisk?.stop();
    if (fifo) {
      await fifo.closeWriter().catch(() => undefined); // when the spawn failed
      if (syncTail) await syncTail.settled; // the socket owned the read end and closed it
      else await fifo.closeReader();
    }
  }
}

/**
 * The programs execution reads the last program's output through a FIFO into reused buffers
 * (SyncTail) when its Node tail (encryption) has a sync form, and the edges and raw size come
 * from the frames (or Node counted the raw bytes itself). Otherwise the output is a pipe Node
 * reads as a stream.
 */
function syncTailApplies(o: RunArtifactOptions, plan: ExecutionPlan): boolean {
  return plan.execution === 'programs' && plan.tail.length > 0 && plan.tail.every((t) => t.sync) && (o.source.kind === 'stream' || plan.framed);
}

/** The read buffer of the sync tail (a pipe gives at most 64 KiB a read; more costs nothing). */
const TAIL_READ = 1024 * 1024;

/**
 * The Node tail in sync form: a net.Socket reads the FIFO into one buffer it reuses (`onread`),
 * each read goes through the frame check and the transforms at once, the observers see the
 * stored bytes, and those are offered as `body` for the pool's put, with its backpressure (the
 * socket pauses while the body is full). `body` ends only after every program exited 0 and
 * the edges were judged; any failure destroys it.
 */
class SyncTail {
  readonly body: Readable;
  readonly done: Promise<void>;
  /** Settles once the socket is gone (it closed the FIFO's read end). */
  readonly settled: Promise<void>;
  #socket: Socket | undefined;
  #fail: ((e: Error) => void) | undefined;

  constructor(
    readonly readFd: number,
    readonly stages: { name: string; sync: SyncTransform }[],
    /** The stage whose output the FIFO carries (the last program's), for the throughput counters. */
    readonly fifoStage: string,
    readonly check: SyncEdgeCheck | undefined,
    readonly observers: Observer[],
    readonly allDone: Promise<void>,
    readonly o: RunArtifactOptions,
  ) {
    this.body = new Readable({
      highWaterMark: STAGE_BUFFER,
      read: () => this.#socket?.resume(),
      destroy: (err, cb) => {
        this.#fail?.(err ?? new Error('the pool stopped reading'));
        cb(err);
      },
    });
    // The put reads the body and sees its error; one that already stopped reading must not make it uncaught.
    this.body.on('error', () => undefined);
    allDone.catch(() => undefined); // awaited by the pump, unless it stopped before (then the failure is told there)
    this.done = this.#pump().catch((e: unknown) => {
      this.body.destroy(e as Error);
      throw e;
    });
    this.done.catch(() => undefined);
    this.settled = this.done.then(
      () => undefined,
      () => undefined,
    );
  }

  #count(stage: string, out: Buffer[]): void {
    const cb = this.o.onStageBytes;
    if (!cb) return;
    let n = 0;
    for (const b of out) n += b.length;
    if (n) cb(stage, n);
  }

  /** Feeds the observers and the body; false when the body is full. */
  #emit(bufs: Buffer[]): boolean {
    let room = true;
    for (const b of bufs) {
      for (const x of this.observers) x.update(b);
      this.o.onStoredBytes?.(b.length);
      room = this.body.push(b) && room;
    }
    return room;
  }

  #read(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (e: Error): void => {
        if (failed) return;
        failed = true;
        sock.destroy();
        reject(e);
      };
      const onAbort = (): void => fail(this.o.signal.reason as Error);
      this.o.signal.addEventListener('abort', onAbort, { once: true });
      this.#fail = fail;
      const sock = new Socket({
        fd: this.readFd,
        readable: true,
        writable: false,
        onread: {
          buffer: Buffer.allocUnsafe(TAIL_READ),
          callback: (n: number, buf: Uint8Array): boolean => {
            if (failed) return false;
            try {
              this.o.signal.throwIfAborted();
              const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
              this.o.onStageBytes?.(this.fifoStage, n);
              this.check?.feed(chunk);
              let data: Buffer[] = [chunk];
              for (const s of this.stages) {
                const out: Buffer[] = [];
                for (const d of data) s.sync.update(d, out);
                this.#count(s.name, out);
                data = out;
              }
              return this.#emit(data); // false pauses the socket until the body is read (read() resumes it)
            } catch (e) {
              fail(e as Error);
              return false;
            }
          },
        },
      });
      this.#socket = sock;
      sock.once('error', fail);
      sock.once('end', () => {
        sock.destroy();
        resolve();
      });
      sock.once('close', () => this.o.signal.removeEventListener('abort', onAbort));
    });
  }

  async #pump(): Promise<void> {
    try {
      for (const s of this.stages) await s.sync.start();
    } catch (e) {
      await closeFd(this.readFd);
      throw e;
    }
    try {
      await this.#read();
    } finally {
      const sock = this.#socket;
      if (sock && !sock.closed) await new Promise((r) => sock.once('close', r));
    }
    await this.allDone;
    await this.check?.judge();
    let carry: Buffer[] = [];
    for (const s of this.stages) {
      const out: Buffer[] = [];
      for (const d of carry) s.sync.update(d, out);
      s.sync.final(out);
      this.#count(s.name, out);
      carry = out;
    }
    this.#emit(carry);
    this.body.push(null);
  }
}

/** EdgeCheck for the sync tail: the frames are copied (FrameEdgeCopier), not held. */
class SyncEdgeCheck {
  rawBytes = 0;
  readonly #frames = new FrameEdgeCopier();
  readonly #progress: FrameProgress;
  constructor(
    readonly inspector: Inspector | undefined,
    readonly compressor: { readonly stderrText: string },
    onRaw?: (n: number) => void,
  ) {
    this.#progress = new FrameProgress(compressor, onRaw);
  }
  feed(chunk: Buffer): void {
    this.#frames.feed(chunk);
    this.#progress.frames(this.#frames.walker.frames);
  }
  async judge(): Promise<void> {
    const edges = await this.#frames.edges();
    this.rawBytes = await judgeEdges(this.inspector, edges, this.compressor.stderrText);
    this.#progress.done(this.rawBytes);
  }
}

/** The first program that failed on its own (waiting briefly for exits already under way). */
async function programFailure(programs: Program[]): Promise<Error | undefined> {
  const all = Promise.allSettled(programs.map((p) => p.exited));
  await Promise.race([all, sleep(100)]);
  // One that dbs killed (its input failed: a source gone mid-stream) is not the cause.
  return programs.find((p) => p.failure && !p.killedByDbs)?.failure;
}

// ---------------------------------------------------------------------------------------------
// pieces

/** pipeline() of streams, returning the last; an error anywhere destroys them all. */
function chain(first: Readable, ...rest: (Transform | Duplex)[]): Readable {
  const streams = [first, ...rest];
  pipelineCb(streams, () => undefined);
  return streams.at(-1) as Readable;
}

/** Counts raw bytes, reporting the running total to onRawBytes. */
function rawCount(o: RunArtifactOptions): ProgressCounter {
  return new ProgressCounter((n) => o.onRawBytes?.(n));
}

/** The guard as a stage of a stream Node sees whole: itself (mode stream) or fed its edges. */
function guardStages(guard: GuardMode, inspector: Inspector | undefined): Transform[] {
  if (guard === 'none') return [];
  if (!inspector) throw new DbsError('INTERNAL', `guard mode ${guard} without an inspector`);
  return [guard === 'stream' ? inspector : new EdgeTap(inspector)];
}

/**
 * Feeds the observers the stored bytes as they pass. With `until`, the stream ends only once
 * `until` resolved (every program exited 0, the input side finished) and errors when it
 * rejects: the gate at the end of the stored body. One stage for both: every stage between
 * the compressor and a slow pool holds up to 2 x STAGE_BUFFER.
 */
class ObserverTap extends Transform {
  constructor(
    readonly observers: Observer[],
    readonly until?: Promise<void>,
    readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: STAGE_BUFFER });
    until?.catch(() => undefined);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    for (const x of this.observers) x.update(chunk);
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.until) return cb();
    this.until.then(() => cb(), (e: Error) => cb(e));
  }
}

/** As much as the framed path gives a guard (a pzstd frame or two). */
const HEAD_BYTES = 1024 * 1024;
const TAIL_BYTES = 4 * 1024 * 1024;

/**
 * Gives an edges-mode guard what it asks for from a stream Node sees whole: the first MiB, the
 * last 4 MiB and the size, then ends it; the stream ends once the guard ended cleanly.
 */
class EdgeTap extends Transform {
  #head: Buffer[] = [];
  #headLen = 0;
  /** The last chunks, at least TAIL_BYTES of them when there are (held, not copied). */
  #tail: Buffer[] = [];
  #tailLen = 0;
  #bytes = 0;
  constructor(readonly inspector: Inspector) {
    super({ highWaterMark: STAGE_BUFFER });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#headLen < HEAD_BYTES) {
      const take = chunk.subarray(0, HEAD_BYTES - this.#headLen);
      this.#head.push(Buffer.from(take));
      this.#headLen += take.length;
    }
    this.#tail.push(chunk);
    this.#tailLen += chunk.length;
    while (this.#tail.length > 1 && this.#tailLen - this.#tail[0]!.length >= TAIL_BYTES) this.#tailLen -= this.#tail.shift()!.length;
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const tail = Buffer.concat(this.#tail);
    const edges = { head: Buffer.concat(this.#head), tail: tail.subarray(Math.max(0, tail.length - TAIL_BYTES)), rawBytes: this.#bytes };
    this.#tail = [];
    feedEdges(this.inspector, edges).then(() => cb(), (e: Error) => cb(e));
  }
}

/** A pass-through that feeds an edges-mode guard as every execution does (for sinks in tests). */
export function edgeTap(inspector: Inspector): Transform {
  return new EdgeTap(inspector);
}

/** Hands an edges-mode guard its edges and ends it; resolves once it ended cleanly. */
async function feedEdges(inspector: Inspector, edges: StreamEdges): Promise<void> {
  if (!inspector.takeEdges) throw new DbsError('INTERNAL', 'an edges-mode guard without takeEdges');
  inspector.takeEdges(edges);
  inspector.resume();
  inspector.end();
  await finished(inspector);
}

/**
 * Takes the raw byte count from pzstd's summary (checked against the frames), hands the edges
 * to the guard and ends it; resolves with the count once the guard ended cleanly.
 */
async function judgeEdges(inspector: Inspector | undefined, edges: FrameEdges, pzstdStderr: string): Promise<number> {
  // "stdin : 44.92%   (100000000 => 44922084 bytes, stdout)": the last such line.
  const counts = [...pzstdStderr.matchAll(/\(\s*(\d+) => \s*(\d+) bytes/g)].at(-1);
  const raw = counts ? Number(counts[1]) : NaN;
  if (!Number.isSafeInteger(raw) || raw < edges.head.length || (edges.frames === 1 && raw !== edges.head.length)) {
    throw new DbsError('INTERNAL', `pzstd did not report a byte count that fits its output (frames: ${edges.frames})`, {
      hint: 'set DBS_EXECUTION=node or remove pzstd from PATH, and report this',
    });
  }
  if (inspector) await feedEdges(inspector, { head: edges.head, tail: edges.tail, rawBytes: raw });
  return raw;
}

/** Progress between frames: pzstd cuts its input in frames of one size (it says which). */
class FrameProgress {
  #frameSize = 0;
  #last = 0;
  constructor(
    readonly compressor: { readonly stderrText: string },
    readonly onRaw?: (n: number) => void,
  ) {}
  frames(n: number): void {
    const now = Date.now();
    if (!this.onRaw || now - this.#last < 200) return;
    this.#last = now;
    this.#frameSize ||= Number(/Chosen frame size: (\d+)/.exec(this.compressor.stderrText)?.[1] ?? 0);
    this.onRaw(n * this.#frameSize);
  }
  done(rawBytes: number): void {
    this.onRaw?.(rawBytes);
  }
}

/**
 * Passes pzstd's output through unchanged while checking its frames; at the end decompresses
 * only the first and last frames and lets judgeEdges() decide. The stored stream ends cleanly
 * only if the guard does.
 */
class EdgeCheck extends FrameEdgeKeeper {
  rawBytes = 0;
  readonly #progress: FrameProgress;
  constructor(
    readonly inspector: Inspector | undefined,
    readonly compressor: { readonly stderrText: string },
    onRaw?: (n: number) => void,
  ) {
    super(STAGE_BUFFER);
    this.#progress = new FrameProgress(compressor, onRaw);
  }
  override _transform(chunk: Buffer, e: BufferEncoding, cb: TransformCallback): void {
    super._transform(chunk, e, cb);
    this.#progress.frames(this.walker.frames);
  }
  override _flush(cb: TransformCallback): void {
    super._flush((err) => {
      if (err) return cb(err);
      void this.edges()
        .then((edges) => judgeEdges(this.inspector, edges, this.compressor.stderrText))
        .then(
          (raw) => {
            this.rawBytes = raw;
            this.#progress.done(raw);
            cb();
          },
          (e: Error) => cb(e),
        );
    });
  }
}

/**
 * Passes stored bytes through unchanged while feeding an undone copy (`undo`: decompress) to
 * `seer` (the guard), then `counter`; flushes only once the seer ended without error, so the
 * stored artifact never ends cleanly when the engine's check failed.
 */
function inspectCopy(undo: (Transform | Duplex)[], seer: Transform, counter: Transform): Transform {
  const sinkAll = new Writable({ highWaterMark: STAGE_BUFFER, write: (_c, _e, cb) => cb() });
  const head = undo[0] ?? new PassThrough();
  let verdict: Error | null | undefined;
  const settled = new Promise<Error | null>((resolve) => {
    pipelineCb([head, ...undo.slice(1), seer, counter, sinkAll], (err) => {
      verdict = err ?? null;
      resolve(verdict);
    });
  });
  return new Transform({
    highWaterMark: STAGE_BUFFER,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      if (verdict) return cb(verdict);
      // Backpressure from the inspecting side too.
      if (head.write(chunk)) cb(null, chunk);
      else head.once('drain', () => cb(verdict ?? null, chunk));
    },
    flush(cb: TransformCallback) {
      head.end();
      void settled.then((err) => cb(err));
    },
    destroy(err, cb) {
      if (verdict === undefined) head.destroy(err ?? undefined);
      cb(err);
    },
  });
}

/**
 * pzstd only says "Failed to write output" (no errno): when it failed and the pool's disk is
 * (nearly) full, say that, as the pool drivers do for their own writes.
 */
async function noSpace(e: unknown, path: string): Promise<DbsError | undefined> {
  if (e instanceof DbsError || !/Failed to write|No space left|Disk quota/i.test(String((e as Error)?.message))) return undefined;
  const fs = await statfs(dirname(path)).catch(() => undefined);
  if (!fs || fs.bavail * fs.bsize >= 4 * 1024 * 1024) return undefined;
  return noSpaceError(path, e);
}

function noSpaceError(path: string, cause: unknown, why?: string): DbsError {
  return new DbsError('IO_ERROR', `no space left on the pool's disk (${dirname(dirname(path))})${why ? `; ${why}` : ''}`, { cause, hint: 'free space or move the pool' });
}
