/**
 * Federated evaluation under secure aggregation. In a plain round each institution sends the
 * aggregate metrics of the global adapter on its held-out set in its update header
 * (round-evaluation.ts). Under SecAgg+ the coordinator is not trusted to see one institution's
 * numbers (SECURITY.md), and a per-institution accuracy or loss, although coarse, says something
 * about that institution's data. So the metrics ride as extra coordinates of the masked input,
 * after the encoded update (and the adaptive-clipping count word): the pairwise and self masks
 * cover them like any other word (Bonawitz et al. 2017, Sec. 4), and the coordinator unmasks only
 * their sums over the survivors, from which it computes exactly what combineEvaluations computes
 * from plain reports: accuracy weighted by question count, loss by token count, and the mean
 * general-text loss over the institutions that report one.
 *
 * Each word is an unsigned integer summed modulo 2^32 (the masks' ring). Counts are exact
 * integers; losses are fixed point with the plan's `evalScale` (units of 1/evalScale nat). Every
 * institution keeps each of its words at most floor((2^32 - 1) / n) for a cohort of n, so the
 * sum of any survivors cannot wrap; an institution whose metrics do not fit sends zeros in every
 * evaluation word (it then counts as not evaluating) rather than a wrong sum.
 */
import type { RoundEvaluation } from './round-evaluation.js';

/** The evaluation words, in order, after the update in a secure round's masked input. */
export const SECURE_EVAL_WORDS = [
  /** 1 when the institution evaluated (evalCount >= 1), else 0. */
  'evalClients',
  /** Held-out examples (questions, or instruction examples). */
  'evalCount',
  /** Multiple-choice questions scored (evalCount when acc is reported, else 0). */
  'mcqCount',
  /** Questions answered right by acc (evalAcc x evalCount, an integer). */
  'mcqCorrect',
  /** Questions answered right by acc_norm. */
  'mcqCorrectNorm',
  /** Completion tokens of the held-out instruction examples. */
  'lossTokens',
  /** evalLoss x evalTokens, in units of 1/evalScale nat. */
  'lossSum',
  /** 1 when the institution reports a general-text loss, else 0. */
  'generalClients',
  /** generalLoss, in units of 1/evalScale nat. */
  'generalLossSum',
] as const;

/** Number of evaluation words a secure plan with `evalScale` appends. */
export const SECURE_EVAL_WORD_COUNT = SECURE_EVAL_WORDS.length;

/** Largest total loss (nats) one institution's lossSum word is sized for at the chosen scale. */
const LOSS_SUM_BUDGET_NATS = 1e6;

/** The largest value one of n institutions may put in an evaluation word: n of them cannot wrap 2^32. */
export function secureEvalCap(cohort: number): number {
  if (!Number.isInteger(cohort) || cohort < 1) throw new RangeError(`cohort must be a positive integer, received ${cohort}`);
  return Math.floor((2 ** 32 - 1) / cohort);
}

/**
 * The fixed-point scale of the loss words for a cohort of n: as fine as leaves room for a loss
 * sum of LOSS_SUM_BUDGET_NATS per institution (1/1073 nat for 4 institutions, 1/4 for 1,000),
 * never coarser than 1 nat.
 */
export function secureEvalScale(cohort: number): number {
  return Math.max(1, Math.floor(secureEvalCap(cohort) / LOSS_SUM_BUDGET_NATS));
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * One institution's evaluation words from its metrics (federated-eval.ts names): zeros when it
 * did not evaluate, or when a value is out of range or does not fit the cap.
 */
export function encodeEvalWords(metrics: Readonly<Record<string, number>> | undefined, cohort: number, evalScale: number): Uint32Array {
  if (!Number.isInteger(evalScale) || evalScale < 1) throw new RangeError(`evalScale must be a positive integer, received ${evalScale}`);
  const out = new Uint32Array(SECURE_EVAL_WORD_COUNT);
  const m = metrics ?? {};
  if (!finite(m.evalCount) || !Number.isInteger(m.evalCount) || m.evalCount < 1) return out;
  const count = m.evalCount;
  const hasAcc = finite(m.evalAcc) && m.evalAcc >= 0 && m.evalAcc <= 1;
  const accNorm = finite(m.evalAccNorm) && m.evalAccNorm >= 0 && m.evalAccNorm <= 1 ? m.evalAccNorm : m.evalAcc;
  const hasLoss = finite(m.evalLoss) && m.evalLoss >= 0 && finite(m.evalTokens) && Number.isInteger(m.evalTokens) && m.evalTokens > 0;
  const hasGeneral = finite(m.generalLoss) && m.generalLoss >= 0;
  const values = [
    1,
    count,
    hasAcc ? count : 0,
    hasAcc ? Math.round(m.evalAcc! * count) : 0,
    hasAcc ? Math.round(accNorm! * count) : 0,
    hasLoss ? m.evalTokens! : 0,
    hasLoss ? Math.round(m.evalLoss! * m.evalTokens! * evalScale) : 0,
    hasGeneral ? 1 : 0,
    hasGeneral ? Math.round(m.generalLoss! * evalScale) : 0,
  ];
  const cap = secureEvalCap(cohort);
  if (values.some((v) => v > cap)) return out;
  out.set(values);
  return out;
}

/** The federation's evaluation from the unmasked sums of the survivors' evaluation words; undefined when none evaluated. */
export function decodeEvalSums(sums: Uint32Array, evalScale: number): RoundEvaluation | undefined {
  if (sums.length !== SECURE_EVAL_WORD_COUNT) throw new RangeError(`expected ${SECURE_EVAL_WORD_COUNT} evaluation sums, received ${sums.length}`);
  const s = Object.fromEntries(SECURE_EVAL_WORDS.map((name, i) => [name, sums[i]!])) as Record<(typeof SECURE_EVAL_WORDS)[number], number>;
  if (s.evalClients === 0) return undefined;
  return {
    clients: s.evalClients,
    count: s.evalCount,
    ...(s.mcqCount ? { acc: s.mcqCorrect / s.mcqCount, accNorm: s.mcqCorrectNorm / s.mcqCount } : {}),
    ...(s.lossTokens ? { loss: s.lossSum / evalScale / s.lossTokens } : {}),
    ...(s.generalClients ? { generalLoss: s.generalLossSum / evalScale / s.generalClients } : {}),
    secure: true,
  };
}
