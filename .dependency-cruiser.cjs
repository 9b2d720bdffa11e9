// The layer rules of docs/ARCHITECTURE.md, checked on every `npm test`:
// commands -> core -> (engines, storage, pipeline, store); engines never import storage or
// the catalog; drivers and stages are leaves; nothing imports the commands but the CLI.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular-layers', severity: 'error', comment: 'layers do not import upwards', from: { path: '^src/(engines|storage|pipeline|store)/' }, to: { path: '^src/(core|commands|cli\\.ts|main\\.ts)' } },
    { name: 'core-not-commands', severity: 'error', comment: 'core does not know argv or rendering', from: { path: '^src/core/' }, to: { path: '^src/(commands|cli\\.ts|main\\.ts|output)/?' } },
    { name: 'engines-not-storage-or-catalog', severity: 'error', comment: 'engines receive a sink/source; they never open pools or the catalog', from: { path: '^src/engines/' }, to: { path: '^src/(storage|store)/' } },
    { name: 'store-not-engines', severity: 'error', comment: 'the catalog stores data; it knows no engine', from: { path: '^src/store/' }, to: { path: '^src/(engines|core|commands|storage|pipeline|output)/' } },
    { name: 'drivers-are-leaves', severity: 'error', comment: 'pool drivers depend on nothing of dbs but errors, secrets and their own folder', from: { path: '^src/storage/' }, to: { path: '^src/(core|engines|commands|output|pipeline)/' } },
    { name: 'stages-are-leaves', severity: 'error', comment: 'pipeline stages depend on nothing of dbs but errors and their own folder', from: { path: '^src/pipeline/' }, to: { path: '^src/(core|engines|commands|output|store|storage)/' } },
    {
      name: 'nothing-below-commands-renders',
      severity: 'error',
      comment: 'core and below neither print nor prompt: they report typed events (src/core/events.ts); commands render them and ask',
      from: { path: '^src/(core|engines|storage|store|pipeline)/' },
      to: { path: ['^src/output/', '(^|/)node_modules/@inquirer/', '^src/(context|cli|main)\\.ts$'] },
    },
    { name: 'src-not-test', severity: 'error', from: { path: '^src/' }, to: { path: '^(test|bench)/' } },
    { name: 'no-circular', severity: 'error', from: { path: '^src/' }, to: { circular: true, viaOnly: { pathNot: '^src/(core|commands)/' } } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^dist/' },
  },
};
