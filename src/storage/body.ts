// Turns any PutBody into an async iterable of Buffers without copying it whole.
import { isPullBody, type PutBody } from './types.js';

export async function* iterateBody(body: PutBody): AsyncIterable<Buffer> {
  if (typeof body === 'string') {
    yield Buffer.from(body);
    return;
  }
  if (isPullBody(body)) {
    // Consumers keep the chunks they are given: a fresh buffer per pull.
    for (;;) {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      const n = await body.pull(buf);
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  }
  if (body instanceof Uint8Array) {
    yield Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return;
  }
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    if (typeof chunk === 'string') yield Buffer.from(chunk);
    else yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
}
