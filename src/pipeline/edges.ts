// What an engine's guard (an inspector) is to the data path.
import type { Transform } from 'node:stream';

/** The start and end of a raw stream, and its size: what an edges-mode guard judges. */
export interface StreamEdges {
  /** The first bytes of the stream (at least 64 KiB, or all of a shorter stream). */
  head: Buffer;
  /** The last bytes of the stream (at least 4 KiB, or all of a shorter stream). */
  tail: Buffer;
  rawBytes: number;
}

export interface EdgeInspector {
  takeEdges(edges: StreamEdges): void;
}

/**
 * An engine's guard: a pass-through Transform that may fail the artifact (exit code, trailer,
 * framing). In `stream` mode every raw byte is written through it; in `edges` mode it gets
 * takeEdges() and then an empty end. Either way the artifact is stored only after it ended
 * without error.
 */
export type Inspector = Transform & Partial<EdgeInspector>;
