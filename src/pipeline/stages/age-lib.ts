// age-encryption, loaded on first use (a recipient checked, a header written or read): a plan
// run or a restore without encryption never loads it or its curve libraries (~15-25 ms of
// start-up). The executable's build (scripts/build-exe.mjs) replaces this module with a static
// import of the bundled library.
import { createRequire } from 'node:module';
import type * as Age from 'age-encryption';

let lib: typeof Age | undefined;

export function loadAge(): typeof Age {
  return (lib ??= createRequire(import.meta.url)('age-encryption') as typeof Age);
}
