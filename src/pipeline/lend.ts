// Chunks a producer lends to the data path and gets back to fill again. A directory snapshot
// made a new 4 MiB batch for every 4 MiB of tree; each became garbage once compressed, and
// V8 starts a full collection per ~64 MB of such memory: the collector's threads were a
// fifth of the snapshot's CPU. A lent chunk is given back by the one stage that consumes it
// for good (the framed compressor, after its frame is compressed), and only when that stage
// used the whole chunk as it came; any other path leaves it to the collector, as before.
const lenders = new WeakMap<ArrayBufferLike, (b: Buffer) => void>();

/** Marks `buf` (a whole buffer of its own) as lent: `back(buf)` is called at most once when a stage is done with it. */
export function lend(buf: Buffer, back: (b: Buffer) => void): Buffer {
  if (buf.byteOffset !== 0 || buf.length !== buf.buffer.byteLength) throw new Error('only a whole buffer of its own can be lent');
  lenders.set(buf.buffer, back);
  return buf;
}

/** The stage is done with `buf` and holds no view of it: a lent buffer goes back to its lender. */
export function giveBack(buf: Buffer): void {
  const back = lenders.get(buf.buffer);
  if (!back || buf.byteOffset !== 0 || buf.length !== buf.buffer.byteLength) return;
  lenders.delete(buf.buffer);
  back(buf);
}
