// Process entry: wires SIGINT/SIGTERM to one AbortController and is the only process.exit.
import { runCli } from './cli.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (sig: NodeJS.Signals) => {
  signals++;
  if (signals === 1) {
    controller.abort(Object.assign(new Error(`interrupted by ${sig}`), { name: 'AbortError' }));
  } else {
    // A second signal while cleaning up: give up at once.
    process.exit(130);
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// No top-level await: the executable's bundle (scripts/build-exe.mjs) is a CommonJS script.
void runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  // A getter: process.stdin makes its stream on first read, which most commands never need.
  get stdin() {
    return process.stdin;
  },
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
}).then((code) => {
  // Let stdout drain before exiting (pipes to `jq`, files).
  process.stdout.write('', () => process.exit(code));
});
