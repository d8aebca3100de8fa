import { describe, expect, it } from 'vitest';
import type { RoundPlan, Task } from '@fedlora/federation';
import { federationService } from './proto.js';
import type { PbGetTaskResponse } from './wire-types.js';
import { taskFromProto, taskToProto } from './serde.js';

const plan: RoundPlan = {
  round: 2,
  attempt: 1,
  adapterSha256: 'cd'.repeat(32),
  tensors: [{ name: 'a', shape: [2] }],
  localSteps: 1,
  learningRate: 0.01,
  batchSize: 4,
  deadlineUnixMs: 1_800_000_000_000,
  nonce: 'n1',
  sampling: { mode: 'poisson', population: 10_000, expectedCohort: 1000, rate: 0.1, drawn: 987 },
};

/** A task through the real protobuf bytes of GetTask's response (the .proto field, not only the JS shape). */
function overTheWire(task: Task): Task {
  const def = federationService().GetTask!;
  const bytes = def.responseSerialize(taskToProto(task));
  return taskFromProto(def.responseDeserialize(bytes) as PbGetTaskResponse);
}

describe('RoundPlan.sampling on the wire', () => {
  it('reaches the client: mode, population, expected and drawn cohort, rate', () => {
    const got = overTheWire({ kind: 'train', plan });
    expect(got).toEqual({ kind: 'train', plan });
  });

  it('is absent from a plan of a coordinator that does not sample', () => {
    const { sampling: _, ...plain } = plan;
    const got = overTheWire({ kind: 'train', plan: plain });
    expect(got.kind === 'train' && got.plan.sampling).toBeUndefined();
  });

  it('refuses a draw that does not add up, naming the field', () => {
    const bad = (s: Partial<NonNullable<RoundPlan['sampling']>>) => () => overTheWire({ kind: 'train', plan: { ...plan, sampling: { ...plan.sampling!, ...s } } });
    expect(bad({ mode: 'all' as const, expectedCohort: 1000, drawn: 999 })).toThrow(/plan.sampling: a all draw asked for 1000 but drew 999/);
    expect(bad({ drawn: 10_001 })).toThrow(/plan.sampling.drawn 10001 exceeds its population 10000/);
    expect(bad({ rate: 0.5 })).toThrow(/plan.sampling.rate 0.5 is not expectedCohort \/ population/);
    expect(bad({ mode: 'stratified' as never })).toThrow(/plan.sampling.mode must be all, uniform or poisson/);
  });
});
