// The planner: the stage list of an artifact, and how it runs. Three executions:
//   node      every stage in Node: the source stream is piped through Node Transforms.
//   programs  the transform stages run as a chain of programs (pzstd, ...); the source (a
//             tool's stdout, or a stream Node writes) feeds the first one, Node reads the last
//             one's output for the observers and the pool. Transforms after the last one that
//             has a program (encryption) run in Node on that output: the Node tail.
//   file      like programs, but the last program writes the pool file itself; Node follows
//             the file as it grows (page cache) for the observers. Only for drivers whose
//             objects are local files (capability localFiles) and where children die with dbs.
// The choice is made here from the stages, the source, the engine's guard mode and the pool
// driver's capabilities; `force` (the run context: setting `execution`, DBS_EXECUTION) picks
// one regardless, and is an error where it cannot run.
import { availableParallelism } from 'node:os';
import { DbsError } from '../errors.js';
import type { ProgramSpec } from './programs.js';
import type { ObserverStage, Stage, StageOptions, TransformStage } from './stage.js';
import { compressStage, zstdLevel } from './stages/compress.js';
import { framedZstdStage } from './stages/framed-zstd.js';

import { encryptStage } from './stages/encrypt.js';
import { hashStage } from './stages/hash.js';

import { EXECUTIONS, type Execution } from './names.js';
export { EXECUTIONS, type Execution };

/**
 * What the engine's guard needs to see: `stream` every raw byte (it parses the stream),
 * `edges` the first and last bytes and the size (it judges header, trailer and length),
 * `none` nothing (there is no guard).
 */
export type GuardMode = 'stream' | 'edges' | 'none';

/** The stages of an artifact, in the order the bytes pass them. A new stage: one line here. */
export function stagesFor(o: StageOptions): Stage[] {
  const stages: (Stage | undefined)[] = [
    o.frameTable && o.compression === 'zstd' ? framedZstdStage(zstdLevel(o.compressionLevel)) : compressStage(o, availableParallelism),
    encryptStage(o),
    hashStage(),
  ];
  return stages.filter((s): s is Stage => s !== undefined);
}

export interface PlanInput {
  stages: Stage[];
  /** A tool's stdout (the tool is spawned into the plan's input), or a stream from Node. */
  source: 'tool' | 'stream';
  guard: GuardMode;
  /** The pool driver takes files written by a program (its capability). */
  localFiles: boolean;
  /** Children get a death signal here (setpriv): required for programs no Node pipe watches. */
  deathSignal: boolean;
  force?: Execution;
  /** A small stream from Node: Node is tried before programs (a spawn costs more than the work). */
  small?: boolean;
}

export interface ExecutionPlan {
  execution: Execution;
  /** Every transform, in order (for node: all of them run in Node). */
  transforms: TransformStage[];
  /** For programs: the transforms after the chain, run in Node on the last program's output. */
  tail: TransformStage[];
  observers: ObserverStage[];
  /** For programs/file: the chain, in order. */
  programs: ProgramSpec[];
  /** The last program writes frames whose edges Node reads (pzstd). */
  framed: boolean;
}

/** Why an execution cannot run for this input, or undefined when it can (with its programs). */
function attempt(i: PlanInput, e: Execution, all: TransformStage[]): { programs: ProgramSpec[]; framed: boolean; tail: TransformStage[] } | string {
  if (e === 'node') return { programs: [], framed: false, tail: [] };
  // A transform without a program at all (encryption) and those after it form the Node tail.
  const cut = all.findIndex((t) => !t.program({ framed: false }) && !t.program({ framed: true }) && !t.inverse);
  const transforms = cut < 0 ? all : all.slice(0, cut);
  const tail = cut < 0 ? [] : all.slice(cut);
  if (transforms.length === 0) return all.length ? `${all[0]!.name} runs in Node only` : 'no stage runs as a program (compression none)';
  if (e === 'file' && tail.length) return `${tail[0]!.name} runs in Node, after the programs: no program can write the pool file`;
  if (e === 'file') {
    if (!i.localFiles) return 'the pool does not take files written by a program (its driver lacks localFiles)';
    if (!i.deathSignal) return 'programs writing a pool file need setpriv (util-linux) to die with dbs';
    if (i.guard === 'stream') return "the engine's guard reads the whole stream, which a program writing the file keeps from Node";
  }
  // Frames are needed where Node sees no raw byte yet must learn the raw size or the edges.
  const needFrames = e === 'file' ? !(i.source === 'stream' && i.guard === 'none') : i.source === 'tool' && i.guard !== 'stream';
  const tries = needFrames && e === 'file' ? [true] : needFrames ? [true, false] : [false];
  for (const framed of tries) {
    const programs = transforms.map((t) => t.program({ framed: framed && t === transforms.at(-1) }));
    if (programs.every((p): p is ProgramSpec => p !== undefined)) return { programs, framed: framed && programs.at(-1)!.framed, tail };
  }
  const missing = transforms.find((t) => !t.program({ framed: false }) && !t.program({ framed: true }));
  return missing ? `${missing.name} has no program on PATH` : `${transforms.at(-1)!.name} has no framing program on PATH (pzstd)`;
}

export function planExecution(i: PlanInput): ExecutionPlan {
  const transforms = i.stages.filter((s): s is TransformStage => s.kind === 'transform');
  const observers = i.stages.filter((s): s is ObserverStage => s.kind === 'observe');
  const order: Execution[] = i.force ? [i.force] : i.source === 'tool' ? ['file', 'programs', 'node'] : i.small ? ['node', 'programs'] : ['programs', 'node'];
  for (const e of order) {
    const r = attempt(i, e, transforms);
    if (typeof r !== 'string') return { execution: e, transforms, observers, ...r };
    if (i.force) {
      throw new DbsError('INVALID_CONFIG', `execution ${e} (setting execution / DBS_EXECUTION) cannot run here: ${r}`, {
        hint: `unset DBS_EXECUTION (dbs then chooses), or use one of ${EXECUTIONS.filter((x) => x !== e).join(', ')}`,
      });
    }
  }
  throw new DbsError('INTERNAL', 'no execution for the data path');
}
