// Everything dbs prints goes through here: results to stdout, everything else to stderr.
// --json: one JSON document per result (or JSON lines with a `type` for long runs).
import type { Writable } from 'node:stream';
import { DbsError } from '../errors.js';
import { printable, printableValue } from './sanitize.js';
import { setTableWidth } from './format.js';

export interface OutputStreams {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
}

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  color: boolean;
  verbose: boolean;
  /** The width tables fit (src/output/format.ts setTableWidth); undefined: no limit. */
  width?: number;
}

export interface Progress {
  update(done: number, total?: number): void;
  finish(): void;
}

const noProgress: Progress = { update() {}, finish() {} };

export class Output {
  constructor(
    readonly streams: OutputStreams,
    readonly options: OutputOptions,
  ) {
    setTableWidth(options.width);
  }

  get json(): boolean {
    return this.options.json;
  }

  /** A command's result: JSON document with --json, else the human rendering. */
  result<T>(data: T, human: (data: T) => string): void {
    if (this.options.json) {
      this.streams.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    } else {
      const text = printable(human(data));
      if (text) this.streams.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /**
   * A list that may be long: with --json one JSON array written element by element (each on
   * its own line, waiting for the stream to drain), so 100k rows never sit in memory as one
   * array or one string; else the human rendering of the rows (a page, bounded by the caller).
   */
  async resultList<T>(rows: Iterable<T>, human: (rows: T[]) => string): Promise<void> {
    if (!this.options.json) {
      this.result([...rows], human);
      return;
    }
    const out = this.streams.stdout;
    let buf = '[';
    let first = true;
    const flush = async () => {
      if (!out.write(buf)) await new Promise<void>((resolve) => out.once('drain', resolve));
      buf = '';
    };
    for (const r of rows) {
      buf += `${first ? '\n' : ',\n'}${JSON.stringify(r)}`;
      first = false;
      if (buf.length >= 65536) await flush();
    }
    buf += first ? ']\n' : '\n]\n';
    await flush();
  }

  /** One line of a long run: a JSON line with --json, else a human line to stderr. */
  event(type: string, data: Record<string, unknown>, human?: string): void {
    if (this.options.json) this.streams.stdout.write(`${JSON.stringify({ type, time: new Date().toISOString(), ...data })}\n`);
    else if (human && !this.options.quiet) this.streams.stderr.write(`${printable(human)}\n`);
  }

  info(message: string): void {
    if (!this.options.quiet && !this.options.json) this.streams.stderr.write(`${printable(message)}\n`);
  }

  warn(message: string): void {
    if (this.options.json) this.streams.stderr.write(`${JSON.stringify({ type: 'warning', message })}\n`);
    else this.streams.stderr.write(`${this.paint('warning:', 33)} ${printable(message)}\n`);
  }

  verbose(message: string): void {
    if (this.options.verbose) this.streams.stderr.write(`${printable(message)}\n`);
  }

  error(e: DbsError | Error): void {
    if (this.options.json) {
      const body = e instanceof DbsError ? e.toJSON() : { code: 'INTERNAL', message: e.message, exitCode: 1 };
      this.streams.stderr.write(`${JSON.stringify({ type: 'error', ...body })}\n`);
      return;
    }
    const code = e instanceof DbsError ? ` [${e.code}]` : '';
    this.streams.stderr.write(`${this.paint('error:', 31)} ${printable(e.message)}${code}\n`);
    if (e instanceof DbsError && e.hint) this.streams.stderr.write(`  hint: ${printable(e.hint)}\n`);
    if (this.options.verbose && e.stack && !(e instanceof DbsError)) this.streams.stderr.write(`${printable(e.stack)}\n`);
  }

  /** True when a progress bar may be drawn: stderr is a TTY and not --json/--quiet. */
  get canShowProgress(): boolean {
    return Boolean(this.streams.stderr.isTTY) && !this.options.json && !this.options.quiet;
  }

  progress(label: string, render: (done: number, total: number | undefined, elapsedMs: number) => string): Progress {
    if (!this.canShowProgress) return noProgress;
    const start = Date.now();
    const err = this.streams.stderr;
    let drawn = false;
    return {
      update: (done, total) => {
        drawn = true;
        const line = printableValue(`${label} ${render(done, total, Date.now() - start)}`);
        const width = err.columns ?? 80;
        err.write(`\r${line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length))}\x1b[K`);
      },
      finish: () => {
        if (drawn) err.write('\r\x1b[K');
      },
    };
  }

  paint(text: string, code: number): string {
    return this.options.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }
}
