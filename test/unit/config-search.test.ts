// The config search skips cosmiconfig when no candidate file exists (start-up), and still
// finds a file in a parent folder, under .config/, or in the global config folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { tempDir } from '../support/testbed.js';

describe('config search', () => {
  it('finds a config in a parent folder, in .config/, and in $XDG_CONFIG_HOME/dbs; none: defaults', async () => {
    const root = tempDir('cfgsearch');
    const deep = join(root, 'a', 'b', 'c');
    mkdirSync(deep, { recursive: true });
    const xdg = join(root, 'xdg');
    // cosmiconfig reads the global folder from process.env itself.
    const saved = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = xdg;
    try {
    const none = await loadSettings({ flags: {}, env: { XDG_CONFIG_HOME: xdg }, cwd: deep });
    expect(none).toMatchObject({ compression: 'zstd', configFile: undefined });
    mkdirSync(join(xdg, 'dbs'), { recursive: true });
    writeFileSync(join(xdg, 'dbs', 'config.json'), JSON.stringify({ concurrency: 7 }));
    expect(await loadSettings({ flags: {}, env: { XDG_CONFIG_HOME: xdg }, cwd: deep })).toMatchObject({ concurrency: 7, configFile: join(xdg, 'dbs', 'config.json') });
    mkdirSync(join(root, 'a', '.config'));
    writeFileSync(join(root, 'a', '.config', 'dbsrc.json'), JSON.stringify({ concurrency: 5 }));
    expect(await loadSettings({ flags: {}, env: { XDG_CONFIG_HOME: xdg }, cwd: deep })).toMatchObject({ concurrency: 5 });
    writeFileSync(join(root, 'a', 'b', 'dbs.config.json'), JSON.stringify({ concurrency: 3 }));
    expect(await loadSettings({ flags: {}, env: { XDG_CONFIG_HOME: xdg }, cwd: deep })).toMatchObject({ concurrency: 3, configFile: join(root, 'a', 'b', 'dbs.config.json') });
    } finally {
      if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = saved;
    }
  });
});
