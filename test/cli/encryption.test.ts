// Encryption to age recipients through the CLI: bad recipients (exit 2, naming them, nothing
// changes), a missing or wrong identity on restore (clear errors, nothing written to the
// target), verify with and without a key, --no-encrypt, the stock restore with Debian's age
// (the README's recipe), and a catalog backup whose pool holds no secret in any byte.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { mysqlConn, queryRows, servers, tempDir, testbed } from '../support/testbed.js';
import { mysqlTables } from '../roundtrip/compare.js';

async function keygen(dir: string, name: string): Promise<{ file: string; recipient: string; secret: string }> {
  const file = join(dir, `${name}.txt`);
  await execa('age-keygen', ['-o', file]);
  const recipient = (await execa('age-keygen', ['-y', file])).stdout.trim();
  return { file, recipient, secret: readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))! };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

beforeAll(() => servers('mariadb', 's3'));

describe('encryption', () => {
  it('a bad recipient (flag or file line) is exit 2 naming it, and nothing changes', async () => {
    const home = tempDir('age-home');
    const keys = await keygen(tempDir('age-keys'), 'k');
    const db = join(tempDir('age-src'), 'a.db');
    new Database(db).exec('CREATE TABLE t (x)').close();
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('age-pool')], { home })).code).toBe(0);
    const typo = keys.recipient.slice(0, -2) + (keys.recipient.endsWith('qq') ? 'pp' : 'qq');
    const bad = await dbs(['plan', 'create', 'a', '--source', `sqlite://${db}`, '--pool', 'p', '--encrypt-to', keys.recipient, '--encrypt-to', typo], { home });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(typo);
    expect(bad.stderr).toMatch(/is not an age recipient/);
    const list = await dbs(['--json', 'plan', 'list'], { home });
    expect(list.json()).toEqual([]);
    // A private key by mistake: refused without echoing it.
    const priv = await dbs(['plan', 'create', 'a', '--source', `sqlite://${db}`, '--pool', 'p', '--encrypt-to', keys.secret], { home });
    expect(priv.code).toBe(2);
    expect(priv.stderr).toMatch(/is an age identity \(a private key\), not a recipient/);
    expect(priv.stderr + priv.stdout).not.toContain(keys.secret);
    const file = join(tempDir('age-rf'), 'recipients.txt');
    writeFileSync(file, `# ops team\n${keys.recipient}\n\nssh-rsa AAAAB3Nza\n`);
    const badFile = await dbs(['plan', 'create', 'a', '--source', `sqlite://${db}`, '--pool', 'p', '--recipients-file', file], { home });
    expect(badFile.code).toBe(2);
    expect(badFile.stderr).toContain(`line 2 of ${file}`);
    expect(badFile.stderr).toContain('ssh-rsa AAAAB3Nza');
    // A good plan; an update with a bad recipient leaves it as it was.
    writeFileSync(file, `# ops team\n${keys.recipient}\n`);
    expect((await dbs(['plan', 'create', 'a', '--source', `sqlite://${db}`, '--pool', 'p', '--recipients-file', file], { home })).code).toBe(0);
    const upd = await dbs(['plan', 'update', 'a', '--encrypt-to', 'age1notakey'], { home });
    expect(upd.code).toBe(2);
    expect(upd.stderr).toContain('age1notakey');
    expect((await dbs(['--json', 'plan', 'show', 'a'], { home })).json().recipients).toEqual([keys.recipient]);
    const both = await dbs(['plan', 'update', 'a', '--no-encrypt', '--encrypt-to', keys.recipient], { home });
    expect(both.code).toBe(2);
    expect((await dbs(['--json', 'plan', 'show', 'a'], { home })).json().recipients).toEqual([keys.recipient]);
  });

  it('mysql logical: no identity, a wrong one: clear errors, nothing written; the right one restores; verify needs no key; --no-encrypt', async () => {
    const m = testbed().mariadb;
    const home = tempDir('age-home');
    const dir = tempDir('age-keys');
    const right = await keygen(dir, 'right');
    const wrong = await keygen(dir, 'wrong');
    const other = await keygen(dir, 'other');
    const conn = await mysqlConn(m);
    const db = `age_${randomBytes(3).toString('hex')}`;
    try {
      await conn.query(`CREATE DATABASE \`${db}\`; USE \`${db}\`; CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO \`${db}\`.t SELECT seq, CONCAT('v', seq) FROM seq_1_to_5000;`);
      expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('age-pool')], { home })).code).toBe(0);
      const url = `mysql://${m.user}@127.0.0.1:${m.port}`;
      const c = await dbs(['plan', 'create', 'shop', '--source', url, '--databases', db, '--pool', 'p', '--encrypt-to', right.recipient, '--encrypt-to', other.recipient], { home });
      expect(c.code, c.stderr).toBe(0);
      const r = await dbs(['--json', 'plan', 'run', 'shop'], { home });
      expect(r.code, r.stderr).toBe(0);
      const id = String(r.json().backup.id);
      const target = `${db}_restored`;
      const exists = async () => (await queryRows<{ n: number }>(conn, 'SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = ?', [target]))[0]!.n;

      const none = await dbs(['backup', 'restore', id, '--to', url, '--database', `${db}:${target}`], { home });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/is encrypted \(age\) to/);
      expect(none.stderr).toContain(right.recipient);
      expect(none.stderr).toContain(other.recipient);
      expect(none.stderr).toMatch(/--identity-file|DBS_IDENTITY_FILE/);
      const noneJson = await dbs(['--json', 'backup', 'restore', id, '--to', url, '--database', `${db}:${target}`], { home });
      expect(noneJson.code).toBe(2);
      expect(JSON.parse(noneJson.stderr.trim().split('\n').at(-1)!)).toMatchObject({ type: 'error', code: 'IDENTITY_REQUIRED', exitCode: 2 });
      const bad = await dbs(['backup', 'restore', id, '--to', url, '--database', `${db}:${target}`, '--identity-file', wrong.file], { home });
      expect(bad.code).toBe(7);
      expect(bad.stderr).toContain(wrong.recipient);
      expect(bad.stderr).toMatch(/nothing was read/);
      expect(bad.stderr).not.toContain(wrong.secret);
      const badEnv = await dbs(['backup', 'restore', id, '--to', url, '--database', `${db}:${target}`], { home, env: { DBS_IDENTITY_FILE: wrong.file } });
      expect(badEnv.code).toBe(7);
      expect(await exists()).toBe(0);
      expect((await dbs(['--json', 'restore', 'list'], { home })).json()).toEqual([]);

      // verify: the stored bytes without a key; --prepare needs one.
      const v = await dbs(['--json', 'backup', 'verify', id], { home });
      expect(v.code, v.stderr).toBe(0);
      expect(v.json().ok).toBe(true);
      const vp = await dbs(['backup', 'verify', id, '--prepare'], { home });
      expect(vp.code).toBe(2);
      expect(vp.stderr).toContain(right.recipient);
      const vpOk = await dbs(['--json', 'backup', 'verify', id, '--prepare', '--identity-file', other.file], { home });
      expect(vpOk.code, vpOk.stderr).toBe(0);
      expect(vpOk.json().prepared.ok).toBe(true);

      // Either recipient's identity restores (a file with both keys too).
      const both = join(dir, 'both.txt');
      writeFileSync(both, `${readFileSync(wrong.file, 'utf8')}\n${readFileSync(right.file, 'utf8')}`);
      const ok = await dbs(['backup', 'restore', id, '--to', url, '--database', `${db}:${target}`, '--identity-file', both], { home });
      expect(ok.code, ok.stderr).toBe(0);
      expect(await mysqlTables(conn, target)).toEqual(await mysqlTables(conn, db));

      // --no-encrypt: the next backup is plain and restores without a key; --identity-file then does not apply.
      expect((await dbs(['plan', 'update', 'shop', '--no-encrypt'], { home })).code).toBe(0);
      const plain = await dbs(['--json', 'plan', 'run', 'shop'], { home });
      expect(plain.code, plain.stderr).toBe(0);
      const pm = (await dbs(['--json', 'backup', 'show', plain.json().backup.id], { home })).json();
      expect(pm.encryption).toBe('none');
      expect(pm.artifacts[0].name).toBe('dump.sql.zst');
      const extra = await dbs(['backup', 'restore', pm.backupId, '--to', url, '--database', `${db}:${target}_2`, '--identity-file', right.file], { home });
      expect(extra.code).toBe(2);
      expect(extra.stderr).toMatch(/--identity-file applies to encrypted backups/);
    } finally {
      for (const d of [db, `${db}_restored`, `${db}_restored_2`]) await conn.query(`DROP DATABASE IF EXISTS \`${d}\``);
      await conn.end();
    }
  });

  it('the stock restore: age -d -i key.txt dump.sql.zst.age | zstd -dc | mariadb (the README recipe)', async () => {
    const m = testbed().mariadb;
    const home = tempDir('age-home');
    const pool = tempDir('age-pool');
    const key = await keygen(tempDir('age-keys'), 'key');
    const conn = await mysqlConn(m);
    const db = `agestock_${randomBytes(3).toString('hex')}`;
    try {
      await conn.query(`CREATE DATABASE \`${db}\`; USE \`${db}\`; CREATE TABLE \`${db}\`.t (id INT PRIMARY KEY, v TEXT); INSERT INTO \`${db}\`.t SELECT seq, REPEAT(CHAR(65 + seq % 26), seq % 300) FROM seq_1_to_20000;`);
      expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home })).code).toBe(0);
      const url = `mysql://${m.user}@127.0.0.1:${m.port}`;
      expect((await dbs(['plan', 'create', 'stock', '--source', url, '--databases', db, '--pool', 'p', '--encrypt-to', key.recipient], { home })).code).toBe(0);
      const r = await dbs(['--json', 'plan', 'run', 'stock'], { home });
      expect(r.code, r.stderr).toBe(0);
      const before = await mysqlTables(conn, db);
      const art = filesUnder(pool).find((f) => f.endsWith('/dump.sql.zst.age'));
      expect(art).toBeDefined();
      // The dump names its database: drop it, then the stock pipeline recreates it.
      await conn.query(`DROP DATABASE \`${db}\``);
      await execa('bash', ['-o', 'pipefail', '-c', `age -d -i ${key.file} ${art} | zstd -dc | mariadb --no-defaults -h 127.0.0.1 -P ${m.port} -u ${m.user}`]);
      expect(await mysqlTables(conn, db)).toEqual(before);
      // And what the pool holds really is ciphertext: no row of the table in any byte.
      expect(readFileSync(art!).includes(Buffer.from('CREATE TABLE'))).toBe(false);
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await conn.end();
    }
  });

  it('a catalog plan requires recipients; no secret is in any byte of the pool (decompressed too); the right key restores them', async () => {
    const m = testbed().mariadb;
    const s3 = testbed().s3;
    const home = tempDir('age-home');
    const pool = tempDir('age-pool');
    const key = await keygen(tempDir('age-keys'), 'key');
    const conn = await mysqlConn(m);
    const user = `agesec_${randomBytes(3).toString('hex')}`;
    const password = `Pw-${randomBytes(12).toString('hex')}`;
    try {
      await conn.query(`CREATE DATABASE \`${user}\`; CREATE TABLE \`${user}\`.t (x INT); CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, RELOAD, PROCESS ON *.* TO '${user}'@'127.0.0.1';`);
      expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home })).code).toBe(0);
      const b = await dbs(['pool', 'bind', 's', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `age-${randomBytes(3).toString('hex')}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env: { S3_SECRET: s3.secretKey } });
      expect(b.code, b.stderr).toBe(0);
      const pc = await dbs(['plan', 'create', 'src', '--source', `mysql://${user}@127.0.0.1:${m.port}`, '--databases', user, '--pool', 'p', '--password-env', 'PW'], { home, env: { PW: password } });
      expect(pc.code, pc.stderr).toBe(0);

      const plain = await dbs(['plan', 'create', 'platform', '--source', 'catalog', '--pool', 'p'], { home });
      expect(plain.code).toBe(2);
      expect(plain.stderr).toMatch(/holds secrets .*must be encrypted/);
      expect(plain.stderr).toMatch(/--encrypt-to/);
      const c = await dbs(['plan', 'create', 'platform', '--source', 'catalog', '--pool', 'p', '--encrypt-to', key.recipient], { home });
      expect(c.code, c.stderr).toBe(0);
      expect((await dbs(['plan', 'update', 'platform', '--no-encrypt'], { home })).code).toBe(2);
      const r = await dbs(['--json', 'plan', 'run', 'platform'], { home });
      expect(r.code, r.stderr).toBe(0);

      // Every byte of every file in the pool, and of each one that decompresses, without the secrets.
      const secrets = [password, s3.secretKey].map((x) => Buffer.from(x));
      const files = filesUnder(pool);
      expect(files.some((f) => f.endsWith('.sqlite.zst.age'))).toBe(true);
      for (const f of files) {
        const bytes = readFileSync(f);
        const views = [bytes];
        const z = await execa('zstd', ['-dc', f], { encoding: 'buffer', reject: false });
        if (z.exitCode === 0) views.push(Buffer.from(z.stdout));
        for (const v of views) for (const s of secrets) expect(v.includes(s), `${f} holds a secret`).toBe(false);
      }
      // They are in the backup (so the check above could fail): restored with the key, the catalog has them.
      const out = join(tempDir('age-restore'), 'catalog.db');
      const rs = await dbs(['backup', 'restore', r.json().backup.id, '--to', `sqlite://${out}`, '--identity-file', key.file], { home });
      expect(rs.code, rs.stderr).toBe(0);
      const restored = readFileSync(out);
      for (const s of secrets) expect(restored.includes(s)).toBe(true);

      // A catalog plan without recipients (made before this rule) is refused at run time, and writes nothing.
      const cat = new Database(join(home, 'catalog.db'));
      cat.prepare("UPDATE plans SET options = json_remove(options, '$.encryption') WHERE name = 'platform'").run();
      cat.close();
      const before = filesUnder(pool).length;
      const old = await dbs(['plan', 'run', 'platform'], { home });
      expect(old.code).toBe(4);
      expect(old.stderr).toMatch(/holds secrets: it would store them unencrypted/);
      expect(filesUnder(pool).length).toBe(before);
    } finally {
      await conn.query(`DROP USER IF EXISTS '${user}'@'127.0.0.1'; DROP DATABASE IF EXISTS \`${user}\``);
      await conn.end();
    }
  });
});
