// Stage: encryption to age recipients (https://age-encryption.org/v1), after compression.
//
// The header (one stanza per recipient, X25519 or the post-quantum hybrid `age1pq1`, and its
// HMAC) is written by the age author's library, age-encryption (typage); the payload, the
// STREAM construction (ChaCha20-Poly1305 over 64 KiB chunks, nonce = 11-byte big-endian chunk
// counter + a last-chunk flag byte, key = HKDF-SHA-256 of the file key and a 16-byte nonce,
// info "payload"), by node:crypto (OpenSSL). Chosen by measurement (bench/encrypt-stage.bench.ts):
// the library's pure-JS payload cipher is far slower than OpenSSL's, and the `age` program would
// hide the compressor's frames from the guard and cost a process and two pipe hops; the stage
// runs in Node after the programs (plan.ts: the Node tail of the programs execution).
//
// The backup host needs no private key: the file key lives in this process only while the
// artifact is written. Reading back (restore, verify --prepare) takes an identity file.
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DbsError } from '../../errors.js';
import { loadAge } from './age-lib.js';
import { STAGE_BUFFER, type SyncTransform, type TransformStage } from '../stage.js';

/** Plaintext bytes per STREAM chunk (age spec). */
export const AGE_CHUNK = 64 * 1024;
const TAG = 16;
const NONCE = 16;
/** More than any header dbs writes (a post-quantum stanza is ~1.7 KB) could need. */
const MAX_HEADER = 1024 * 1024;

export interface AgeEncryption {
  format: 'age';
  recipients: string[];
}

/** Checks one recipient string: X25519 (`age1...`) or post-quantum hybrid (`age1pq1...`). */
export function checkRecipient(r: string): string | undefined {
  if (!r.startsWith('age1') || r.startsWith('age1tag')) return 'not an age X25519 (age1...) or post-quantum (age1pq1...) recipient';
  try {
    const { Encrypter } = loadAge();
    new Encrypter().addRecipient(r);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The lines of an age recipients or identity file: without comments and empty lines. */
export function keyLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** Header bytes and file key for one artifact, from the library (it draws the file key). */
export async function ageHeader(recipients: string[]): Promise<{ header: Buffer; fileKey: Buffer }> {
  let fileKey: Uint8Array | undefined;
  const { Encrypter } = loadAge();
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  // A recipient that adds no stanza and only keeps the file key the library drew.
  e.addRecipient({ wrapFileKey: (k: Uint8Array) => ((fileKey = k), []) });
  // An empty file: header + 16-byte nonce + the empty final chunk (its 16-byte tag).
  const empty = await e.encrypt(new Uint8Array(0));
  if (!fileKey) throw new DbsError('INTERNAL', 'the age library drew no file key');
  return { header: Buffer.from(empty.subarray(0, empty.length - NONCE - TAG)), fileKey: Buffer.from(fileKey) };
}

/** The payload key as a KeyObject: a cipher made from one is ~6x cheaper than from a Buffer (measured: 7 vs 42 µs a chunk). */
function payloadKey(fileKey: Buffer, nonce: Buffer): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32)));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  // 11-byte big-endian counter: 2^53 chunks of 64 KiB is far beyond any artifact.
  n.writeUIntBE(Math.floor(counter / 2 ** 40), 0, 6);
  n.writeUIntBE(counter % 2 ** 40, 6, 5);
  n[11] = last ? 1 : 0;
  return n;
}

/**
 * The age payload writer: header and nonce (start), then sealed 64 KiB chunks. A full chunk is
 * held (copied) until more input shows it is not the last one (the last chunk carries the
 * flag). Each output buffer is new (the caller may keep it); the input is only read during
 * the call (the sync tail of run.ts hands in a buffer it reuses).
 */
export class AgeSealer implements SyncTransform {
  readonly #ready: Promise<{ key: KeyObject; head: Buffer }>;
  #key: KeyObject | undefined;
  #head: Buffer | undefined;
  #counter = 0;
  readonly #buf = Buffer.allocUnsafe(AGE_CHUNK);
  #len = 0;

  constructor(recipients: string[]) {
    this.#ready = ageHeader(recipients).then(({ header, fileKey }) => {
      const nonce = randomBytes(NONCE);
      return { key: payloadKey(fileKey, nonce), head: Buffer.concat([header, nonce]) };
    });
    this.#ready.catch(() => undefined);
  }

  get started(): boolean {
    return this.#key !== undefined;
  }

  async start(): Promise<void> {
    if (this.#key) return;
    const { key, head } = await this.#ready;
    this.#key = key;
    this.#head = head;
  }

  #seal(pt: Buffer, last: boolean, out: Buffer[]): void {
    if (this.#head) {
      out.push(this.#head);
      this.#head = undefined;
    }
    const c = createCipheriv('chacha20-poly1305', this.#key!, chunkNonce(this.#counter++, last), { authTagLength: TAG });
    const body = c.update(pt);
    c.final();
    // Body and tag as two buffers: a concat would allocate (and collect) the chunk again.
    if (body.length) out.push(body);
    out.push(c.getAuthTag());
  }

  update(chunk: Buffer, out: Buffer[]): void {
    if (!this.#key) throw new DbsError('INTERNAL', 'the age sealer was fed before start()');
    let off = 0;
    while (off < chunk.length) {
      if (this.#len === AGE_CHUNK) {
        // More input follows: the held chunk is not the last.
        this.#seal(this.#buf, false, out);
        this.#len = 0;
      }
      if (this.#len === 0 && chunk.length - off > AGE_CHUNK) {
        this.#seal(chunk.subarray(off, off + AGE_CHUNK), false, out);
        off += AGE_CHUNK;
        continue;
      }
      const n = Math.min(AGE_CHUNK - this.#len, chunk.length - off);
      chunk.copy(this.#buf, this.#len, off, off + n);
      this.#len += n;
      off += n;
    }
  }

  final(out: Buffer[]): void {
    if (!this.#key) throw new DbsError('INTERNAL', 'the age sealer was ended before start()');
    this.#seal(this.#buf.subarray(0, this.#len), true, out);
  }
}

/** Encrypts to the recipients as a Node Transform (the node execution; tests). */
export class AgeEncrypt extends Transform {
  readonly #sealer: AgeSealer;

  constructor(recipients: string[], highWaterMark?: number) {
    super(highWaterMark ? { highWaterMark } : {});
    this.#sealer = new AgeSealer(recipients);
  }

  #emit(out: Buffer[]): void {
    for (const b of out) this.push(b);
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (!this.#sealer.started) {
      this.#sealer.start().then(() => this._transform(chunk, _e, cb), cb);
      return;
    }
    const out: Buffer[] = [];
    this.#sealer.update(chunk, out);
    this.#emit(out);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.#sealer.start().then(() => {
      const out: Buffer[] = [];
      this.#sealer.final(out);
      this.#emit(out);
      cb();
    }, cb);
  }
}

/** What the reader of an encrypted artifact needs: the identities (secret keys) of an identity file. */
export interface AgeIdentities {
  /** The AGE-SECRET-KEY-... lines. Never printed. */
  readonly keys: string[];
  /** Their recipients (public keys), to name in messages. */
  readonly recipients: string[];
}

/** Parses an identity file's text; a DbsError naming `what` when a line is not an age identity. */
export async function parseIdentities(text: string, what: string): Promise<AgeIdentities> {
  const keys = keyLines(text);
  if (keys.length === 0) throw new DbsError('INVALID_ARGUMENT', `${what} holds no age identity`, { hint: 'make one with age-keygen -o key.txt' });
  const recipients: string[] = [];
  for (const [i, k] of keys.entries()) {
    if (!k.startsWith('AGE-SECRET-KEY-')) {
      throw new DbsError('INVALID_ARGUMENT', `${what}: line ${i + 1} is not an age identity (AGE-SECRET-KEY-1... or AGE-SECRET-KEY-PQ-1...)`, { hint: 'use the file age-keygen wrote' });
    }
    try {
      recipients.push(await loadAge().identityToRecipient(k));
    } catch {
      throw new DbsError('INVALID_ARGUMENT', `${what}: identity ${i + 1} is not a valid age identity`, { hint: 'use the file age-keygen wrote' });
    }
  }
  return { keys, recipients };
}

/** Undoes AgeEncrypt (and anything the age program wrote): header, nonce, chunks; each chunk authenticated. */
export class AgeDecrypt extends Transform {
  #head: Buffer | undefined = Buffer.alloc(0);
  #key: KeyObject | undefined;
  #counter = 0;
  /** Ciphertext not yet opened: the last full chunk is held until more input (or the end) says whether it is the last. */
  #pending: Buffer = Buffer.alloc(0);

  constructor(
    readonly identities: AgeIdentities,
    readonly what: string,
  ) {
    super();
  }

  #open(ct: Buffer, last: boolean): Buffer {
    const d = createDecipheriv('chacha20-poly1305', this.#key!, chunkNonce(this.#counter, last), { authTagLength: TAG });
    d.setAuthTag(ct.subarray(ct.length - TAG));
    const out = d.update(ct.subarray(0, ct.length - TAG));
    try {
      d.final();
    } catch {
      throw new DbsError('VERIFY_FAILED', `${this.what} is damaged: chunk ${this.#counter + 1} of its age payload fails authentication${last ? ' (or the payload is cut)' : ''}`, {
        hint: 'restore another backup; run dbs backup verify on the others',
      });
    }
    this.#counter++;
    return out;
  }

  async #readHeader(): Promise<boolean> {
    const buf = this.#head!;
    const mac = buf.indexOf('\n--- ');
    const end = mac < 0 ? -1 : buf.indexOf('\n', mac + 1);
    if (end < 0 || buf.length < end + 1 + NONCE) {
      if (buf.length > MAX_HEADER || (buf.length >= 22 && !buf.subarray(0, 22).equals(Buffer.from('age-encryption.org/v1\n')))) {
        throw new DbsError('VERIFY_FAILED', `${this.what} is not an age file`, { hint: 'restore another backup' });
      }
      return false;
    }
    const { Decrypter } = loadAge();
    const d = new Decrypter();
    for (const k of this.identities.keys) d.addIdentity(k);
    let fileKey: Uint8Array;
    try {
      fileKey = await d.decryptHeader(buf.subarray(0, end + 1));
    } catch (e) {
      const none = /no identity matched/.test((e as Error).message);
      throw new DbsError(none ? 'IDENTITY_MISMATCH' : 'VERIFY_FAILED', none ? `the identity file (for ${this.identities.recipients.join(', ')}) cannot decrypt ${this.what}` : `${this.what}: its age header is damaged (${(e as Error).message})`, {
        hint: none ? 'pass the identity of one of the recipients the backup was encrypted to (see: dbs backup show ID)' : 'restore another backup',
      });
    }
    this.#key = payloadKey(Buffer.from(fileKey), buf.subarray(end + 1, end + 1 + NONCE));
    this.#pending = buf.subarray(end + 1 + NONCE);
    this.#head = undefined;
    return true;
  }

  #drain(): void {
    const full = AGE_CHUNK + TAG;
    let off = 0;
    while (this.#pending.length - off > full) {
      this.push(this.#open(this.#pending.subarray(off, off + full), false));
      off += full;
    }
    this.#pending = off ? this.#pending.subarray(off) : this.#pending;
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.#head) {
      this.#head = Buffer.concat([this.#head, chunk]);
      this.#readHeader().then((ok) => {
        if (ok) this.#drain();
        cb();
      }, cb);
      return;
    }
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    try {
      this.#drain();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    const finish = (): void => {
      if (this.#pending.length < TAG || (this.#pending.length === TAG && this.#counter > 0)) {
        throw new DbsError('VERIFY_FAILED', `${this.what} is damaged: its age payload is cut`, { hint: 'restore another backup' });
      }
      this.push(this.#open(this.#pending, true));
      this.#pending = Buffer.alloc(0);
    };
    if (this.#head) {
      this.#readHeader().then((ok) => {
        if (!ok) throw new DbsError('VERIFY_FAILED', `${this.what} is damaged: its age header is cut`, { hint: 'restore another backup' });
        this.#drain();
        finish();
        cb();
      }).catch((e: Error) => cb(e));
      return;
    }
    try {
      finish();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}

/** The encryption stage, or undefined when the plan has no recipients. */
export function encryptStage(o: { recipients?: string[] }): TransformStage | undefined {
  const recipients = o.recipients ?? [];
  if (recipients.length === 0) return undefined;
  return {
    kind: 'transform',
    name: 'encrypt:age',
    node: () => new AgeEncrypt(recipients, STAGE_BUFFER),
    sync: () => new AgeSealer(recipients),
    // None: it runs in Node after the programs (see the top of this file).
    program: () => undefined,
  };
}
