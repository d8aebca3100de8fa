import type { RoundSummary } from '@fedlora/federation';
import { describe, expect, it } from 'vitest';
import { REDACTED_NAME, redactRounds, statusToProto } from './status-view.js';

function round(over: Partial<RoundSummary>): RoundSummary {
  return {
    round: 1, attempt: 1, status: 'completed', participants: 2, participantNames: ['inst-1', 'inst-10'], cohort: 4, dropped: ['inst-2'], declined: ['inst-3'],
    trainLoss: 0.5, numExamples: 10, adapterSha256: 'ab', startedAt: 1, endedAt: 2, metrics: {}, ...over,
  };
}

describe('redactRounds', () => {
  it('empties the name lists, keeps their sizes as counts, and marks the round redacted', () => {
    const [r] = redactRounds([round({})]);
    expect(r).toMatchObject({ participants: 2, participantNames: [], dropped: [], declined: [], droppedCount: 1, declinedCount: 1, cohort: 4, trainLoss: 0.5, redacted: true });
  });

  it('cuts every institution name out of abort reasons, a longer name whole before a name it contains', () => {
    const rounds = redactRounds([
      round({}),
      round({ round: 2, status: 'aborted', participantNames: [], dropped: ['inst-2'], declined: [], reason: 'secure aggregation aborted: client(s) inst-10, inst-2 stopped mid-upload; inst-1x is no name' }),
    ]);
    expect(rounds[1]!.reason).toBe(`secure aggregation aborted: client(s) ${REDACTED_NAME}, ${REDACTED_NAME} stopped mid-upload; inst-1x is no name`);
    expect(JSON.stringify(rounds)).not.toMatch(/inst-(1|2|3|10)\b(?!x)/);
  });

  it('statusToProto sends the full history to an authenticated caller only', () => {
    const s = { federationId: 'f', currentRound: 1, totalRounds: 2, state: 'training', connectedClients: 3, rounds: [round({})] };
    expect(JSON.parse(statusToProto(s, true).roundsJson)[0].participantNames).toEqual(['inst-1', 'inst-10']);
    expect(JSON.parse(statusToProto(s, false).roundsJson)[0].participantNames).toEqual([]);
    expect(statusToProto(s, false)).toMatchObject({ federationId: 'f', currentRound: 1, totalRounds: 2, state: 'training', connectedClients: 3 });
  });
});
