// The xbstream that mariabackup/xtrabackup write to stdout, checked as it passes: a framing
// parser that follows chunk headers (and skips payloads, so it costs next to nothing), and the
// guard that turns the tool's stdout into an artifact stream that ERRORS instead of ending
// cleanly unless the tool exited 0, its log ends with "completed OK!" and the stream is whole.
//
// xbstream framing (extra/mariabackup/xbstream.h): every chunk is
//   "XBSTCK01" | flags u8 | type u8 | path length u32le | path
//   type 'P' (payload): length u64le | offset u64le | crc32 u32le | payload
//   type 'E' (end of file): nothing more
// Any other type (Percona XtraBackup 8's sparse chunks 'S', say) cannot be skipped without
// knowing its layout: the parser then stops following the framing (and says so) rather than
// failing a backup it does not understand; exit code and "completed OK!" still decide.
import type { TransformCallback } from 'node:stream';
import { DbsError } from '../../errors.js';
import { ToolGuard, type ToolExit, type ToolGuardOptions } from '../tool-stream.js';
import type { StreamEdges } from '../types.js';
import { completedOk, toolErrorLines } from './physical-files.js';

const MAGIC = Buffer.from('XBSTCK01');
const FIXED = 14; // magic 8 + flags 1 + type 1 + path length 4
const MAX_PATH = 4096;
const CAPTURE_LIMIT = 256 * 1024;

/** The small metadata files worth keeping when they pass by. */
export const CAPTURED_FILES = new Set([
  'xtrabackup_checkpoints',
  'xtrabackup_info',
  'backup-my.cnf',
  'xtrabackup_binlog_info',
  'mariadb_backup_binlog_info',
  'xtrabackup_slave_info',
  'mariadb_backup_slave_info',
]);

/** Files without which a backup cannot be prepared. */
export const REQUIRED_FILES = ['xtrabackup_checkpoints', 'backup-my.cnf'];

type State = 'fixed' | 'path' | 'payloadHeader' | 'payload' | 'gaveUp';

/** Follows the chunk structure of an xbstream; feed() chunks, then end(). */
export class XbstreamParser {
  #state: State = 'fixed';
  #need = FIXED;
  #buf: Buffer[] = [];
  #bufLen = 0;
  #type = 0;
  #pathLen = 0;
  #path = '';
  #payloadLeft = 0;
  #headerLen = 0;
  #offset = 0;
  #capture: Buffer[] | undefined;
  /** Paths with at least one chunk. */
  readonly files = new Set<string>();
  /** Paths whose end-of-file chunk was seen. */
  readonly closed = new Set<string>();
  readonly captured = new Map<string, Buffer>();
  readonly #capturedParts = new Map<string, Buffer[]>();
  chunks = 0;
  /** Set when the stream is not an xbstream (wrong magic, silly lengths). */
  error: string | undefined;
  /** Set when the parser met a chunk type it cannot skip and stopped checking. */
  gaveUp: string | undefined;

  feed(data: Buffer): void {
    let pos = 0;
    while (pos < data.length && !this.error && this.#state !== 'gaveUp') {
      if (this.#state === 'payload') {
        const n = Math.min(this.#payloadLeft, data.length - pos);
        if (this.#capture) this.#capture.push(Buffer.from(data.subarray(pos, pos + n)));
        this.#payloadLeft -= n;
        pos += n;
        this.#offset += n;
        if (this.#payloadLeft === 0) this.#endPayload();
        continue;
      }
      const n = Math.min(this.#need - this.#bufLen, data.length - pos);
      this.#buf.push(data.subarray(pos, pos + n));
      this.#bufLen += n;
      pos += n;
      this.#offset += n;
      if (this.#bufLen === this.#need) {
        const head = this.#buf.length === 1 ? (this.#buf[0] as Buffer) : Buffer.concat(this.#buf);
        this.#buf = [];
        this.#bufLen = 0;
        this.#header(head);
      }
    }
  }

  /** Whether the stream ended exactly at a chunk boundary. */
  get atBoundary(): boolean {
    return this.#state === 'fixed' && this.#bufLen === 0;
  }

  get bytes(): number {
    return this.#offset;
  }

  /** Files that were started but never got their end-of-file chunk. */
  unclosed(): string[] {
    return [...this.files].filter((f) => !this.closed.has(f));
  }

  #header(head: Buffer): void {
    switch (this.#state) {
      case 'fixed': {
        if (!head.subarray(0, 8).equals(MAGIC)) {
          this.error = `wrong chunk magic at offset ${this.#offset - FIXED}`;
          return;
        }
        this.#type = head[9] as number;
        this.#pathLen = head.readUInt32LE(10);
        if (this.#pathLen > MAX_PATH) {
          this.error = `path length ${this.#pathLen} is too large at offset ${this.#offset - FIXED}`;
          return;
        }
        this.chunks++;
        if (this.#pathLen === 0) this.#afterPath(head.subarray(0, 0));
        else this.#expect('path', this.#pathLen);
        return;
      }
      case 'path':
        this.#afterPath(head);
        return;
      case 'payloadHeader': {
        const len = Number(head.readBigUInt64LE(0));
        if (!Number.isSafeInteger(len)) {
          this.error = `chunk length is too large at offset ${this.#offset - this.#headerLen}`;
          return;
        }
        this.#payloadLeft = len;
        this.#startPayload();
        return;
      }
      default:
        return;
    }
  }

  #afterPath(pathBuf: Buffer): void {
    this.#path = pathBuf.toString('utf8');
    const type = this.#type;
    if (type === 0x45 /* 'E' */) {
      this.files.add(this.#path);
      this.closed.add(this.#path);
      const parts = this.#capturedParts.get(this.#path);
      if (parts) {
        this.captured.set(this.#path, Buffer.concat(parts));
        this.#capturedParts.delete(this.#path);
      }
      this.#expect('fixed', FIXED);
      return;
    }
    if (type === 0x50 /* 'P' */) {
      this.files.add(this.#path);
      this.#headerLen = 20;
      this.#expect('payloadHeader', 20);
      return;
    }
    // An unknown chunk type: its length is unknown, so the rest cannot be followed.
    this.gaveUp = `unknown chunk type 0x${type.toString(16)} at offset ${this.#offset}`;
    this.#state = 'gaveUp';
  }

  #startPayload(): void {
    const base = this.#path.replace(/^\.\//, '');
    if (CAPTURED_FILES.has(base)) {
      let parts = this.#capturedParts.get(this.#path);
      if (!parts) this.#capturedParts.set(this.#path, (parts = []));
      const have = parts.reduce((n, b) => n + b.length, 0);
      this.#capture = have + this.#payloadLeft <= CAPTURE_LIMIT ? parts : undefined;
    } else this.#capture = undefined;
    if (this.#payloadLeft === 0) this.#endPayload();
    else this.#state = 'payload';
  }

  #endPayload(): void {
    this.#capture = undefined;
    this.#expect('fixed', FIXED);
  }

  #expect(state: State, n: number): void {
    this.#state = state;
    this.#need = n;
  }

  /** A captured small file by its name in the stream (with or without "./"). */
  file(name: string): Buffer | undefined {
    return this.captured.get(name) ?? this.captured.get(`./${name}`);
  }
}

export type GuardOptions = ToolGuardOptions;

/**
 * Finds the first chunk magic in `tail` from which whole chunks run exactly to its end, and
 * returns the parser that walked them (undefined when there is none). A magic inside a payload
 * starts a chain that breaks (wrong magic, silly lengths, or ending inside a chunk), so the
 * search goes on to the next one.
 */
function syncToEnd(tail: Buffer): XbstreamParser | undefined {
  for (let i = tail.indexOf(MAGIC); i >= 0; i = tail.indexOf(MAGIC, i + 1)) {
    const p = new XbstreamParser();
    p.feed(tail.subarray(i));
    if (!p.error && !p.gaveUp && p.atBoundary) return p;
  }
  return undefined;
}

/**
 * A pass-through Transform over the backup tool's stdout. _flush waits for the tool to exit and
 * decides whether the stream ends cleanly or errors (BACKUP_FAILED; INTERRUPTED when
 * cancelled): exit code 0, no signal, the log's last line "completed OK!", some output, the
 * xbstream framing complete (ends on a chunk boundary, every file closed, the metadata files
 * present). A consumer therefore never sees a clean end of a failed or cut backup.
 */
export class XbstreamGuard extends ToolGuard {
  /** The parser of the whole stream, or (framed path) of its end only: see takeEdges. */
  parser = new XbstreamParser();
  /** False when only the stream's start and end were seen (then `parser` covers the end). */
  sawAll = true;
  #rawBytes: number | undefined;

  constructor(opts: GuardOptions) {
    super(opts);
  }

  get bytes(): number {
    return this.#rawBytes ?? this.parser.bytes;
  }

  /**
   * The sink's framed path: only the stream's first and last MiBs and its size. The start must
   * be an xbstream; the end must be a chain of whole chunks that ends exactly at the end of the
   * stream, in which every file that has a chunk also gets its end-of-file chunk. mariabackup
   * writes its metadata (xtrabackup_checkpoints, backup-my.cnf, xtrabackup_info, the binlog
   * position) last, within the final few KiB, so those are read from the end too.
   */
  takeEdges(e: StreamEdges): void {
    this.sawAll = false;
    this.#rawBytes = e.rawBytes;
    const head = new XbstreamParser();
    head.feed(e.head);
    if (head.error) {
      this.parser = head;
      return;
    }
    this.parser = syncToEnd(e.tail) ?? Object.assign(new XbstreamParser(), { error: 'its end is not a whole chain of chunks' });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parser.feed(chunk);
    if (this.parser.error) {
      // Not an xbstream: fail now, the rest is useless.
      this.failure = new DbsError('BACKUP_FAILED', `the backup stream of ${this.opts.what} is corrupt: ${this.parser.error}`, {
        details: { tool: this.opts.toolName, bytes: this.parser.bytes },
      });
      cb(this.failure);
      return;
    }
    cb(null, chunk);
  }

  check(exit: ToolExit): DbsError | undefined {
    const { toolName, what } = this.opts;
    const tail = this.opts.stderrTail();
    const errLines = toolErrorLines(tail);
    const p = this.parser;
    const details = {
      tool: toolName,
      ...(exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
      ...(exit.signal ? { signal: exit.signal } : {}),
      stderrTail: tail,
      bytes: this.bytes,
    };
    if (exit.canceled) {
      return new DbsError('INTERRUPTED', `the backup of ${what} was interrupted; ${toolName} was stopped`, { details });
    }
    let problem: string | undefined;
    if (exit.signal) problem = `${toolName} was killed by ${exit.signal}`;
    else if (exit.exitCode !== 0) {
      problem = `${toolName} exited with code ${exit.exitCode ?? 'unknown'}${exit.failureMessage && exit.exitCode === undefined ? ` (${exit.failureMessage})` : ''}`;
    } else if (this.bytes === 0) problem = `${toolName} wrote nothing`;
    else if (!completedOk(tail)) problem = `${toolName}'s log does not end with "completed OK!"`;
    else if (p.error) problem = `the stream is corrupt: ${p.error}`;
    else if (!p.gaveUp) {
      if (!p.atBoundary) problem = 'the stream is incomplete: it ends inside a chunk';
      else {
        const open = p.unclosed();
        const missing = REQUIRED_FILES.filter((f) => !p.closed.has(f) && !p.closed.has(`./${f}`));
        if (open.length > 0) problem = `the stream is incomplete: ${open.length} file(s) never ended (${open.slice(0, 3).join(', ')})`;
        else if (missing.length > 0) problem = `the stream is incomplete: it lacks ${missing.join(', ')}`;
      }
    }
    if (!problem) return undefined;
    const lastErr = errLines.at(-1) ?? tail.filter((l) => l.trim() !== '').at(-1);
    return new DbsError('BACKUP_FAILED', `physical backup of ${what} failed: ${problem}${lastErr ? `: ${lastErr}` : ''}`, {
      hint: backupHint(tail),
      details,
    });
  }
}

export function backupHint(tail: readonly string[]): string {
  const text = tail.join('\n');
  if (/missing required privilege|denied/i.test(text)) {
    return 'grant the backup user RELOAD, PROCESS, LOCK TABLES and BINLOG MONITOR (MySQL: BACKUP_ADMIN, REPLICATION CLIENT) on *.*';
  }
  if (/No space left|ENOSPC|Errcode: 28/i.test(text)) return 'a disk is full: check the scratch directory and the datadir\'s file system';
  if (/Permission denied|Errcode: 13/i.test(text)) return 'dbs cannot read the server\'s datadir: run it as the database\'s OS user (or root)';
  if (/innodb_log_file_size|log sequence number|redo log/i.test(text)) {
    return 'the backup tool may not match the server version: install the backup tool of the server\'s exact version';
  }
  return "see the task log for the backup tool's messages";
}
