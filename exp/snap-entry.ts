import * as v8 from 'node:v8';
import { runCli } from '../src/cli.js';
v8.startupSnapshot.setDeserializeMainFunction(() => {
  void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd(), signal: new AbortController().signal })
    .then((code) => process.stdout.write('', () => process.exit(code)));
});
