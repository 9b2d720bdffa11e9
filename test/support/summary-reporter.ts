// Prints one plain closing line, "N passed, N failed, N skipped", after vitest's own summary,
// so CI logs carry a runner-neutral count. A file or suite that failed outside its tests (a
// beforeAll that threw, e.g. a server that could not start) counts as one failure: its tests
// show as skipped, but the file failed.
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
      if (m.state() === 'failed' && (m.errors().length > 0 || [...m.children.allTests()].length === 0)) failed++;
      for (const suite of m.children.allSuites()) if (suite.errors().length > 0) failed++;
    }
    failed += errors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
