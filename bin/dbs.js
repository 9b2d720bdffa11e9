#!/usr/bin/env node
// Shebang shim: loads the compiled program and nothing else (see src/main.ts).
import '../dist/main.js';
