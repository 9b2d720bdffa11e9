// Stage: compression (zstd, gzip). zstd runs as the zstd/pzstd program when one is on PATH
// (it then compresses in its own process beside the dump tool and Node) or in Node (node:zlib);
// gzip in Node.
import type { Duplex, Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { DbsError } from '../../errors.js';
import { programOnPath } from '../../which.js';
import type { ProgramSpec } from '../programs.js';
import type { StageOptions, TransformStage } from '../stage.js';
import { zstdFramesDecompress } from '../zstd-frames.js';

// node:zlib has zstd from Node 22.15 / 23.8 on; typed loosely so older typings still build.
const z = zlib as typeof zlib & {
  createZstdCompress?: (o?: { params?: Record<number, number>; chunkSize?: number }) => Transform;
  createZstdDecompress?: (o?: { chunkSize?: number }) => Transform;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};

/**
 * Output chunk of the zlib streams. zlib's default (16 KiB) makes every chunk a thread-pool
 * round trip: measured on 885 MB of dump-like text, zstd -1 took 4.1 s with 16 KiB, 2.5 s
 * with 1 MiB (the zstd CLI: 2.1 s).
 */
export const ZLIB_CHUNK = 1024 * 1024;

function needZstd(): never {
  throw new DbsError('TOOL_MISSING', `zstd compression needs Node.js 22.15 or newer (this is ${process.version})`, {
    hint: 'run dbs with a newer Node.js, or choose --compress gzip',
  });
}

/** zstd levels the programs accept without --ultra. */
export function zstdLevel(level: number | undefined): number {
  return Math.min(Math.max(level ?? 1, 1), 19);
}

export function zstdCompressNode(level: number): Transform {
  if (!z.createZstdCompress) needZstd();
  const key = z.constants.ZSTD_c_compressionLevel ?? 100;
  return z.createZstdCompress({ params: { [key]: level }, chunkSize: ZLIB_CHUNK });
}

/** Decompresses what `compression` wrote (zstd frame by frame: pzstd writes many). */
export function decompressor(compression: 'zstd' | 'gzip' | 'none'): Duplex | undefined {
  switch (compression) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGunzip({ chunkSize: ZLIB_CHUNK });
    case 'zstd':
      if (!z.createZstdDecompress) needZstd();
      // Frame by frame: backups hold many frames (pzstd), which node:zlib alone cannot read.
      return zstdFramesDecompress(ZLIB_CHUNK);
  }
}

/**
 * Default levels: zstd 1 (the dump tools are CPU-bound and on a small machine every cycle
 * spent compressing is taken from them; on the 1 GB sysbench bench level 3 was 3x slower and
 * not smaller), gzip 6 (gzip's own default). `compressionLevel` raises either.
 */
export function compressStage(o: StageOptions, threads: () => number): TransformStage | undefined {
  if (o.compression === 'none') return undefined;
  if (o.compression === 'gzip') {
    const level = Math.min(o.compressionLevel ?? 6, 9);
    return {
      kind: 'transform',
      name: `compress:gzip-${level}`,
      node: () => zlib.createGzip({ level, chunkSize: ZLIB_CHUNK }),
      program: () => undefined,
      inverse: () => decompressor('gzip')!,
    };
  }
  const level = zstdLevel(o.compressionLevel);
  return {
    kind: 'transform',
    name: `compress:zstd-${level}`,
    node: () => zstdCompressNode(o.compressionLevel ?? 1),
    program({ framed }): ProgramSpec | undefined {
      // pzstd (same Debian package as zstd): independent frames of a few MiB (see
      // zstd-frames.ts for why that matters); any zstd decoder reads its output.
      if (framed) {
        const path = programOnPath('pzstd');
        const p = String(o.parallel ? threads() : 1);
        return path ? { label: `pzstd -${level} -p ${p}`, path, args: [`-${level}`, '-p', p, '-c', '-v'], framed: true } : undefined;
      }
      const path = programOnPath('zstd');
      return path ? { label: `zstd -${level}`, path, args: ['-q', `-${level}`, '-c', '--no-progress'], framed: false } : undefined;
    },
    inverse: () => decompressor('zstd')!,
  };
}
