// Deterministic test streams with known digests, and stream helpers.
import { createHash, randomBytes } from 'node:crypto';
import { Readable, type Transform, type Writable } from 'node:stream';
import type { ArtifactSink, ArtifactWriteOptions, Inspector, StoredArtifact, ToolStart } from '../../src/engines/types.js';
import { edgeTap } from '../../src/pipeline/run.js';

/** A stream of `mib` MiB of incompressible data; `digest()` is valid once it has ended. */
export function generated(mib: number, opts: { failAfterMiB?: number } = {}): Readable & { digest(): string; bytes: number } {
  const block = randomBytes(1 << 20);
  const hash = createHash('sha256');
  let i = 0;
  const s = new Readable({
    read() {
      if (opts.failAfterMiB !== undefined && i >= opts.failAfterMiB) {
        this.destroy(new Error('source failed on purpose'));
        return;
      }
      if (i >= mib) {
        this.push(null);
        return;
      }
      const chunk = Buffer.from(block);
      chunk.writeUInt32BE(i, 0);
      hash.update(chunk);
      (s as unknown as { bytes: number }).bytes += chunk.length;
      i++;
      this.push(chunk);
    },
  }) as Readable & { digest(): string; bytes: number };
  s.bytes = 0;
  let d: string | undefined;
  s.digest = () => (d ??= hash.digest('hex'));
  return s;
}

export async function sha256Of(stream: AsyncIterable<Buffer>): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const c of stream) {
    h.update(c);
    bytes += c.length;
  }
  return { sha256: h.digest('hex'), bytes };
}

/**
 * For sinks in tests: the guard as the data path feeds it (every byte in mode stream; the
 * edges in mode edges), and writeTool() as a spawn into 'pipe' followed by write().
 */
export function guardStage(options: ArtifactWriteOptions & { inspector?: Inspector }): Transform | undefined {
  if (!options.inspector || options.guard === 'none') return undefined;
  return options.guard === 'edges' ? edgeTap(options.inspector) : options.inspector;
}

export function writeToolViaPipe(sink: Pick<ArtifactSink, 'write'>, name: string, options: ArtifactWriteOptions, spawn: (stdout: 'pipe' | Writable) => ToolStart): Promise<StoredArtifact> {
  const t = spawn('pipe');
  return sink.write(name, t.stdout!, { ...options, ...(t.inspector ? { inspector: t.inspector } : {}) });
}
