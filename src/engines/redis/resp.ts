// The Redis protocol (RESP) as a file format: a logical Redis backup is a stream of commands,
// each a RESP array of bulk strings (`*N\r\n$len\r\n<bytes>\r\n...`), exactly what
// `redis-cli --pipe` reads. This module writes such commands and parses them back,
// incrementally, from chunks of any size (a command may span many chunks). Binary-safe:
// keys and payloads are Buffers end to end, never decoded as text.

const CRLF = Buffer.from('\r\n', 'latin1');

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`, 'latin1'), b, CRLF);
  }
  return Buffer.concat(parts);
}

const RESTORE_TAIL_REPLACE = Buffer.from('\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n', 'latin1');

/**
 * `RESTORE key ttl payload REPLACE ABSTTL` (ttl: absolute unix time in ms, 0 = no expiry),
 * appended to `out` as Buffers (the caller concatenates a whole batch once).
 */
export function pushRestoreCommand(out: Buffer[], key: Buffer, absTtlMs: number, payload: Buffer): void {
  const ttl = String(absTtlMs);
  out.push(
    Buffer.from(`*6\r\n$7\r\nRESTORE\r\n$${key.length}\r\n`, 'latin1'),
    key,
    Buffer.from(`\r\n$${ttl.length}\r\n${ttl}\r\n$${payload.length}\r\n`, 'latin1'),
    payload,
    RESTORE_TAIL_REPLACE,
  );
}

export class RespFormatError extends Error {
  constructor(
    message: string,
    /** Byte offset in the stream where the problem is. */
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
    this.name = 'RespFormatError';
  }
}

/** A very large but finite bound: Redis' own proto-max-bulk-len default is 512 MB. */
const MAX_BULK = 4 * 1024 * 1024 * 1024;
const MAX_ARGS = 1024 * 1024;

/**
 * Incremental parser of a stream of RESP commands (arrays of bulk strings). push() returns
 * the commands completed by a chunk; the argument Buffers are views into the parser's buffer
 * (valid until they are dropped; nothing is reused). end() throws when the stream stopped
 * in the middle of a command. Inline commands and other RESP types are refused: dbs never
 * writes them, so they mean the stream is not a dbs dump (or is damaged).
 *
 * Chunks are only concatenated once enough bytes have arrived to make progress, so a huge
 * value spread over thousands of chunks costs one copy, not one per chunk.
 */
export class RespCommandParser {
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes (from #pos) needed before the next parse attempt can make progress. */
  #need = 1;
  /** Stream offset of #buf[0]. */
  #base = 0;
  /** Total bytes pushed. */
  bytes = 0;
  /** Commands returned so far. */
  commands = 0;

  push(chunk: Buffer): Buffer[][] {
    if (chunk.length === 0) return [];
    this.bytes += chunk.length;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    const available = this.#buf.length - this.#pos + this.#pendingBytes;
    if (available < this.#need) return [];
    const rest = this.#buf.subarray(this.#pos);
    this.#base += this.#pos;
    this.#buf = rest.length === 0 && this.#pending.length === 1 ? this.#pending[0] : Buffer.concat([rest, ...this.#pending]);
    this.#pos = 0;
    this.#pending = [];
    this.#pendingBytes = 0;
    const out: Buffer[][] = [];
    for (;;) {
      const cmd = this.#parseOne();
      if (!cmd) break;
      out.push(cmd);
    }
    this.commands += out.length;
    return out;
  }

  /** Bytes of an incomplete command held back (0 at a clean command boundary). */
  get leftover(): number {
    return this.#buf.length - this.#pos + this.#pendingBytes;
  }

  /** Call at the end of the stream: throws if it ended inside a command. */
  end(): void {
    if (this.leftover > 0) {
      throw new RespFormatError(`the stream ends inside a command (${this.leftover} bytes of an incomplete command)`, this.#base + this.#pos);
    }
  }

  /** Parses one command at #pos, or sets #need and returns undefined. */
  #parseOne(): Buffer[] | undefined {
    const buf = this.#buf;
    const start = this.#pos;
    const have = buf.length - start;
    if (have === 0) {
      this.#need = 1;
      return undefined;
    }
    if (buf[start] !== 0x2a /* '*' */) {
      throw new RespFormatError(`expected a RESP array ('*'), found ${describeByte(buf[start])}`, this.#base + start);
    }
    let p = start + 1;
    const header = this.#readNumber(p, 'array length');
    if (!header) return this.#incomplete(start, have + 1);
    const argc = header.value;
    if (argc < 1 || argc > MAX_ARGS) throw new RespFormatError(`bad command length ${argc}`, this.#base + start);
    p = header.next;
    const args: Buffer[] = new Array(argc);
    for (let i = 0; i < argc; i++) {
      if (p >= buf.length) return this.#incomplete(start, p - start + 1);
      if (buf[p] !== 0x24 /* '$' */) {
        throw new RespFormatError(`expected a bulk string ('$'), found ${describeByte(buf[p])}`, this.#base + p);
      }
      const len = this.#readNumber(p + 1, 'bulk length');
      if (!len) return this.#incomplete(start, buf.length - start + 1);
      if (len.value < 0 || len.value > MAX_BULK) throw new RespFormatError(`bad bulk length ${len.value}`, this.#base + p);
      const dataStart = len.next;
      const dataEnd = dataStart + len.value;
      if (dataEnd + 2 > buf.length) return this.#incomplete(start, dataEnd + 2 - start);
      if (buf[dataEnd] !== 0x0d || buf[dataEnd + 1] !== 0x0a) {
        throw new RespFormatError('a bulk string is not followed by CRLF', this.#base + dataEnd);
      }
      args[i] = buf.subarray(dataStart, dataEnd);
      p = dataEnd + 2;
    }
    this.#pos = p;
    this.#need = 1;
    return args;
  }

  #incomplete(start: number, need: number): undefined {
    this.#pos = start;
    this.#need = need;
    return undefined;
  }

  /** Reads decimal digits from `at` up to CRLF. Undefined when the line is not complete yet. */
  #readNumber(at: number, what: string): { value: number; next: number } | undefined {
    const buf = this.#buf;
    let v = 0;
    let p = at;
    let neg = false;
    if (p < buf.length && buf[p] === 0x2d /* '-' */) {
      neg = true;
      p++;
    }
    const digitsStart = p;
    while (p < buf.length) {
      const c = buf[p];
      if (c >= 0x30 && c <= 0x39) {
        v = v * 10 + (c - 0x30);
        if (p - digitsStart > 12) throw new RespFormatError(`${what} too long`, this.#base + at);
        p++;
        continue;
      }
      if (c === 0x0d) {
        if (p === digitsStart) throw new RespFormatError(`empty ${what}`, this.#base + at);
        if (p + 1 >= buf.length) return undefined;
        if (buf[p + 1] !== 0x0a) throw new RespFormatError(`${what} not followed by CRLF`, this.#base + p);
        return { value: neg ? -v : v, next: p + 2 };
      }
      throw new RespFormatError(`bad ${what}: unexpected ${describeByte(c)}`, this.#base + p);
    }
    return undefined;
  }
}

function describeByte(b: number | undefined): string {
  if (b === undefined) return 'the end';
  if (b >= 0x20 && b < 0x7f) return `'${String.fromCharCode(b)}'`;
  return `byte 0x${b.toString(16).padStart(2, '0')}`;
}

/** A key for messages: printable ASCII as is, other bytes as \xNN, cut at 80 characters. */
export function printableKey(key: Buffer): string {
  let s = '';
  for (const b of key.subarray(0, 80)) {
    s += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return key.length > 80 ? `${s}...` : s;
}

/** Case-insensitive ASCII comparison of a command argument with an upper-case word. */
export function argIs(arg: Buffer, upper: string): boolean {
  if (arg.length !== upper.length) return false;
  for (let i = 0; i < arg.length; i++) {
    let c = arg[i];
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== upper.charCodeAt(i)) return false;
  }
  return true;
}
