// How the commands show what core reports (core/events.ts): notices on stderr, through
// Output (so --quiet, --json and --verbose apply), and how they answer core's questions.
import type { CoreEvent, Decide, Question } from '../core/events.js';
import type { Output } from '../output/output.js';
import type { Prompter } from '../output/prompt.js';

const mode = (m: number) => m.toString(8).padStart(4, '0');

export function renderEvent(out: Output, e: CoreEvent): void {
  switch (e.type) {
    case 'home.tightened':
      return out.warn(`the dbs home ${e.home} was readable by others (mode ${mode(e.from)}); changed it to ${mode(e.to)}: it holds passwords and keys`);
    case 'backup.deleted':
      return out.info(`deleted backup ${e.backup}`);
    case 'copy.fallback':
      return out.warn(`backup ${e.backup}: pool ${e.offline} is offline (${e.reason}); reading its copy in pool ${e.pool}`);
    case 'copy.done':
      return e.status === 'ready' ? out.info(`copied backup ${e.backup} to pool ${e.pool}`) : out.warn(`copy of backup ${e.backup} to pool ${e.pool} failed: ${e.error ?? ''}; the next run retries it`);
    case 'pool.failover':
      return out.warn(`plan ${e.plan}: pool ${e.from} is offline (${e.reason}); the backup goes to the standby pool ${e.to}`);
    case 'backup.auto-full':
      return out.warn(`plan ${e.plan}: ${e.reason}; taking a full backup in pool ${e.pool} instead (--auto-full)`);
    case 'pool.failback':
      return out.info(`plan ${e.plan}: pool ${e.to} answers again; the backup goes to it (not to the standby pool ${e.from})`);
    case 'restore.tool-output':
      return out.verbose(e.line);
    case 'recovery':
      return e.event.level === 'info' ? out.verbose(e.event.message) : out.warn(e.event.message);
    case 'alert.transition': {
      const text = `alert ${e.alert} ${e.to === 'firing' ? 'fires' : 'resolved'} for plan ${e.plan}: notified ${e.delivered} target(s)${e.failed.length ? `; not delivered to ${e.failed.join(', ')}` : ''}`;
      return e.failed.length || e.to === 'firing' ? out.warn(text) : out.info(text);
    }
    case 'quickstart.pool':
      return out.info(e.created ? `1. bound a local pool "${e.name}" at ${e.path}` : `1. reusing the pool "${e.name}" (${e.id})`);
    case 'quickstart.database':
      return out.info(e.created ? `2. created a demo SQLite database ${e.path} (500 customers, 5,000 orders)` : `2. reusing the demo database ${e.path}`);
    case 'quickstart.plan':
      return out.info(e.created ? `3. created the plan "${e.name}": SQLite snapshot, manual, keep the last 3` : `3. reusing the plan "${e.name}" (${e.id})`);
    case 'quickstart.backup':
      return out.info(`4. ran it: backup ${e.backup}, ${e.rawBytes} bytes raw, ${e.storedBytes} stored (zstd)`);
    case 'quickstart.listed':
      return out.info(`5. dbs backup list --plan ${e.plan} now shows ${e.backups} backup(s)`);
    case 'quickstart.restored':
      return out.info(`6. restored it into ${e.path}`);
    case 'quickstart.checked':
      return out.info(`7. checked: ${e.tables.map((c) => `${c.table} ${c.rows} rows`).join(', ')}, every row equal`);
  }
}

function questionText(q: Question): string {
  switch (q.type) {
    case 'restore.over-source':
      return `Restore ${q.backup} over its own source ${q.target}?`;
  }
}

/** Core's yes/no questions, asked on the terminal; "no" when no prompt may be shown. */
export function askUser(prompt: Prompter): Decide {
  return async (q) => prompt.enabled && (await prompt.confirm(questionText(q), false));
}
