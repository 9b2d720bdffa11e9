// Retention as a pure function: given a plan's rule and its backups, what to delete and why.
// Never deletes the newest backup, nor a backup that a kept backup depends on.

export interface Retention {
  keepDays?: number;
  keepLast?: number;
}

export interface RetainedBackup {
  id: string;
  endedAt: string;
  parentId: string | null;
}

export interface PruneDecision {
  id: string;
  reason: string;
}

export function describeRetention(r: Retention): string {
  if (r.keepDays) return `keep ${r.keepDays} day${r.keepDays === 1 ? '' : 's'}`;
  if (r.keepLast) return `keep last ${r.keepLast}`;
  return 'keep forever';
}

export function planPrune(rule: Retention, backups: RetainedBackup[], now: Date): PruneDecision[] {
  const sorted = [...backups].sort((a, b) => (a.endedAt < b.endedAt ? 1 : a.endedAt > b.endedAt ? -1 : 0));
  if (sorted.length === 0) return [];
  const keep = new Set<string>([sorted[0].id]);
  const reasons = new Map<string, string>();
  sorted.forEach((b, i) => {
    if (rule.keepLast !== undefined) {
      if (i < rule.keepLast) keep.add(b.id);
      else reasons.set(b.id, `beyond the last ${rule.keepLast}`);
    } else if (rule.keepDays !== undefined) {
      const ageDays = (now.getTime() - new Date(b.endedAt).getTime()) / 86_400_000;
      if (ageDays <= rule.keepDays) keep.add(b.id);
      else reasons.set(b.id, `older than ${rule.keepDays} days (${Math.floor(ageDays)} days)`);
    } else keep.add(b.id);
  });
  // Keep every ancestor of a kept backup.
  const byId = new Map(sorted.map((b) => [b.id, b]));
  for (const id of [...keep]) {
    for (let p = byId.get(id)?.parentId; p && !keep.has(p); p = byId.get(p)?.parentId ?? null) keep.add(p);
  }
  return sorted.filter((b) => !keep.has(b.id)).map((b) => ({ id: b.id, reason: reasons.get(b.id) ?? 'retention' }));
}
