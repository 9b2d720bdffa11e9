#!/usr/bin/env node
// Shebang shim: loads the compiled program and nothing else (see src/main.ts). The V8 compile
// cache (Node >= 22.1; in the OS temp dir, or NODE_COMPILE_CACHE) lets later runs skip parsing
// and compiling dbs and its dependencies: start-up is most of what a short command costs.
import module from 'node:module';
module.enableCompileCache?.();
await import('../dist/main.js');
