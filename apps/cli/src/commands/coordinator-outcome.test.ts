import { describe, expect, it } from 'vitest';
import type { RoundSummary } from '@fedlora/federation';
import { explainFailedRun } from './coordinator-outcome.js';

/** A round attempt as the coordinator records it. */
function attempt(round: number, n: number, status: RoundSummary['status'], extra: Partial<RoundSummary> = {}): RoundSummary {
  return {
    round, attempt: n, status, participants: status === 'completed' ? 2 : 0, participantNames: [], cohort: 2, dropped: [], declined: [],
    trainLoss: null, numExamples: 0, adapterSha256: null, startedAt: 0, endedAt: 1, metrics: {}, ...extra,
  };
}

const CAUSE = 'round 3 aborted 3 times; see the round history for reasons';

describe('explainFailedRun', () => {
  it('names the failed round, its abort reasons and the institutions that declined it, and how to finish with the committed rounds', () => {
    const history = [
      attempt(1, 1, 'completed'),
      attempt(2, 1, 'completed'),
      attempt(3, 1, 'aborted', { reason: 'every client declined the round (refused: budget)', declined: ['inst-2', 'inst-1'] }),
      attempt(3, 2, 'aborted', { reason: '0 of 2 clients reported, minClients is 2', declined: ['inst-1'] }),
      attempt(3, 3, 'aborted', { reason: '0 of 2 clients reported, minClients is 2', declined: ['inst-1'] }),
    ];
    const text = explainFailedRun(CAUSE, history);
    expect(text).not.toContain('see the round history');
    expect(text).toContain('round 3 aborted because: every client declined the round (refused: budget); 0 of 2 clients reported, minClients is 2');
    expect(text).toContain('declined by: inst-1, inst-2.');
    expect(text).toMatch(/raise its budget \(privacy\.epsilon, dpSgd\.epsilon/);
    expect(text).toContain('rounds.total: 2 (e.g. FEDLORA_COORDINATOR_ROUNDS_TOTAL=2)');
  });

  it('counts a round that completed on a later attempt once', () => {
    const history = [attempt(1, 1, 'aborted', { reason: 'deadline' }), attempt(1, 2, 'completed'), attempt(2, 1, 'aborted', { reason: 'deadline' })];
    const text = explainFailedRun('round 2 aborted 1 times', history);
    expect(text).toContain('round 2 aborted because: deadline');
    expect(text).not.toContain('declined by');
    expect(text).toContain('The 1 committed round(s)');
  });

  it('says that nothing was committed when the first round never completed', () => {
    const text = explainFailedRun('round 1 aborted 3 times', [attempt(1, 1, 'aborted', { reason: 'deadline' })]);
    expect(text).toContain('No round was committed');
    expect(text).not.toContain('ROUNDS_TOTAL');
  });
});
