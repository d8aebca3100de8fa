/**
 * Per-round federated evaluation: each institution reports aggregate metrics of the global
 * adapter on its own held-out set with its update (update header metrics `evalCount`, `evalAcc`,
 * `evalAccNorm`, `evalLoss`, `evalTokens`, `generalLoss`; see apps/client federated-eval.ts);
 * the coordinator combines them into one line of the round summary, weighting each institution's
 * accuracy by its question count and its loss by its token count, so the result equals the metric
 * over the union of the held-out sets.
 */

/** The federation's evaluation of the global adapter a round started from. */
export interface RoundEvaluation {
  /** Institutions that reported an evaluation. */
  clients: number;
  /** Held-out examples over those institutions. */
  count: number;
  /** Multiple-choice accuracy over all their questions (lm-eval acc), when reported. */
  acc?: number;
  accNorm?: number;
  /** Mean loss per completion token over all their held-out tokens, when reported. */
  loss?: number;
  /** Mean of the institutions' general-text losses (forgetting), when reported. */
  generalLoss?: number;
  /** Summed inside secure aggregation (secure-evaluation.ts): the coordinator saw only these totals. */
  secure?: true;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Combines the reported metrics of one round; undefined when no institution evaluated. */
export function combineEvaluations(reports: Iterable<Record<string, number> | undefined>): RoundEvaluation | undefined {
  let clients = 0;
  let count = 0;
  let accN = 0;
  let acc = 0;
  let accNorm = 0;
  let tokens = 0;
  let lossSum = 0;
  const general: number[] = [];
  for (const m of reports) {
    if (!m || !finite(m.evalCount) || m.evalCount < 1) continue;
    clients++;
    count += m.evalCount;
    if (finite(m.evalAcc) && m.evalAcc >= 0 && m.evalAcc <= 1) {
      accN += m.evalCount;
      acc += m.evalAcc * m.evalCount;
      accNorm += (finite(m.evalAccNorm) ? m.evalAccNorm : m.evalAcc) * m.evalCount;
    }
    if (finite(m.evalLoss) && finite(m.evalTokens) && m.evalTokens > 0) {
      tokens += m.evalTokens;
      lossSum += m.evalLoss * m.evalTokens;
    }
    if (finite(m.generalLoss)) general.push(m.generalLoss);
  }
  if (clients === 0) return undefined;
  return {
    clients,
    count,
    ...(accN ? { acc: acc / accN, accNorm: accNorm / accN } : {}),
    ...(tokens ? { loss: lossSum / tokens } : {}),
    ...(general.length ? { generalLoss: general.reduce((a, b) => a + b, 0) / general.length } : {}),
  };
}
