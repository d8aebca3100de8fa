import { describe, expect, it } from 'vitest';
import { knownEnvNames, unknownEnvWarnings } from './env-check.js';

describe('unknown FEDLORA_* variables', () => {
  it('knows both programs\' plain and scoped names', () => {
    const known = knownEnvNames();
    for (const n of ['FEDLORA_ROUNDS_TOTAL', 'FEDLORA_COORDINATOR_ROUNDS_TOTAL', 'FEDLORA_CLIENT_DATA_PATH', 'FEDLORA_DATA_DIR', 'FEDLORA_UPLOADS_MAX_BUFFERED_MB']) expect(known.has(n)).toBe(true);
  });

  it('warns about misspelt names with the closest known one, and not about real settings', () => {
    const env = {
      FEDLORA_COORDINATOR_ROUNDZ_TOTAL: '3',
      FEDLORA_ROUNDS_TOTL: '3',
      FEDLORA_ROUNDS_TOTAL: '3',
      FEDLORA_CLIENT_PRIVACY_EPSILON: '2',
      FEDLORA_BACKEND: 'wasm',
      HOME: '/root',
    };
    expect(unknownEnvWarnings(env)).toEqual([
      'fedlora: warning: FEDLORA_COORDINATOR_ROUNDZ_TOTAL is not a fedlora setting and is ignored (did you mean FEDLORA_COORDINATOR_ROUNDS_TOTAL?)',
      'fedlora: warning: FEDLORA_ROUNDS_TOTL is not a fedlora setting and is ignored (did you mean FEDLORA_ROUNDS_TOTAL?)',
    ]);
  });
});
