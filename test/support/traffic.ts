// Pool traffic for the bandwidth-cap measurements (test/storage/throttle.test.ts and
// bench/gateway-cap.bench.ts): an uploader and downloaders that run until a signal aborts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { PoolDriver } from '../../src/storage/types.js';

const MiB = 1024 * 1024;

/** An endless body of 1 MiB chunks (one random buffer, reused) until the signal aborts. */
export async function* endless(signal: AbortSignal): AsyncGenerator<Buffer> {
  const chunk = randomBytes(MiB);
  while (!signal.aborted) yield chunk;
}

/** Puts objects of 32 MiB one after another (deleting each) until the signal aborts. */
export async function uploader(d: PoolDriver, prefix: string, signal: AbortSignal): Promise<void> {
  for (let i = 0; !signal.aborted; i++) {
    const key = `${prefix}/up-${i}`;
    async function* body(): AsyncGenerator<Buffer> {
      let n = 0;
      for await (const c of endless(signal)) {
        yield c;
        if ((n += c.length) >= 32 * MiB) return;
      }
    }
    await d.put(key, body(), { signal });
    await d.delete(key);
  }
}

/** Reads the object again and again until the signal aborts. */
export async function downloader(d: PoolDriver, key: string, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const s = await d.get(key, { signal });
    for await (const _ of s) {
      if (signal.aborted) break;
    }
  }
}

/**
 * Kernel byte counters (nftables, so root) on the TCP traffic between `client` and a server
 * port, both directions: what went over the wire, with no proxy in the way (IP-level bytes;
 * headers add <0.1% at loopback's 64 KiB MTU). A missing `nft` is an error, never a skip.
 */
export interface WireCounter {
  /** Bytes both ways so far. */
  bytes(): number;
  /** Bytes from the client to the server so far. */
  up(): number;
  close(): void;
}

export function wireCounter(client: string, serverPort: number): WireCounter {
  const table = `dbstest${process.pid}`;
  const nft = (args: string[], input?: string): string => execFileSync('nft', args, { input, encoding: 'utf8' });
  nft(['-f', '-'], `table inet ${table} {\n chain out {\n  type filter hook output priority 0;\n  ip saddr ${client} tcp dport ${serverPort} counter\n  ip daddr ${client} tcp sport ${serverPort} counter\n }\n}\n`);
  const counters = (): [number, number] => {
    const m = [...nft(['list', 'table', 'inet', table]).matchAll(/counter packets \d+ bytes (\d+)/g)].map((x) => Number(x[1]));
    if (m.length !== 2) throw new Error(`nft table ${table}: expected 2 counters, found ${m.length}`);
    return [m[0]!, m[1]!];
  };
  return {
    bytes: () => counters().reduce((a, b) => a + b, 0),
    up: () => counters()[0],
    close: () => {
      try {
        nft(['delete', 'table', 'inet', table]);
      } catch {
        // gone
      }
    },
  };
}
