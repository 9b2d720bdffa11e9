#!/usr/bin/env node
// Shebang shim: checks the Node.js version, then loads the compiled program (see src/main.ts).
// Nothing is imported statically: under an old Node a dependency would crash before the check.
const REQUIRED = [24, 0]; // keep equal to package.json "engines.node" (test/unit/node-check.test.ts)
const have = process.versions.node.split('.').map(Number);
if (have[0] < REQUIRED[0] || (have[0] === REQUIRED[0] && have[1] < REQUIRED[1])) {
  process.stderr.write(
    `dbs: needs Node.js >= ${REQUIRED.join('.')}, this is v${process.versions.node} (${process.execPath})\n` +
      'hint: install Node.js 24, run it through the checkout (npx dbs, which uses the pinned Node), or use the single executable (npm run build:exe)\n',
  );
  process.exit(2);
}
await import('../dist/main.js');
