// The planner (pipeline/plan.ts): which execution runs for which stages, source, guard and pool,
// and that a forced execution that cannot run is refused with the reason (every such case).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { planExecution, stagesFor, type Execution, type PlanInput } from '../../src/pipeline/plan.js';
import type { ProgramSpec } from '../../src/pipeline/programs.js';
import type { Stage, TransformStage } from '../../src/pipeline/stage.js';

/** A transform stage whose programs exist as asked: `framed` (pzstd) and/or plain (zstd). */
function compress(has: { framed: boolean; plain: boolean }): TransformStage {
  const spec = (framed: boolean): ProgramSpec => ({ label: framed ? 'pzstd' : 'zstd', path: framed ? '/bin/pzstd' : '/bin/zstd', args: [], framed });
  return {
    kind: 'transform',
    name: 'compress:zstd-1',
    node: () => new PassThrough(),
    program: ({ framed }) => (framed ? (has.framed ? spec(true) : undefined) : has.plain ? spec(false) : undefined),
    inverse: () => new PassThrough(),
  };
}
const hash: Stage = { kind: 'observe', name: 'sha256', create: () => ({ update: () => undefined, result: () => ({}) }) };
const base = (o: Partial<PlanInput> = {}): PlanInput => ({ stages: [compress({ framed: true, plain: true }), hash], source: 'tool', guard: 'edges', localFiles: true, deathSignal: true, ...o });

describe('planExecution', () => {
  it('prefers the file execution for a tool into a local pool, programs into S3, node without programs', () => {
    expect(planExecution(base())).toMatchObject({ execution: 'file', framed: true });
    expect(planExecution(base({ localFiles: false }))).toMatchObject({ execution: 'programs', framed: true });
    expect(planExecution(base({ deathSignal: false }))).toMatchObject({ execution: 'programs' });
    expect(planExecution(base({ stages: [compress({ framed: false, plain: false }), hash] }))).toMatchObject({ execution: 'node', programs: [] });
  });

  it('without a framing program, a tool goes through the plain program and the guard reads a copy', () => {
    expect(planExecution(base({ stages: [compress({ framed: false, plain: true }), hash] }))).toMatchObject({ execution: 'programs', framed: false });
  });

  it('a guard in mode stream never gets the file execution, and frames are not asked for', () => {
    expect(planExecution(base({ guard: 'stream' }))).toMatchObject({ execution: 'programs', framed: false });
  });

  it('a stream from Node goes through the plain program by default, never the file execution unless forced', () => {
    expect(planExecution(base({ source: 'stream', guard: 'none' }))).toMatchObject({ execution: 'programs', framed: false });
    expect(planExecution(base({ source: 'stream', guard: 'none', force: 'file' }))).toMatchObject({ execution: 'file', framed: false });
  });

  it('a small stream from Node is compressed in Node; a tool, a forced execution and a big stream are not affected', () => {
    expect(planExecution(base({ source: 'stream', guard: 'none', small: true }))).toMatchObject({ execution: 'node', programs: [] });
    expect(planExecution(base({ source: 'stream', guard: 'none', small: false }))).toMatchObject({ execution: 'programs' });
    expect(planExecution(base({ source: 'stream', guard: 'none', small: true, force: 'programs' }))).toMatchObject({ execution: 'programs' });
    expect(planExecution(base({ small: true }))).toMatchObject({ execution: 'file' });
  });

  it('compression none leaves only the node execution', () => {
    expect(planExecution(base({ stages: [hash] }))).toMatchObject({ execution: 'node', transforms: [], observers: [hash] });
  });

  it('honours every forced execution that can run', () => {
    for (const e of ['node', 'programs', 'file'] as Execution[]) expect(planExecution(base({ force: e })).execution).toBe(e);
  });

  it('refuses every forced execution that cannot run, naming why', () => {
    const cases: [Partial<PlanInput>, Execution, RegExp][] = [
      [{ localFiles: false }, 'file', /does not take files written by a program/],
      [{ deathSignal: false }, 'file', /setpriv/],
      [{ guard: 'stream' }, 'file', /reads the whole stream/],
      [{ stages: [compress({ framed: false, plain: true }), hash] }, 'file', /no framing program/],
      [{ stages: [hash] }, 'file', /compression none/],
      [{ stages: [hash] }, 'programs', /compression none/],
      [{ stages: [compress({ framed: false, plain: false }), hash] }, 'programs', /has no program on PATH/],
    ];
    for (const [o, force, why] of cases) {
      expect(() => planExecution(base({ ...o, force }))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(why) }));
    }
  });

  it('lists the stages in order: compression, then the hash of what is stored', () => {
    expect(stagesFor({ compression: 'zstd', parallel: false }).map((s) => s.name)).toEqual(['compress:zstd-1', 'sha256']);
    expect(stagesFor({ compression: 'gzip', compressionLevel: 9, parallel: false }).map((s) => s.name)).toEqual(['compress:gzip-9', 'sha256']);
    expect(stagesFor({ compression: 'none', parallel: false }).map((s) => s.name)).toEqual(['sha256']);
  });
});
