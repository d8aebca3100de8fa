import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DP_SGD_SIMULATE_DEFAULTS, applyDpSgdDefaults, dpSgdDefaultsFlags } from './dp-defaults.js';

const readme = readFileSync(fileURLToPath(new URL('../../../../README.md', import.meta.url)), 'utf8');

describe('simulate DP-SGD defaults', () => {
  it('are the ones the README states', () => {
    // The README quotes the flags exactly as dpSgdDefaultsFlags() renders them (and simulate prints them).
    expect(dpSgdDefaultsFlags()).toBe(
      `--batch-size ${DP_SGD_SIMULATE_DEFAULTS.batchSize} --local-steps ${DP_SGD_SIMULATE_DEFAULTS.localSteps} --lr ${DP_SGD_SIMULATE_DEFAULTS.learningRate} --dp-sgd-max-sequences ${DP_SGD_SIMULATE_DEFAULTS.maxSequencesPerUnit}`,
    );
    expect(readme).toContain(`\`${dpSgdDefaultsFlags()}\``);
  });

  it('fill only what the command line did not give, and say what they filled', () => {
    const given = new Set(['learningRate']);
    const r = applyDpSgdDefaults({ batchSize: 8, localSteps: 15, learningRate: 0.001, maxSequencesPerUnit: undefined }, (k) => given.has(k));
    expect(r.options).toEqual({ batchSize: DP_SGD_SIMULATE_DEFAULTS.batchSize, localSteps: DP_SGD_SIMULATE_DEFAULTS.localSteps, learningRate: 0.001, maxSequencesPerUnit: DP_SGD_SIMULATE_DEFAULTS.maxSequencesPerUnit });
    expect(r.applied).toBe(`batchSize ${DP_SGD_SIMULATE_DEFAULTS.batchSize}, localSteps ${DP_SGD_SIMULATE_DEFAULTS.localSteps}, maxSequencesPerUnit ${DP_SGD_SIMULATE_DEFAULTS.maxSequencesPerUnit}`);
    expect(applyDpSgdDefaults({ batchSize: 1, localSteps: 2, learningRate: 3, maxSequencesPerUnit: 4 }, () => true)).toEqual({ options: { batchSize: 1, localSteps: 2, learningRate: 3, maxSequencesPerUnit: 4 }, applied: '' });
  });
});
