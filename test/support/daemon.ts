// The real `dbs daemon` (bin/dbs.js, compiled dist/) as a child process whose JSON log lines
// a test reads and waits for.
import { execa, type ResultPromise } from 'execa';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;

export interface Daemon {
  proc: ResultPromise;
  lines: Record<string, unknown>[];
  waitFor(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | undefined; stderr: string }>;
}

export function daemon(home: string, args: string[], env: NodeJS.ProcessEnv = {}): Daemon {
  // No forced SIGKILL 5 s after stop() (execa's default): a graceful stop waits for a running task, which on a loaded machine takes longer.
  const proc = execa(process.execPath, [BIN, '--home', home, 'daemon', '--reload', '0.2', ...args], { env, reject: false, buffer: { stdout: false }, forceKillAfterDelay: false });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  return {
    proc,
    lines,
    async waitFor(pred, ms = 30_000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const l = lines.find(pred);
        if (l) return l;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`daemon log line not seen; got:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    },
    async stop(signal = 'SIGTERM') {
      proc.kill(signal);
      const r = await proc;
      return { code: r.exitCode, stderr: `${String(r.stderr)}${r.signal ? ` [the daemon was killed by ${r.signal}]` : ''}` };
    },
  };
}
