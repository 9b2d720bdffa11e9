// What a stage of the backup data path is. Two kinds:
//   - a transform changes the bytes (compress, encrypt). It runs in Node (`node()`), and
//     may also run as an external program (`program()`), which lets the planner chain programs
//     and keep the bytes out of Node.
//   - an observer sees the stored bytes as they go by and may add facts to the artifact's
//     record (hash; meter next). It is fed chunk by chunk, synchronously, so it works on every
//     execution, also when Node only follows a file a program writes.
// Stages are listed, in order, in plan.ts (`stagesFor`): a new stage is its file plus one line
// there. The raw byte count (and progress) and the engine's guard are not stages: every
// execution provides them (see run.ts).
import type { Duplex, Transform } from 'node:stream';
import type { ProgramSpec } from './programs.js';

export interface StageOptions {
  compression: 'zstd' | 'gzip' | 'none';
  /** age recipients (public keys): the artifact is encrypted to them after compression. */
  recipients?: string[];
  compressionLevel?: number;
  /** Compress on every core: the source is cheap to produce (a file copy, not a dump tool). */
  parallel: boolean;
  /** Compress in independent frames at raw offsets the stage records (`frames` in the artifact record). */
  frameTable?: boolean;
}

export interface TransformStage {
  readonly kind: 'transform';
  /** Recorded in the manifest, e.g. "compress:zstd-1". */
  readonly name: string;
  /** The stage as a Node Transform. */
  node(): Transform;
  /**
   * The stage as a program, or undefined when there is none on this machine. `framed`: the
   * program must write independent frames and report its input size (pzstd), so that the
   * stream's edges can be read without decompressing all of it.
   */
  program(o: { framed: boolean }): ProgramSpec | undefined;
  /**
   * Undoes the stage in Node (a decompressor): what lets a guard read a stored copy. A stage
   * the backup host cannot undo (encryption: it holds no private key) has none; it has no
   * program either, so it runs in Node after the programs, and a guard's copy is taken before it.
   */
  inverse?(): Duplex;
  /** Fields for the artifact's record, read after the last chunk (the frame table of framed zstd). */
  facts?(): Record<string, unknown>;
  /**
   * The stage as a synchronous transform, for the Node tail of the programs execution: there
   * Node reads the last program's output into a buffer it reuses (run.ts), which spares the
   * garbage collector a fresh buffer per pipe read.
   */
  sync?(): SyncTransform;
}

/**
 * A transform fed synchronously. `update` may read `chunk` only during the call (the caller
 * reuses it): what it keeps it copies. What it pushes to `out` is the caller's to keep.
 */
export interface SyncTransform {
  /** Resolves once the transform can take input (an encryptor draws its key and header). */
  start(): Promise<void>;
  update(chunk: Buffer, out: Buffer[]): void;
  /** The input ended: the last output. */
  final(out: Buffer[]): void;
}

export interface Observer {
  update(chunk: Buffer): void;
  /** Fields for the artifact's record, read after the last chunk. */
  result(): Record<string, unknown>;
}

export interface ObserverStage {
  readonly kind: 'observe';
  readonly name: string;
  create(): Observer;
}

export type Stage = TransformStage | ObserverStage;

/** Buffer between stages, so a slow stage does not hold the others in lock-step. */
export const STAGE_BUFFER = 4 * 1024 * 1024;
