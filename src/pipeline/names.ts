// The names of compressions and executions, without the stages behind them: what settings
// and flags check, importable by a short command without loading age, zstd or child processes.
export type Compression = 'zstd' | 'gzip' | 'none';
export const COMPRESSIONS: readonly Compression[] = ['zstd', 'gzip', 'none'];

export type Execution = 'node' | 'programs' | 'file';
export const EXECUTIONS: readonly Execution[] = ['node', 'programs', 'file'];
