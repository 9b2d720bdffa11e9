import { build } from 'esbuild';
await build({ stdin: { contents: "import { Command } from 'commander'; const p = new Command('x'); p.command('a').option('--b <c>'); p.parse(['node','x','a']);", resolveDir: process.cwd() }, outfile: '/tmp/su/cmdb.cjs', bundle: true, platform: 'node', format: 'cjs' });
await build({ stdin: { contents: "import { Command } from 'commander'; const p = new Command('x'); p.command('a').option('--b <c>'); p.parse(['node','x','a']);", resolveDir: process.cwd() }, outfile: '/tmp/su/cmdb.mjs', bundle: true, platform: 'node', format: 'esm' });
