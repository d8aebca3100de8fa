import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DP_SGD_SIMULATE_DEFAULTS, applyDpSgdDefaults, dpSgdDefaultsFlags } from './dp-defaults.js';

const readme = readFileSync(fileURLToPath(new URL('../../../../README.md', import.meta.url)), 'utf8');

describe('simulate DP-SGD defaults', () => {
  it('are the ones the README states', () => {
    // The README quotes the flags exactly as dpSgdDefaultsFlags() renders them (and simulate prints them).
    expect(dpSgdDefaultsFlags()).toBe(
      `--batch-size ${DP_SGD_SIMULATE_DEFAULTS.batchSize} --local-steps ${DP_SGD_SIMULATE_DEFAULTS.localSteps} --lr ${DP_SGD_SIMULATE_DEFAULTS.learningRate} --dp-sgd-max-sequences ${DP_SGD_SIMULATE_DEFAULTS.maxSequencesPerUnit} --stage-timeout ${DP_SGD_SIMULATE_DEFAULTS.stageTimeout}`,
    );
    expect(readme).toContain(`\`${dpSgdDefaultsFlags()}\``);
  });

  it('fill only what the command line did not give, and say what they filled', () => {
    const given = new Set(['learningRate']);
    const r = applyDpSgdDefaults({ batchSize: 8, localSteps: 15, learningRate: 0.001, maxSequencesPerUnit: undefined, stageTimeout: 10 }, (k) => given.has(k));
    const d = DP_SGD_SIMULATE_DEFAULTS;
    expect(r.options).toEqual({ batchSize: d.batchSize, localSteps: d.localSteps, learningRate: 0.001, maxSequencesPerUnit: d.maxSequencesPerUnit, stageTimeout: d.stageTimeout });
    expect(r.applied).toBe(`batchSize ${d.batchSize}, localSteps ${d.localSteps}, maxSequencesPerUnit ${d.maxSequencesPerUnit}, stageTimeout ${d.stageTimeout}`);
    const all = { batchSize: 1, localSteps: 2, learningRate: 3, maxSequencesPerUnit: 4, stageTimeout: 5 };
    expect(applyDpSgdDefaults(all, () => true)).toEqual({ options: all, applied: '' });
  });
});
