import { describe, expect, it } from 'vitest';
import type { CheckInAnswer, RoundPlan, Task, UpdateHeader } from '@fedlora/federation';
import type { UploadProgress } from './serde.js';
import {
  checkInAnswerFromProto,
  checkInAnswerToProto,
  chunkFromProto,
  chunkToProto,
  headerFromProto,
  headerToProto,
  planFromProto,
  planToProto,
  secAggRequestFromProto,
  secAggRequestToProto,
  secAggResponseFromProto,
  stageFromProto,
  taskFromProto,
  taskToProto,
  uploadStatusFromProto,
  uploadStatusToProto,
} from './serde.js';

const plan: RoundPlan = {
  round: 3,
  attempt: 2,
  adapterSha256: 'ab'.repeat(32),
  tensors: [
    { name: 'a', shape: [2, 3] },
    { name: 'b', shape: [4] },
  ],
  localSteps: 10,
  learningRate: 0.001,
  batchSize: 8,
  deadlineUnixMs: 1_800_000_000_123,
  nonce: 'n0',
  training: { seqLen: 64, proximalMu: 0.01, lora: { r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj'] } },
  privacy: { mode: 'central', clipNorm: 1.5, noiseMultiplier: 1, delta: 1e-5, dimension: 40, secureAggregation: false, samplingRate: 1 },
};

describe('serde round-trips', () => {
  it('plan', () => {
    expect(planFromProto(planToProto(plan))).toEqual(plan);
  });

  it('a plan with a secure-aggregation part, in the JSON keys older peers read', () => {
    const encoding = { dim: 40, paddedDim: 64, bits: 32, scale: 1000, clip: 1.5, roundedNormBound2: 3e6, beta: 0.1, noiseStddevInt: 0, overflowProb: 1e-9, quantizationStd: 1e-4, n: 3 };
    const secure = { ...plan, secagg: { ids: { a: 1, b: 2 }, roster: { a: 'AAAA', b: 'BBBB' }, k: 1, t: 2, encoding, rotationSeed: 'ab01', countScale: 4, evalScale: 1073 } };
    expect(planFromProto(planToProto(secure))).toEqual(secure);
    // The federation ledger head institutions anchor (issue 16, finding 9).
    const anchored = { ...plan, ledgerHead: { entries: 3, hash: 'ab'.repeat(32) } };
    expect(planFromProto(planToProto(anchored))).toEqual(anchored);
    expect(Object.keys(JSON.parse(planToProto(secure).extraJson)).sort()).toEqual(['attempt', 'lora', 'privacy', 'proximalMu', 'secagg', 'seqLen']);
  });

  it('a secure-aggregation request and reply with typed stages', () => {
    const req = secAggRequestToProto({ clientId: 'c', sessionToken: 't' }, 1, 'n', 'collect', new Uint8Array([1]), { numExamples: 3, trainLoss: 2 });
    expect(stageFromProto(req.stage)).toBe('collect');
    expect(secAggResponseFromProto({ kind: 'message', stage: 'share', payload: new Uint8Array([2]) })).toEqual({ kind: 'message', stage: 'share', payload: new Uint8Array([2]) });
  });

  it('every task kind', () => {
    const tasks: Task[] = [{ kind: 'wait', retryAfterMs: 250 }, { kind: 'train', plan }, { kind: 'finished' }, { kind: 'finished', failed: 'round 2 aborted 3 times' }];
    for (const t of tasks) expect(taskFromProto(taskToProto(t))).toEqual(t);
  });

  it('update header with its session token', () => {
    const h: UpdateHeader = { clientId: 'c1', round: 3, nonce: 'n0', numExamples: 17, trainLoss: 2.5, tensors: plan.tensors, metrics: { evalLoss: 2.1 } };
    expect(headerFromProto(headerToProto(h, 'tok'))).toEqual({ header: h, sessionToken: 'tok', uploadId: '' });
    expect(headerFromProto(headerToProto(h, 'tok', 'AAAAAAAAAAAAAAAAAAAAAA')).uploadId).toBe('AAAAAAAAAAAAAAAAAAAAAA');
  });

  it('chunk with its SHA-256 digests', () => {
    const sha256 = new Uint8Array(32).fill(7);
    const tensorSha256 = new Uint8Array(32).fill(9);
    const back = chunkFromProto(chunkToProto(1, { tensorName: 'a', offset: 0, totalBytes: 4, data: new Uint8Array(4), sha256, tensorSha256 }));
    expect(back).toMatchObject({ sha256, tensorSha256 });
  });

  it('every upload status', () => {
    const all: UploadProgress[] = [{ state: 'not-found' }, { state: 'completed' }, { state: 'in-progress', tensors: [{ name: 'a', receivedBytes: 8, totalBytes: 24 }, { name: 'b', receivedBytes: 0, totalBytes: 16 }] }];
    for (const p of all) expect(uploadStatusFromProto(uploadStatusToProto(p))).toEqual(p);
    expect(uploadStatusToProto(all[2]!)).toMatchObject({ receivedBytes: 8, totalBytes: 40 });
  });

  it('chunk, copying into an aligned buffer', () => {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).subarray(1, 5);
    const back = chunkFromProto(chunkToProto(3, { tensorName: 'a', offset: 4, totalBytes: 24, data }));
    expect(back).toEqual({ round: 3, tensorName: 'a', offset: 4, totalBytes: 24, data: new Uint8Array([2, 3, 4, 5]) });
    expect(back.data.byteOffset).toBe(0);
  });
});

describe('serde rejects malformed input', () => {
  it('a plan whose typed parts have the wrong types', () => {
    const withJson = (o: object) => ({ ...planToProto(plan), extraJson: JSON.stringify(o) });
    expect(() => planFromProto(withJson({ privacy: { ...plan.privacy, clipNorm: '1' } }))).toThrow(/plan.privacy.clipNorm must be/);
    expect(() => planFromProto(withJson({ seqLen: -3 }))).toThrow(/plan.seqLen must be/);
    expect(() => planFromProto(withJson({ ledgerHead: { entries: 2, hash: 'zz' } }))).toThrow(/plan.ledgerHead.hash must be 64 hex digits/);
    expect(() => planFromProto(withJson({ ledgerHead: { entries: -1, hash: '0'.repeat(64) } }))).toThrow(/plan.ledgerHead.entries must be/);
    expect(() => planFromProto(withJson({ secagg: { ids: { a: 0 }, roster: {}, encoding: {} } }))).toThrow(/plan.secagg.ids\["a"\] must be a positive integer/);
  });

  it('a secure-aggregation stage that does not exist', () => {
    expect(() => stageFromProto('bogus')).toThrow(/stage must be one of advertise/);
  });

  it('a plan whose extra JSON is not an object', () => {
    expect(() => planFromProto({ ...planToProto(plan), extraJson: '[1]' })).toThrow(/plan.extraJson must be a JSON object/);
  });

  it('a tensor listed twice', () => {
    const p = planToProto(plan);
    p.tensors.push({ ...p.tensors[0]! });
    expect(() => planFromProto(p)).toThrow(/tensor "a" listed twice/);
  });

  it('a non-float32 dtype', () => {
    const h = headerToProto({ clientId: 'c', round: 1, nonce: 'n', numExamples: 1, trainLoss: 0, tensors: [{ name: 'x', shape: [1] }], metrics: {} }, 't');
    h.tensors[0]!.dtype = 'float64';
    expect(() => headerFromProto(h)).toThrow(/dtype must be float32, received float64/);
  });

  it('a digest that is not 32 bytes, naming the tensor', () => {
    expect(() => chunkFromProto({ round: 1, tensorName: 'w', offset: 0, totalBytes: 4, data: new Uint8Array(4), sha256: new Uint8Array(31) })).toThrow(/tensor "w": sha256 must be a 32-byte SHA-256 digest, received 31 bytes/);
  });

  it('a malformed upload id and an impossible upload status', () => {
    const h = headerToProto({ clientId: 'c', round: 1, nonce: 'n', numExamples: 1, trainLoss: 0, tensors: [], metrics: {} }, 't', 'short/id');
    expect(() => headerFromProto(h)).toThrow(/uploadId must be 16-64 characters/);
    expect(() => uploadStatusFromProto({ state: 'IN_PROGRESS', tensors: [{ name: 'a', receivedBytes: 9, totalBytes: 8 }], receivedBytes: 9, totalBytes: 8 })).toThrow(/reports 9 of 8 bytes/);
  });

  it('a TRAIN task without a plan', () => {
    expect(() => taskFromProto({ kind: 'TRAIN', plan: null, retryAfterMs: 0 })).toThrow(/without a plan/);
  });
});

describe('secure-aggregation exchange serde', () => {
  it('round-trips a request with its report', () => {
    const pb = secAggRequestToProto({ clientId: 'c', sessionToken: 't' }, 2, 'n', 'collect', new Uint8Array([1, 2, 3]), { numExamples: 5, trainLoss: 1.5 });
    expect(secAggRequestFromProto(pb)).toEqual({ payload: new Uint8Array([1, 2, 3]), report: { numExamples: 5, trainLoss: 1.5 } });
  });

  it('refuses an oversized payload and a malformed report', () => {
    const big = secAggRequestToProto({ clientId: 'c', sessionToken: 't' }, 1, 'n', 'collect', new Uint8Array(4 * 1024 * 1024 + 1));
    expect(() => secAggRequestFromProto(big)).toThrow(/exceeds/);
    const pb = { ...secAggRequestToProto({ clientId: 'c', sessionToken: 't' }, 1, 'n', 'collect', new Uint8Array(1)), reportJson: '{"numExamples":"x"}' };
    expect(() => secAggRequestFromProto(pb)).toThrow(/numeric numExamples/);
  });
});

describe('check-in answers', () => {
  it('round-trip a wait or finished task, a draw or a refusal, and refuse an answer with none, an unknown code or a plan', () => {
    const answers: CheckInAnswer[] = [{ task: { kind: 'wait', retryAfterMs: 500 } }, { task: { kind: 'finished' } }, { drawn: { round: 3, nonce: 'ab'.repeat(16) } }, { refused: 'unauthenticated', reason: 'register again' }];
    for (const a of answers) expect(checkInAnswerFromProto(checkInAnswerToProto(a))).toEqual(a);
    const none = { task: null, refused: '', reason: '', drawnRound: 0, drawnNonce: '' };
    expect(() => checkInAnswerFromProto(none)).toThrow(/neither a task, a draw nor a refusal/);
    expect(() => checkInAnswerFromProto({ ...none, refused: 'teapot' })).toThrow(/unknown check-in refusal/);
    expect(() => checkInAnswerFromProto({ ...none, drawnRound: 0, drawnNonce: 'ab' })).toThrow(/check-in draw/);
    expect(() => checkInAnswerFromProto({ ...none, task: taskToProto({ kind: 'train', plan }) })).toThrow(/TRAIN task/);
  });
});
