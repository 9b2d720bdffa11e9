// Finding programs on PATH, for every engine and stage that runs one.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** The executable file `name` resolves to on `pathEnv` (like `which`), or undefined. */
export function findOnPath(name: string, pathEnv = process.env['PATH'] ?? ''): string | undefined {
  const candidates = isAbsolute(name) ? [name] : pathEnv.split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // next
    }
  }
  return undefined;
}

const cached = new Map<string, string | undefined>();

/** findOnPath on this process's PATH, looked up once per name (for the hot data path). */
export function programOnPath(name: string): string | undefined {
  if (!cached.has(name)) cached.set(name, findOnPath(name));
  return cached.get(name);
}
