// Names from the catalog for shell completion. Completion runs inside the user's shell on
// every Tab: it must be fast and must never fail loudly, so any problem means "no names".
import { readNames, type NameKind } from '../store/names.js';

export type { NameKind };

export function completionNames(home: string | undefined, kind: NameKind): string[] {
  if (!home) return [];
  try {
    return readNames(home, kind);
  } catch {
    return [];
  }
}
