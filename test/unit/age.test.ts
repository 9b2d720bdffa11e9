// The encryption stage (pipeline/stages/encrypt.ts): the age format, interoperable BOTH ways
// with Debian's `age` program (it encrypts, `age -d` decrypts; `age -r` encrypts, the stage
// decrypts), at the chunk edges (empty, one byte, exactly 64 KiB, 64 KiB + 1, many chunks),
// post-quantum recipients (dbs both ways: Debian's age 1.1 predates them), and what a wrong
// key, a cut or a flipped byte give.
import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { generateHybridIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, describe, expect, it } from 'vitest';
import { AGE_CHUNK, AgeDecrypt, AgeEncrypt, checkRecipient, parseIdentities } from '../../src/pipeline/stages/encrypt.js';
import { planExecution, stagesFor } from '../../src/pipeline/plan.js';

const dir = mkdtempSync(join(tmpdir(), 'dbs-age-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function keygen(name: string): Promise<{ file: string; recipient: string }> {
  const file = join(dir, `${name}.txt`);
  await execa('age-keygen', ['-o', file]);
  const { stdout } = await execa('age-keygen', ['-y', file]);
  return { file, recipient: stdout.trim() };
}

/** Feeds `data` in pieces of `piece` bytes (odd sizes cross the chunk edges). */
async function through(t: NodeJS.ReadWriteStream & Writable, data: Buffer, piece = 10_007): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) parts.push(data.subarray(i, i + piece));
  const out: Buffer[] = [];
  await pipeline(Readable.from(parts), t, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const SIZES = [0, 1, AGE_CHUNK - 1, AGE_CHUNK, AGE_CHUNK + 1, 2 * AGE_CHUNK, 3 * AGE_CHUNK + 12_345];

describe('age stage', () => {
  it('what the stage encrypts, `age -d` decrypts, at every chunk edge', async () => {
    const k = await keygen('a');
    for (const n of SIZES) {
      const data = randomBytes(n);
      const enc = await through(new AgeEncrypt([k.recipient]), data);
      const f = join(dir, `s-${n}.age`);
      writeFileSync(f, enc);
      const { stdout } = await execa('age', ['-d', '-i', k.file, f], { encoding: 'buffer' });
      expect(sha(Buffer.from(stdout)), `size ${n}`).toBe(sha(data));
    }
  });

  it('input in any piece size gives the same plaintext back: whole chunks held by reference, chunks assembled from pieces, pieces that end on a chunk edge', async () => {
    const k = await keygen('pieces');
    const ids = await parseIdentities(readFileSync(k.file, 'utf8'), 'the key');
    const data = randomBytes(5 * AGE_CHUNK + 777);
    // 64 KiB / 2 and / 4: assembled chunks end exactly where an input ends (the held buffer
    // must survive the next assembly); 64 KiB and 2 x 64 KiB: whole chunks by reference;
    // 64 KiB + 1 and 3: both kinds in turn.
    for (const piece of [1, 3, AGE_CHUNK / 4, AGE_CHUNK / 2, AGE_CHUNK - 1, AGE_CHUNK, AGE_CHUNK + 1, 2 * AGE_CHUNK, 10 * AGE_CHUNK]) {
      const enc = await through(new AgeEncrypt([k.recipient]), data, piece);
      expect(sha(await through(new AgeDecrypt(ids, 'x'), enc)), `piece ${piece}`).toBe(sha(data));
      // Every chunk is sealed once: header + nonce + 6 chunks of tag overhead, whatever the pieces.
      expect(enc.length - data.length, `piece ${piece}`).toBe(enc.indexOf('\n', enc.indexOf('\n--- ') + 1) + 1 + 16 + 6 * 16);
    }
    const f = join(dir, 'pieces.age');
    writeFileSync(f, await through(new AgeEncrypt([k.recipient]), data, AGE_CHUNK / 2));
    const { stdout } = await execa('age', ['-d', '-i', k.file, f], { encoding: 'buffer' });
    expect(sha(Buffer.from(stdout))).toBe(sha(data));
  });

  it('what `age -r` encrypts (to two recipients), the stage decrypts with either identity, at every chunk edge', async () => {
    const a = await keygen('b1');
    const b = await keygen('b2');
    for (const n of SIZES) {
      const data = randomBytes(n);
      const f = join(dir, `p-${n}.bin`);
      writeFileSync(f, data);
      const { stdout } = await execa('age', ['-r', a.recipient, '-r', b.recipient, f], { encoding: 'buffer' });
      for (const key of [a, b]) {
        const ids = await parseIdentities(readFileSync(key.file, 'utf8'), 'key');
        expect(sha(await through(new AgeDecrypt(ids, 'test'), Buffer.from(stdout), 4093)), `size ${n}`).toBe(sha(data));
      }
    }
  });

  it('post-quantum (age1pq1) recipients round-trip through the stage; a mixed X25519 + pq file opens with age -d', async () => {
    const pq = await generateHybridIdentity();
    const pqRecipient = await identityToRecipient(pq);
    expect(pqRecipient.startsWith('age1pq1')).toBe(true);
    expect(checkRecipient(pqRecipient)).toBeUndefined();
    const x = await keygen('c');
    const data = randomBytes(3 * AGE_CHUNK + 7);
    const enc = await through(new AgeEncrypt([pqRecipient, x.recipient]), data);
    const ids = await parseIdentities(`# a comment\n${pq}\n`, 'pq key');
    expect(ids.recipients).toEqual([pqRecipient]);
    expect(sha(await through(new AgeDecrypt(ids, 'test'), enc))).toBe(sha(data));
    // Debian's age 1.1 does not know the pq stanza but skips it and opens the X25519 one.
    const f = join(dir, 'mixed.age');
    writeFileSync(f, enc);
    const { stdout } = await execa('age', ['-d', '-i', x.file, f], { encoding: 'buffer' });
    expect(sha(Buffer.from(stdout))).toBe(sha(data));
  });

  it('a wrong identity, a cut payload and a flipped byte are refused, each with its own error', async () => {
    const k = await keygen('d');
    const other = await keygen('e');
    const data = randomBytes(2 * AGE_CHUNK + 99);
    const enc = await through(new AgeEncrypt([k.recipient]), data);
    const right = await parseIdentities(readFileSync(k.file, 'utf8'), 'key');
    const wrong = await parseIdentities(readFileSync(other.file, 'utf8'), 'key');
    await expect(through(new AgeDecrypt(wrong, 'artifact x'), enc)).rejects.toMatchObject({ code: 'IDENTITY_MISMATCH', message: expect.stringContaining(other.recipient) });
    // Cut at a chunk edge: the last remaining chunk was not sealed as the last one.
    const header = enc.indexOf('\n--- ');
    const payloadStart = enc.indexOf('\n', header + 1) + 1 + 16;
    const cut = enc.subarray(0, payloadStart + AGE_CHUNK + 16);
    await expect(through(new AgeDecrypt(right, 'artifact x'), cut)).rejects.toMatchObject({ code: 'VERIFY_FAILED', message: expect.stringMatching(/chunk 1 .*fails authentication/) });
    const flipped = Buffer.from(enc);
    flipped[payloadStart + AGE_CHUNK + 100]! ^= 1;
    await expect(through(new AgeDecrypt(right, 'artifact x'), flipped)).rejects.toMatchObject({ code: 'VERIFY_FAILED', message: expect.stringMatching(/chunk 2 /) });
    await expect(through(new AgeDecrypt(right, 'artifact x'), Buffer.from('plain text, not age at all'))).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    // And age itself refuses what the stage refuses (same format).
    const f = join(dir, 'cut.age');
    writeFileSync(f, cut);
    expect((await execa('age', ['-d', '-i', k.file, f], { reject: false })).exitCode).not.toBe(0);
  });

  it('recipient strings are checked: typos, private keys and other kinds are refused', async () => {
    const k = await keygen('f');
    expect(checkRecipient(k.recipient)).toBeUndefined();
    expect(checkRecipient(k.recipient.slice(0, -1) + (k.recipient.endsWith('q') ? 'p' : 'q'))).toMatch(/checksum|invalid/i);
    expect(checkRecipient('age1')).toBeDefined();
    expect(checkRecipient('ssh-ed25519 AAAA')).toMatch(/not an age/);
    expect(checkRecipient(readFileSync(k.file, 'utf8').split('\n').at(-2)!)).toMatch(/not an age/);
    await expect(parseIdentities(`${k.recipient}\n`, 'the file f')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('line 1 is not an age identity') });
    await expect(parseIdentities('# only a comment\n', 'the file f')).rejects.toMatchObject({ message: expect.stringContaining('holds no age identity') });
  });

  it('the planner runs the encryption in Node after the programs; never in the file execution', () => {
    const stages = stagesFor({ compression: 'zstd', recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'], parallel: false });
    expect(stages.map((s) => s.name)).toEqual(['compress:zstd-1', 'encrypt:age', 'sha256']);
    const p = planExecution({ stages, source: 'tool', guard: 'edges', localFiles: true, deathSignal: true });
    expect(p).toMatchObject({ execution: 'programs', framed: true });
    expect(p.programs.map((x) => x.label)).toEqual(['pzstd -1 -p 1']);
    expect(p.tail.map((t) => t.name)).toEqual(['encrypt:age']);
    expect(() => planExecution({ stages, source: 'tool', guard: 'edges', localFiles: true, deathSignal: true, force: 'file' })).toThrow(/encrypt:age runs in Node, after the programs/);
    expect(planExecution({ stages, source: 'stream', guard: 'none', localFiles: false, deathSignal: true, force: 'node' })).toMatchObject({ execution: 'node', tail: [] });
    const plain = stagesFor({ compression: 'none', recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'], parallel: false });
    expect(planExecution({ stages: plain, source: 'tool', guard: 'edges', localFiles: true, deathSignal: true })).toMatchObject({ execution: 'node' });
  });
});
