// Numbered schema migrations, applied in order on open inside one transaction each.
// Append new migrations; never edit one that has shipped.

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /**
   * Rebuilds a table that others reference (DROP of a parent fails while foreign keys are
   * enforced, and a rename of it would rewrite the children's REFERENCES): run with foreign
   * key enforcement off, then `PRAGMA foreign_key_check` before commit (SQLite's documented
   * procedure for schema changes ALTER TABLE cannot make).
   */
  foreignKeysOff?: boolean;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'catalog, pools, secrets, events',
    sql: `
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE pools (
        id             TEXT PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        type           TEXT NOT NULL CHECK (type IN ('local', 's3')),
        config         TEXT NOT NULL,            -- JSON, no secrets
        remark         TEXT NOT NULL DEFAULT '',
        status         TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
        status_message TEXT NOT NULL DEFAULT '',
        latency_ms     REAL,
        checked_at     TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
      );
      -- Credentials live apart from the objects that use them so that no query that lists
      -- resources can return one by accident.
      CREATE TABLE secrets (
        owner_kind TEXT NOT NULL,
        owner_id   TEXT NOT NULL,
        name       TEXT NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (owner_kind, owner_id, name)
      );
      CREATE TABLE events (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        resource_kind TEXT NOT NULL,
        resource_id   TEXT NOT NULL,
        type          TEXT NOT NULL,
        level         TEXT NOT NULL CHECK (level IN ('info', 'warning', 'error')),
        message       TEXT NOT NULL,
        count         INTEGER NOT NULL DEFAULT 1,
        first_at      TEXT NOT NULL,
        last_at       TEXT NOT NULL
      );
      CREATE INDEX events_resource ON events (resource_kind, resource_id, type);
    `,
  },
  {
    version: 2,
    name: 'plans, tasks, backups, restores, locks',
    sql: `
      CREATE TABLE plans (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
        pause_reason  TEXT NOT NULL DEFAULT '',
        source_kind   TEXT NOT NULL,
        source        TEXT NOT NULL,            -- JSON, redacted (no password)
        backup_type   TEXT NOT NULL,
        selection     TEXT NOT NULL,            -- JSON
        pool_id       TEXT NOT NULL REFERENCES pools (id),
        schedule      TEXT NOT NULL,            -- JSON
        retention     TEXT NOT NULL,            -- JSON
        compression   TEXT NOT NULL,
        options       TEXT NOT NULL DEFAULT '{}',
        remark        TEXT NOT NULL DEFAULT '',
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
      );
      CREATE TABLE tasks (
        id            TEXT PRIMARY KEY,
        plan_id       TEXT NOT NULL,
        plan_name     TEXT NOT NULL,
        trigger       TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'interrupted')),
        queued_at     TEXT NOT NULL,
        started_at    TEXT,
        ended_at      TEXT,
        raw_bytes     INTEGER,
        stored_bytes  INTEGER,
        backup_id     TEXT,
        error_code    TEXT,
        error_message TEXT,
        stderr_tail   TEXT,
        pid           INTEGER,
        host          TEXT
      );
      CREATE INDEX tasks_plan ON tasks (plan_id, queued_at);
      CREATE TABLE backups (
        id            TEXT PRIMARY KEY,
        plan_id       TEXT NOT NULL,
        plan_name     TEXT NOT NULL,
        task_id       TEXT,
        pool_id       TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'deleting')),
        source_kind   TEXT NOT NULL,
        backup_type   TEXT NOT NULL,
        parent_id     TEXT,
        raw_bytes     INTEGER NOT NULL,
        stored_bytes  INTEGER NOT NULL,
        started_at    TEXT NOT NULL,
        ended_at      TEXT NOT NULL,
        manifest      TEXT NOT NULL            -- JSON copy of the manifest in the pool
      );
      CREATE INDEX backups_plan ON backups (plan_id, ended_at);
      CREATE TABLE restores (
        id            TEXT PRIMARY KEY,
        backup_id     TEXT NOT NULL,
        plan_id       TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
        target        TEXT NOT NULL,            -- redacted
        options       TEXT NOT NULL DEFAULT '{}',
        started_at    TEXT NOT NULL,
        ended_at      TEXT,
        bytes         INTEGER,
        error_code    TEXT,
        error_message TEXT,
        pid           INTEGER,
        host          TEXT
      );
      CREATE INDEX restores_backup ON restores (backup_id);
      -- Advisory locks held by a live process (plan runs, the daemon); a lock whose pid is
      -- dead on this host is stale and may be taken over.
      CREATE TABLE locks (
        name        TEXT PRIMARY KEY,
        pid         INTEGER NOT NULL,
        host        TEXT NOT NULL,
        owner       TEXT NOT NULL,
        acquired_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'lock leases',
    // A lock is a lease: its holder renews heartbeat_at/expires_at while it holds it, so a
    // holder on another host (which `kill -0` cannot check) is known dead once its lease has
    // expired. pid_ns tells two PID namespaces on one host name apart (containers with the
    // host's network share its hostname but not its pids). Rows of an older dbs get one lease
    // length (60 s) from their start.
    sql: `
      ALTER TABLE locks ADD COLUMN heartbeat_at TEXT;
      ALTER TABLE locks ADD COLUMN expires_at TEXT;
      ALTER TABLE locks ADD COLUMN pid_ns TEXT;
      UPDATE locks SET heartbeat_at = acquired_at, expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', acquired_at, '+60 seconds');
    `,
  },
  {
    version: 4,
    name: "backups may be 'missing' (dbs saw their manifest gone from the pool)",
    sql: `
      CREATE TABLE backups_v4 (
        id            TEXT PRIMARY KEY,
        plan_id       TEXT NOT NULL,
        plan_name     TEXT NOT NULL,
        task_id       TEXT,
        pool_id       TEXT NOT NULL,
        status        TEXT NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'deleting', 'missing')),
        source_kind   TEXT NOT NULL,
        backup_type   TEXT NOT NULL,
        parent_id     TEXT,
        raw_bytes     INTEGER NOT NULL,
        stored_bytes  INTEGER NOT NULL,
        started_at    TEXT NOT NULL,
        ended_at      TEXT NOT NULL,
        manifest      TEXT NOT NULL
      );
      INSERT INTO backups_v4 SELECT id, plan_id, plan_name, task_id, pool_id, status, source_kind, backup_type, parent_id, raw_bytes, stored_bytes, started_at, ended_at, manifest FROM backups;
      DROP TABLE backups;
      ALTER TABLE backups_v4 RENAME TO backups;
      CREATE INDEX backups_plan ON backups (plan_id, ended_at);
    `,
  },
  {
    version: 5,
    name: 'pool types are the drivers\' business: no CHECK on pools.type; config must be JSON',
    foreignKeysOff: true,
    // plans.pool_id references pools (id): the new table takes the old one's name, so that
    // reference (by name) now points at it. No index on pools beyond its keys.
    sql: `
      CREATE TABLE pools_v5 (
        id             TEXT PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        type           TEXT NOT NULL CHECK (type <> ''),
        config         TEXT NOT NULL CHECK (json_valid(config)), -- JSON, no secrets
        remark         TEXT NOT NULL DEFAULT '',
        status         TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
        status_message TEXT NOT NULL DEFAULT '',
        latency_ms     REAL,
        checked_at     TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
      );
      INSERT INTO pools_v5 SELECT id, name, type, config, remark, status, status_message, latency_ms, checked_at, created_at, updated_at FROM pools;
      DROP TABLE pools;
      ALTER TABLE pools_v5 RENAME TO pools;
    `,
  },
  {
    version: 6,
    name: 'the gateway: at most one egress address and bandwidth cap per catalog',
    // One row at most (id = 1): a second `gateway create`, even a concurrent one, is a
    // PRIMARY KEY conflict. bandwidth is bytes per second (NULL: no cap); bandwidth_text is
    // the rate as the user wrote it.
    sql: `
      CREATE TABLE gateway (
        id             INTEGER PRIMARY KEY CHECK (id = 1),
        address        TEXT NOT NULL CHECK (address <> ''),
        bandwidth      INTEGER CHECK (bandwidth IS NULL OR bandwidth > 0),
        bandwidth_text TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
      );
    `,
  },
  {
    version: 7,
    name: 'backup copies: every pool that holds a backup, with its status',
    // A backup may live in several pools (the pool it was written to, replicas). One row per
    // (backup, pool): ready (its manifest is there and its artifacts were checked), copying, failed
    // (a copy that did not finish: never a copy), missing (its manifest is gone). Existing backups
    // get their primary copy: ready, or missing as the backup was; the sha256 was computed while
    // the backup was written, so its check time is the backup's end.
    sql: `
      CREATE TABLE backup_copies (
        backup_id    TEXT NOT NULL,
        pool_id      TEXT NOT NULL,
        role         TEXT NOT NULL CHECK (role IN ('primary', 'replica')),
        status       TEXT NOT NULL CHECK (status IN ('ready', 'copying', 'failed', 'missing')),
        stored_bytes INTEGER,
        checked_at   TEXT,
        error        TEXT NOT NULL DEFAULT '',
        attempts     INTEGER NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        PRIMARY KEY (backup_id, pool_id)
      );
      CREATE INDEX backup_copies_pool ON backup_copies (pool_id, status);
      INSERT INTO backup_copies (backup_id, pool_id, role, status, stored_bytes, checked_at, error, attempts, created_at, updated_at)
        SELECT id, pool_id, 'primary', CASE status WHEN 'missing' THEN 'missing' ELSE 'ready' END, stored_bytes, ended_at, '', 0, ended_at, ended_at FROM backups;
    `,
  },
  {
    version: 8,
    name: 'inventory at scale: list indexes; tasks record their pool, type and request',
    // Lists read newest first with filters and a LIMIT: each filter column gets an index that
    // ends with the sort key, so a page is an index range, not a sort of every row. A task
    // records the pool it ran against, its backup type and what was asked (the request), so
    // task filters and the plan history need no join and survive a plan's later changes.
    sql: `
      CREATE INDEX backups_ended ON backups (ended_at, id);
      CREATE INDEX backups_pool ON backups (pool_id, ended_at);
      CREATE INDEX backups_type ON backups (backup_type, ended_at);
      CREATE INDEX backups_status ON backups (status, ended_at);
      CREATE INDEX backups_parent ON backups (parent_id) WHERE parent_id IS NOT NULL;
      -- Covering index of the groupings (counts and sizes): read instead of the rows, whose
      -- manifests make a scan of the table read every page of it.
      CREATE INDEX backups_sizes ON backups (ended_at, plan_id, pool_id, source_kind, backup_type, status, raw_bytes, stored_bytes);
      ALTER TABLE tasks ADD COLUMN pool_id TEXT;
      ALTER TABLE tasks ADD COLUMN backup_type TEXT;
      ALTER TABLE tasks ADD COLUMN request TEXT;   -- JSON: what was asked, as it was asked
      UPDATE tasks SET
        pool_id = COALESCE((SELECT b.pool_id FROM backups b WHERE b.id = tasks.backup_id), (SELECT p.pool_id FROM plans p WHERE p.id = tasks.plan_id)),
        backup_type = COALESCE((SELECT b.backup_type FROM backups b WHERE b.id = tasks.backup_id), (SELECT p.backup_type FROM plans p WHERE p.id = tasks.plan_id));
      CREATE INDEX tasks_queued ON tasks (queued_at, id);
      CREATE INDEX tasks_status ON tasks (status, queued_at);
      CREATE INDEX tasks_pool ON tasks (pool_id, queued_at);
      CREATE INDEX tasks_type ON tasks (backup_type, queued_at);
      CREATE INDEX restores_started ON restores (started_at, id);
      CREATE INDEX restores_plan ON restores (plan_id, started_at);
      CREATE INDEX restores_status ON restores (status, started_at);
    `,
  },
  {
    version: 9,
    name: 'backup copies: a copy whose delete has not finished is "deleting"',
    // A delete (retention, backup delete) whose pool did not answer leaves the copy row with
    // status deleting and the reason; the daemon, the plan's next run or prune and `backup
    // delete` delete it again. SQLite cannot change a CHECK constraint in place: the table is
    // rebuilt (nothing references it).
    sql: `
      CREATE TABLE backup_copies_new (
        backup_id    TEXT NOT NULL,
        pool_id      TEXT NOT NULL,
        role         TEXT NOT NULL CHECK (role IN ('primary', 'replica')),
        status       TEXT NOT NULL CHECK (status IN ('ready', 'copying', 'failed', 'missing', 'deleting')),
        stored_bytes INTEGER,
        checked_at   TEXT,
        error        TEXT NOT NULL DEFAULT '',
        attempts     INTEGER NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        PRIMARY KEY (backup_id, pool_id)
      );
      INSERT INTO backup_copies_new SELECT backup_id, pool_id, role, status, stored_bytes, checked_at, error, attempts, created_at, updated_at FROM backup_copies;
      DROP TABLE backup_copies;
      ALTER TABLE backup_copies_new RENAME TO backup_copies;
      CREATE INDEX backup_copies_pool ON backup_copies (pool_id, status);
    `,
  },
  {
    version: 10,
    name: 'monitoring samples of tasks and restores; usage summaries on both',
    // One row per sample of a task or a restore (task_id holds either id: their prefixes
    // differ): t is the end of the interval the sample covers (Unix ms), span_ms its length,
    // cpu_pct the CPU of dbs and the run's children over it (100 = one core), rss_bytes their
    // RSS at t, bytes_in / bytes_out the run's totals so far (read from the source / sent to
    // the pool). Bounded: Catalog.rollUpSamples merges old rows into coarser ones.
    sql: `
      CREATE TABLE task_samples (
        task_id    TEXT NOT NULL,
        t          INTEGER NOT NULL,
        span_ms    INTEGER NOT NULL,
        cpu_pct    REAL NOT NULL,
        rss_bytes  INTEGER NOT NULL,
        bytes_in   INTEGER NOT NULL,
        bytes_out  INTEGER NOT NULL
      );
      CREATE INDEX task_samples_task ON task_samples (task_id, t);
      CREATE INDEX task_samples_t ON task_samples (t, span_ms);
      ALTER TABLE tasks ADD COLUMN cpu_seconds REAL;
      ALTER TABLE tasks ADD COLUMN child_cpu_seconds REAL;
      ALTER TABLE tasks ADD COLUMN cpu_avg_pct REAL;
      ALTER TABLE tasks ADD COLUMN cpu_peak_pct REAL;
      ALTER TABLE tasks ADD COLUMN rss_peak_bytes INTEGER;
      ALTER TABLE tasks ADD COLUMN bytes_in INTEGER;
      ALTER TABLE tasks ADD COLUMN bytes_out INTEGER;
      ALTER TABLE restores ADD COLUMN cpu_seconds REAL;
      ALTER TABLE restores ADD COLUMN child_cpu_seconds REAL;
      ALTER TABLE restores ADD COLUMN cpu_avg_pct REAL;
      ALTER TABLE restores ADD COLUMN cpu_peak_pct REAL;
      ALTER TABLE restores ADD COLUMN rss_peak_bytes INTEGER;
      ALTER TABLE restores ADD COLUMN bytes_in INTEGER;
      ALTER TABLE restores ADD COLUMN bytes_out INTEGER;
    `,
  },
  {
    version: 11,
    name: 'alerts and their state per plan',
    // An alert watches one plan (plan_id) or every plan (all_plans = 1): rules and targets are
    // JSON arrays of the texts the user gave (validated by core/alerts.ts). Its webhook secret
    // is a reference in the secrets table (owner "alert"). alert_states holds, per alert and
    // plan, whether it fires and since when; deleting the alert or the plan drops them.
    sql: `
      CREATE TABLE alerts (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        plan_id    TEXT REFERENCES plans(id) ON DELETE CASCADE,
        all_plans  INTEGER NOT NULL DEFAULT 0 CHECK (all_plans IN (0, 1)),
        rules      TEXT NOT NULL,
        targets    TEXT NOT NULL,
        remark     TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        CHECK ((plan_id IS NULL) = (all_plans = 1))
      );
      CREATE TABLE alert_states (
        alert_id    TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
        plan_id     TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
        state       TEXT NOT NULL CHECK (state IN ('ok', 'firing')),
        reason      TEXT NOT NULL DEFAULT '',
        since       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (alert_id, plan_id)
      );
    `,
  },
  {
    version: 13,
    name: 'orphan uploads found by the last sweep of each pool; stage byte counters on samples',
    // pools.orphan_uploads: incomplete uploads of tasks no live process runs that the last sweep
    // of the pool found (and aborted): pool check, a run's start, the daemon's start; NULL until
    // one swept. orphans_checked_at: when. task_samples.stages: JSON object stage -> bytes that
    // went through it so far (a total, like bytes_in/bytes_out); NULL for samples without.
    sql: `
      ALTER TABLE pools ADD COLUMN orphan_uploads INTEGER;
      ALTER TABLE pools ADD COLUMN orphans_checked_at TEXT;
      ALTER TABLE task_samples ADD COLUMN stages TEXT;
    `,
  },
];
