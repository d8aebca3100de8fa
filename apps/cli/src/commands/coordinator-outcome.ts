/**
 * What `fedlora coordinator` reports when its run ends: the summary (`--json`) and, when the run
 * failed, a message that says which round failed, why, and what the operator can do about it.
 * Pure functions of the round history, so the wording is tested without running a federation.
 */
import type { RoundSummary } from '@fedlora/federation';

/** `fedlora coordinator --json` output: one document whether the run finished or failed. */
export interface CoordinatorRunSummary {
  federationId: string;
  state: 'finished' | 'failed';
  rounds: readonly RoundSummary[];
  /** Only when finished: where the final PEFT adapter was written. */
  finalAdapterDir?: string;
  /** Only when failed: the same explanation as on stderr. */
  error?: string;
}

/**
 * Explains a failed run from the round history: the failed round's abort reasons and the
 * institutions that declined it, then the two ways out (more budget or fewer rounds).
 * `cause` is the round loop's own message, e.g. "round 4 aborted 3 times; ...".
 */
export function explainFailedRun(cause: string, history: readonly RoundSummary[]): string {
  const aborted = history.filter((r) => r.status === 'aborted');
  const failedRound = aborted.at(-1)?.round;
  const committed = new Set(history.filter((r) => r.status === 'completed').map((r) => r.round)).size;
  const lines = [cause.replace(/; see the round history for reasons$/, '')];
  if (failedRound !== undefined) {
    const attempts = aborted.filter((r) => r.round === failedRound);
    const reasons = [...new Set(attempts.map((r) => r.reason).filter((x): x is string => Boolean(x)))];
    const declined = [...new Set(attempts.flatMap((r) => r.declined))].sort();
    if (reasons.length > 0) lines.push(`round ${failedRound} aborted because: ${reasons.join('; ')}`);
    if (declined.length > 0) {
      lines.push(
        `declined by: ${declined.join(', ')}. An institution declines a round its privacy budget cannot pay for ` +
          '(its log says round.declined "refused: budget"): raise its budget (privacy.epsilon, dpSgd.epsilon in its config), ' +
          'or raise privacy.noiseMultiplier so each round costs less; plan with `fedlora privacy epsilon --help`.',
      );
    }
  }
  lines.push(
    committed === 0
      ? 'No round was committed; started again unchanged, the coordinator reruns round 1.'
      : `The ${committed} committed round(s) are kept in dataDir. To end the federation with them, start the coordinator again with ` +
          `rounds.total: ${committed} (e.g. FEDLORA_COORDINATOR_ROUNDS_TOTAL=${committed}); it then writes the final adapter. ` +
          'Started again unchanged, it reruns the failed round.',
  );
  return lines.join('\n');
}
