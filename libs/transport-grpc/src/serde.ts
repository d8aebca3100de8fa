import type { NamedTensors, TensorChunkData } from '@fedlora/tensor';
import type { CheckInAnswer, ClientReport, CohortSampling, FederationErrorCode, RoundPlan, SecAggReply, Task, TensorLayout, UpdateHeader } from '@fedlora/federation';
import type { Stage } from '@fedlora/secagg';
import { STAGES } from '@fedlora/secagg';
import { planPartsFromJson, planPartsToJson } from './plan-json.js';
import { FederationError } from '@fedlora/federation';
import type { PbCheckInResult, PbCohortSampling, PbGetTaskResponse, PbRoundPlan, PbSecAggRequest, PbSecAggResponse, PbTensorChunk, PbTensorSpec, PbUpdateHeader, PbUploadStatusResponse } from './wire-types.js';

/** Every toProto/fromProto pair of the wire contract lives here (STYLE.md 2). */

/** Largest number of tensors or dimensions we accept in one message (hostile-input guard). */
const MAX_TENSORS = 4096;
const MAX_RANK = 8;

function bad(message: string): FederationError {
  return new FederationError('invalid-argument', message);
}

function parseJsonObject(text: string, field: string): Record<string, unknown> {
  if (!text) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad(`${field} is not valid JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${field} must be a JSON object`);
  return v as Record<string, unknown>;
}

export function layoutToProto(t: TensorLayout[]): PbTensorSpec[] {
  return t.map((x) => ({ name: x.name, shape: [...x.shape], dtype: 'float32' }));
}

export function layoutFromProto(specs: PbTensorSpec[] | undefined, field = 'tensors'): TensorLayout[] {
  const list = specs ?? [];
  if (list.length > MAX_TENSORS) throw bad(`${field}: at most ${MAX_TENSORS} tensors, received ${list.length}`);
  const seen = new Set<string>();
  return list.map((s, i) => {
    if (!s.name || s.name.length > 512) throw bad(`${field}[${i}].name must be 1-512 characters`);
    if (seen.has(s.name)) throw bad(`${field}: tensor "${s.name}" listed twice`);
    seen.add(s.name);
    if (s.dtype && s.dtype !== 'float32') throw bad(`${field}[${i}] "${s.name}": dtype must be float32, received ${s.dtype}`);
    if (s.shape.length > MAX_RANK) throw bad(`${field}[${i}] "${s.name}": rank ${s.shape.length} exceeds ${MAX_RANK}`);
    return { name: s.name, shape: s.shape.map(Number) };
  });
}

export function planToProto(p: RoundPlan): PbRoundPlan {
  return {
    round: p.round,
    adapterSha256: p.adapterSha256,
    tensors: layoutToProto(p.tensors),
    localSteps: p.localSteps,
    learningRate: p.learningRate,
    batchSize: p.batchSize,
    deadlineUnixMs: p.deadlineUnixMs,
    nonce: p.nonce,
    extraJson: JSON.stringify(planPartsToJson(p)),
    ...(p.sampling ? { sampling: samplingToProto(p.sampling) } : {}),
  };
}

export function samplingToProto(s: CohortSampling): PbCohortSampling {
  return { mode: s.mode, population: s.population, expectedCohort: s.expectedCohort, rate: s.rate, drawn: s.drawn };
}

/**
 * Checks the coordinator's account of its cohort draw: a known mode, counts that are integers
 * with drawn <= population (poisson may draw any number; uniform and all draw what they asked
 * for), expectedCohort in [0, population] and rate = expectedCohort / population.
 */
export function samplingFromProto(s: PbCohortSampling): CohortSampling {
  const mode = s.mode;
  if (mode !== 'all' && mode !== 'uniform' && mode !== 'poisson') throw bad(`plan.sampling.mode must be all, uniform or poisson, received ${JSON.stringify(String(mode).slice(0, 40))}`);
  const count = (v: number, field: string) => {
    if (!Number.isSafeInteger(v) || v < 0) throw bad(`plan.sampling.${field} must be an integer >= 0, received ${v}`);
    return v;
  };
  const population = count(s.population, 'population');
  const drawn = count(s.drawn, 'drawn');
  if (drawn > population) throw bad(`plan.sampling.drawn ${drawn} exceeds its population ${population}`);
  if (!(Number.isFinite(s.expectedCohort) && s.expectedCohort >= 0 && s.expectedCohort <= population)) throw bad(`plan.sampling.expectedCohort must be in [0, ${population}], received ${s.expectedCohort}`);
  if (!(s.rate >= 0 && s.rate <= 1)) throw bad(`plan.sampling.rate must be in [0, 1], received ${s.rate}`);
  if (population > 0 && Math.abs(s.rate - s.expectedCohort / population) > 1e-9) throw bad(`plan.sampling.rate ${s.rate} is not expectedCohort / population = ${s.expectedCohort} / ${population}`);
  if (mode !== 'poisson' && drawn !== s.expectedCohort) throw bad(`plan.sampling: a ${mode} draw asked for ${s.expectedCohort} but drew ${drawn}`);
  return { mode, population, expectedCohort: s.expectedCohort, rate: s.rate, drawn };
}

export function planFromProto(p: PbRoundPlan): RoundPlan {
  const { attempt, ...parts } = planPartsFromJson(parseJsonObject(p.extraJson, 'plan.extraJson'));
  return {
    round: p.round,
    attempt,
    adapterSha256: p.adapterSha256,
    tensors: layoutFromProto(p.tensors, 'plan.tensors'),
    localSteps: p.localSteps,
    learningRate: p.learningRate,
    batchSize: p.batchSize,
    deadlineUnixMs: p.deadlineUnixMs,
    nonce: p.nonce,
    ...parts,
    ...(p.sampling ? { sampling: samplingFromProto(p.sampling) } : {}),
  };
}

export function taskToProto(t: Task): PbGetTaskResponse {
  switch (t.kind) {
    case 'wait':
      return { kind: 'WAIT', plan: null, retryAfterMs: t.retryAfterMs };
    case 'train':
      return { kind: 'TRAIN', plan: planToProto(t.plan), retryAfterMs: 0 };
    case 'finished':
      return { kind: 'FINISHED', plan: null, retryAfterMs: 0, failure: t.failed ?? '' };
  }
}

export function taskFromProto(r: PbGetTaskResponse): Task {
  switch (r.kind) {
    case 'WAIT':
      return { kind: 'wait', retryAfterMs: r.retryAfterMs };
    case 'TRAIN':
      if (!r.plan) throw bad('TRAIN task without a plan');
      return { kind: 'train', plan: planFromProto(r.plan) };
    case 'FINISHED':
      return r.failure ? { kind: 'finished', failed: r.failure.slice(0, 1024) } : { kind: 'finished' };
    default:
      throw bad(`unknown task kind ${String(r.kind)}`);
  }
}

/** One session's answer in a CheckIn response. */
export function checkInAnswerToProto(a: CheckInAnswer): PbCheckInResult {
  const none = { task: null, refused: '', reason: '', drawnRound: 0, drawnNonce: '' };
  if ('task' in a) return { ...none, task: taskToProto(a.task) };
  if ('drawn' in a) return { ...none, drawnRound: a.drawn.round, drawnNonce: a.drawn.nonce };
  return { ...none, refused: a.refused, reason: a.reason };
}

const ERROR_CODES: ReadonlySet<string> = new Set<FederationErrorCode>(['unauthenticated', 'permission-denied', 'invalid-argument', 'failed-precondition', 'already-exists', 'resource-exhausted', 'unavailable']);

/** The inverse, checked: a refusal names a known error code, a draw names its attempt, anything else carries a wait or finished task. */
export function checkInAnswerFromProto(r: PbCheckInResult): CheckInAnswer {
  if (r.refused) {
    if (!ERROR_CODES.has(r.refused)) throw bad(`unknown check-in refusal ${JSON.stringify(r.refused.slice(0, 40))}`);
    return { refused: r.refused as FederationErrorCode, reason: r.reason.slice(0, 1024) };
  }
  if (r.drawnNonce) {
    if (!/^[0-9a-f]{1,64}$/.test(r.drawnNonce) || !Number.isInteger(r.drawnRound) || r.drawnRound < 1) throw bad(`check-in draw with round ${r.drawnRound} and nonce ${JSON.stringify(r.drawnNonce.slice(0, 70))}`);
    return { drawn: { round: r.drawnRound, nonce: r.drawnNonce } };
  }
  if (!r.task) throw bad('check-in result with neither a task, a draw nor a refusal');
  const task = taskFromProto(r.task);
  if (task.kind === 'train') throw bad('check-in result with a TRAIN task (a drawn session asks GetTask for its plan)');
  return { task };
}

export function headerToProto(h: UpdateHeader, sessionToken: string, uploadId = ''): PbUpdateHeader {
  return {
    uploadId,
    clientId: h.clientId,
    sessionToken,
    round: h.round,
    nonce: h.nonce,
    numExamples: h.numExamples,
    trainLoss: h.trainLoss,
    tensors: layoutToProto(h.tensors),
    metricsJson: JSON.stringify(h.metrics),
  };
}

/** A resumable upload id: 16-64 characters of [A-Za-z0-9_-] (the client draws 128 random bits). */
const UPLOAD_ID = /^[A-Za-z0-9_-]{16,64}$/;

/** Checks an upload id from the wire; '' (a one-shot upload) passes through. */
export function uploadIdFromProto(id: string | undefined, field = 'header.uploadId'): string {
  const v = id ?? '';
  if (v && !UPLOAD_ID.test(v)) throw bad(`${field} must be 16-64 characters of [A-Za-z0-9_-], received ${JSON.stringify(v.slice(0, 80))}`);
  return v;
}

export function headerFromProto(h: PbUpdateHeader): { header: UpdateHeader; sessionToken: string; uploadId: string } {
  const metricsRaw = parseJsonObject(h.metricsJson, 'header.metricsJson');
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(metricsRaw)) if (typeof v === 'number' && Number.isFinite(v)) metrics[k] = v;
  return {
    sessionToken: h.sessionToken,
    uploadId: uploadIdFromProto(h.uploadId),
    header: {
      clientId: h.clientId,
      round: h.round,
      nonce: h.nonce,
      numExamples: h.numExamples,
      trainLoss: h.trainLoss,
      tensors: layoutFromProto(h.tensors, 'header.tensors'),
      metrics,
    },
  };
}

/**
 * Checks a download's resume offsets against the adapter: each names a tensor once, matches its
 * size, and lies on a float32 boundary within it. Returns tensor name -> offset.
 */
export function resumeOffsets(adapter: NamedTensors, resume: ReadonlyArray<{ name: string; receivedBytes: number; totalBytes: number }> | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of resume ?? []) {
    const name = JSON.stringify(String(r.name).slice(0, 80));
    const t = adapter.get(r.name);
    if (!t) throw bad(`resume names tensor ${name}, which the adapter does not have`);
    if (out.has(r.name)) throw bad(`resume names tensor ${name} twice`);
    const total = t.data.byteLength;
    if (r.totalBytes !== total) throw bad(`resume says tensor ${name} has ${r.totalBytes} bytes, it has ${total}`);
    if (!Number.isInteger(r.receivedBytes) || r.receivedBytes < 0 || r.receivedBytes > total || r.receivedBytes % 4 !== 0) {
      throw bad(`resume offset ${r.receivedBytes} of tensor ${name} must be a multiple of 4 within its ${total} bytes`);
    }
    out.set(r.name, r.receivedBytes);
  }
  return out;
}

/** A chunk with the optional integrity fields of resumable uploads (raw 32-byte SHA-256 digests). */
export interface HashedChunk extends TensorChunkData {
  /** SHA-256 of `data`. */
  sha256?: Uint8Array;
  /** SHA-256 of the whole tensor, on its last chunk. */
  tensorSha256?: Uint8Array;
}

export function chunkToProto(round: number, c: HashedChunk): PbTensorChunk {
  const out: PbTensorChunk = { round, tensorName: c.tensorName, offset: c.offset, totalBytes: c.totalBytes, data: c.data };
  if (c.sha256) out.sha256 = c.sha256;
  if (c.tensorSha256) out.tensorSha256 = c.tensorSha256;
  return out;
}

function digestFromProto(v: Buffer | Uint8Array | undefined, field: string, tensorName: string): Uint8Array | undefined {
  if (!v || v.byteLength === 0) return undefined;
  if (v.byteLength !== 32) throw bad(`chunk of tensor ${JSON.stringify(tensorName.slice(0, 80))}: ${field} must be a 32-byte SHA-256 digest, received ${v.byteLength} bytes`);
  return new Uint8Array(v);
}

export function chunkFromProto(c: PbTensorChunk): HashedChunk & { round: number } {
  const data = c.data instanceof Uint8Array ? c.data : new Uint8Array(c.data as ArrayBuffer);
  // Copy into a 4-byte-aligned buffer of its own: the wire buffer may be shared and unaligned.
  const out: HashedChunk & { round: number } = { round: c.round, tensorName: c.tensorName, offset: c.offset, totalBytes: c.totalBytes, data: new Uint8Array(data) };
  const sha256 = digestFromProto(c.sha256, 'sha256', c.tensorName);
  const tensorSha256 = digestFromProto(c.tensorSha256, 'tensorSha256', c.tensorName);
  if (sha256) out.sha256 = sha256;
  if (tensorSha256) out.tensorSha256 = tensorSha256;
  return out;
}

/** Where a resumable upload stands, as the coordinator reports it. */
export type UploadProgress =
  | { state: 'not-found' }
  | { state: 'completed' }
  | { state: 'in-progress'; tensors: Array<{ name: string; receivedBytes: number; totalBytes: number }> };

export function uploadStatusToProto(p: UploadProgress): PbUploadStatusResponse {
  if (p.state !== 'in-progress') return { state: p.state === 'completed' ? 'COMPLETED' : 'NOT_FOUND', tensors: [], receivedBytes: 0, totalBytes: 0 };
  return {
    state: 'IN_PROGRESS',
    tensors: p.tensors.map((t) => ({ ...t })),
    receivedBytes: p.tensors.reduce((a, t) => a + t.receivedBytes, 0),
    totalBytes: p.tensors.reduce((a, t) => a + t.totalBytes, 0),
  };
}

export function uploadStatusFromProto(r: PbUploadStatusResponse): UploadProgress {
  switch (r.state) {
    case 'NOT_FOUND':
      return { state: 'not-found' };
    case 'COMPLETED':
      return { state: 'completed' };
    case 'IN_PROGRESS':
      return {
        state: 'in-progress',
        tensors: (r.tensors ?? []).map((t) => {
          if (!Number.isSafeInteger(t.receivedBytes) || t.receivedBytes < 0 || t.receivedBytes > t.totalBytes) {
            throw bad(`upload status: tensor ${JSON.stringify(t.name)} reports ${t.receivedBytes} of ${t.totalBytes} bytes received`);
          }
          return { name: t.name, receivedBytes: t.receivedBytes, totalBytes: t.totalBytes };
        }),
      };
    default:
      throw bad(`unknown upload state ${String(r.state)}`);
  }
}

/** Largest secure-aggregation payload accepted in one message (a masked chunk is 256 KiB by default). */
export const MAX_SECAGG_PAYLOAD = 4 * 1024 * 1024;

export function secAggRequestToProto(
  auth: { clientId: string; sessionToken: string },
  round: number,
  nonce: string,
  stage: Stage | '',
  payload: Uint8Array,
  report?: ClientReport,
  waitMs = 0,
): PbSecAggRequest {
  return { ...auth, round, nonce, stage, payload, reportJson: report ? JSON.stringify(report) : '', waitMs };
}

/** A stage name from the wire: one of secagg's stages, or '' (a poll). */
export function stageFromProto(stage: string, field = 'secure-aggregation stage'): Stage | '' {
  if (stage === '' || (STAGES as readonly string[]).includes(stage)) return stage as Stage | '';
  throw bad(`${field} must be one of ${STAGES.join(', ')} (or empty to poll), received ${JSON.stringify(stage.slice(0, 32))}`);
}

export function secAggRequestFromProto(r: PbSecAggRequest): { payload: Uint8Array; report?: ClientReport } {
  const payload = r.payload instanceof Uint8Array ? new Uint8Array(r.payload) : new Uint8Array(0);
  if (payload.byteLength > MAX_SECAGG_PAYLOAD) throw bad(`secure-aggregation payload of ${payload.byteLength} bytes exceeds ${MAX_SECAGG_PAYLOAD}`);
  if (!r.reportJson) return { payload };
  const o = parseJsonObject(r.reportJson, 'reportJson');
  if (typeof o.numExamples !== 'number' || typeof o.trainLoss !== 'number') throw bad('reportJson must hold numeric numExamples and trainLoss');
  return { payload, report: { numExamples: o.numExamples, trainLoss: o.trainLoss } };
}

const REPLY_KINDS: ReadonlyArray<SecAggReply['kind']> = ['message', 'wait', 'excluded', 'finished', 'aborted'];

export function secAggResponseFromProto(r: PbSecAggResponse): SecAggReply {
  if (!(REPLY_KINDS as readonly string[]).includes(r.kind)) throw bad(`unknown secure-aggregation reply kind ${JSON.stringify(String(r.kind).slice(0, 32))}`);
  return { kind: r.kind as SecAggReply['kind'], stage: stageFromProto(r.stage ?? '', 'secure-aggregation reply stage'), payload: r.payload instanceof Uint8Array ? new Uint8Array(r.payload) : new Uint8Array(0) };
}
