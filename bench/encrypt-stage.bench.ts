// The encryption stage alone, against the candidates it was chosen from: the age format's
// payload by node:crypto (dbs's stage: src/pipeline/stages/encrypt.ts), by the age-encryption
// library alone (pure JS), and by the `age` program (Debian's, Go) reading a pipe. Input:
// incompressible bytes (what follows zstd), BENCH_MB of them (default 512), in 1 MiB chunks.
//   npx tsc -p tsconfig.json && npx vitest run --config bench/vitest.config.ts bench/encrypt-stage.bench.ts
import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { expect, test } from 'vitest';
import { AgeDecrypt, AgeEncrypt, parseIdentities } from '../src/pipeline/stages/encrypt.js';
import { median } from './support.js';

const MB = Number(process.env.BENCH_MB ?? 512);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CHUNK = 1 << 20;
const block = randomBytes(CHUNK);

function source(mb: number): Readable {
  let left = mb;
  return new Readable({
    highWaterMark: 4 * CHUNK,
    read() {
      this.push(left-- > 0 ? block : null);
    },
  });
}

function drain(): Writable & { bytes: number } {
  const w = new Writable({
    highWaterMark: 4 * CHUNK,
    write(c: Buffer, _e, cb) {
      w.bytes += c.length;
      cb();
    },
  }) as Writable & { bytes: number };
  w.bytes = 0;
  return w;
}

/** CPU seconds of this process (user + system) per row, beside the wall time. */
const cpu = new Map<string, number[]>();
let row = '';
/** `scale`: the row ran on less input; its CPU is scaled like its time. */
async function time(fn: () => Promise<void>, scale = 1): Promise<number> {
  const t = performance.now();
  const c = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(c);
  cpu.set(row, [...(cpu.get(row) ?? []), ((d.user + d.system) / 1e6) * scale]);
  return (performance.now() - t) / 1000;
}

test('encryption stage alone: MB/s of each candidate', async () => {
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  const ids = await parseIdentities(identity, 'bench key');
  const dir = mkdtempSync(join(tmpdir(), 'dbs-age-bench-'));
  const file = join(dir, 'in.bin');
  writeFileSync(file, Buffer.concat(Array.from({ length: MB }, () => block)));
  const rows: [string, number[]][] = [
    ['dbs stage: node:crypto ChaCha20-Poly1305 (encrypt)', []],
    ['dbs stage: node:crypto (decrypt)', []],
    ['age-encryption library alone, pure JS (encrypt)', []],
    ['age 1.1.1 program, file -> /dev/null (encrypt)', []],
    ['age 1.1.1 program, pipe from Node -> Node (encrypt)', []],
    ['sha256 in Node (for scale: the hash stage)', []],
  ];
  try {
    const stored: Buffer[] = [];
    for (let r = 0; r < RUNS; r++) {
      row = rows[0]![0];
      rows[0]![1].push(await time(() => pipeline(source(MB), new AgeEncrypt([recipient]), drain())));
      if (r === 0) {
        // keep a ciphertext of 64 MiB to decrypt
        const keep = new Writable({ write: (c: Buffer, _e, cb) => (stored.push(c), cb()) });
        await pipeline(source(Math.min(MB, 64)), new AgeEncrypt([recipient]), keep);
      }
      const ct = Buffer.concat(stored);
      row = rows[1]![0];
      const dec = await time(() => pipeline(Readable.from([ct]), new AgeDecrypt(ids, 'bench'), drain()), MB / Math.min(MB, 64));
      rows[1]![1].push(dec * (MB / Math.min(MB, 64)));
      // The library on 64 MiB (it is slow), scaled.
      const libMb = Math.min(MB, 64);
      row = rows[2]![0];
      const lib = await time(async () => {
        const e = new Encrypter();
        e.addRecipient(recipient);
        const out = await e.encrypt(Readable.toWeb(source(libMb)) as ReadableStream<Uint8Array>);
        await pipeline(Readable.fromWeb(out as import('node:stream/web').ReadableStream), drain());
      }, MB / libMb);
      rows[2]![1].push(lib * (MB / libMb));
      row = rows[3]![0];
      rows[3]![1].push(await time(async () => void (await execa('age', ['-r', recipient, '-o', '/dev/null', file]))));
      row = rows[4]![0];
      rows[4]![1].push(
        await time(async () => {
          const p = execa('age', ['-r', recipient], { stdin: 'pipe', stdout: 'pipe', buffer: false });
          await Promise.all([pipeline(source(MB), p.stdin!), pipeline(p.stdout!, drain()), p]);
        }),
      );
      const h = createHash('sha256');
      row = rows[5]![0];
      rows[5]![1].push(
        await time(() =>
          pipeline(
            source(MB),
            new Writable({
              highWaterMark: 4 * CHUNK,
              write(c: Buffer, _e, cb) {
                h.update(c);
                cb();
              },
            }),
          ),
        ),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `## age encryption stage alone (${MB} MiB of incompressible input, ${RUNS} runs, medians; this machine, shared, under load)`,
    '',
    'CPU s of Node is the dbs process only (the age program runs in its own process); decrypt and the library are scaled from 64 MiB.',
    '',
    '| candidate | median s | MiB/s | Node CPU s |',
    '|---|---|---|---|',
    ...rows.map(([n, xs]) => `| ${n} | ${median(xs).toFixed(2)} | ${(MB / median(xs)).toFixed(0)} | ${median(cpu.get(n) ?? [NaN]).toFixed(2)} |`),
    '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  expect(rows.every(([, xs]) => xs.length === RUNS)).toBe(true);
});
