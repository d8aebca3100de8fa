/**
 * The protobuf messages as proto-loader hands them to us (camelCase, longs as numbers, enums as
 * strings). Only serde.ts turns these into domain types.
 */
export interface PbTensorSpec {
  name: string;
  shape: number[];
  dtype: string;
}

export interface PbRoundPlan {
  round: number;
  adapterSha256: string;
  tensors: PbTensorSpec[];
  localSteps: number;
  learningRate: number;
  batchSize: number;
  deadlineUnixMs: number;
  nonce: string;
  extraJson: string;
  /** How the cohort was drawn (absent or null from coordinators that predate cohort sampling). */
  sampling?: PbCohortSampling | null;
}

export interface PbCohortSampling {
  mode: string;
  population: number;
  expectedCohort: number;
  rate: number;
  drawn: number;
}

export interface PbGetTaskResponse {
  kind: 'KIND_UNSPECIFIED' | 'WAIT' | 'TRAIN' | 'FINISHED';
  plan?: PbRoundPlan | null;
  retryAfterMs: number;
  /** With FINISHED: why the run failed ('' or absent when it completed). */
  failure?: string;
}

/** One session's answer in a CheckIn: a task, the attempt it is drawn into, or the FederationError code that refused it. */
export interface PbCheckInResult {
  task?: PbGetTaskResponse | null;
  refused: string;
  reason: string;
  drawnRound: number;
  drawnNonce: string;
}

export interface PbTensorChunk {
  round: number;
  tensorName: string;
  offset: number;
  totalBytes: number;
  data: Buffer | Uint8Array;
  /** SHA-256 of `data` (32 bytes), or empty. */
  sha256?: Buffer | Uint8Array;
  /** SHA-256 of the whole tensor (32 bytes) on its last chunk, or empty. */
  tensorSha256?: Buffer | Uint8Array;
}

export interface PbUpdateHeader {
  clientId: string;
  sessionToken: string;
  round: number;
  nonce: string;
  numExamples: number;
  trainLoss: number;
  tensors: PbTensorSpec[];
  metricsJson: string;
  /** Empty: a one-shot upload; otherwise a resumable one. */
  uploadId?: string;
}

export interface PbUploadMessage {
  header?: PbUpdateHeader | null;
  chunk?: PbTensorChunk | null;
  payload?: 'header' | 'chunk';
}

export interface PbDownloadRequest extends PbAuth {
  round: number;
  /** Per tensor, bytes already received: the download resumes there. */
  resume?: Array<{ name: string; receivedBytes: number; totalBytes: number }>;
}

export interface PbAuth {
  clientId: string;
  sessionToken: string;
}

export interface PbSecAggRequest {
  clientId: string;
  sessionToken: string;
  round: number;
  stage: string;
  payload: Buffer | Uint8Array;
  nonce: string;
  reportJson: string;
  waitMs?: number;
}

export interface PbSecAggResponse {
  kind: string;
  stage: string;
  payload: Buffer | Uint8Array;
}

export interface PbUploadStatusRequest {
  clientId: string;
  sessionToken: string;
  round: number;
  nonce: string;
  uploadId: string;
}

export interface PbTensorProgress {
  name: string;
  receivedBytes: number;
  totalBytes: number;
}

export interface PbUploadStatusResponse {
  state: 'STATE_UNSPECIFIED' | 'NOT_FOUND' | 'IN_PROGRESS' | 'COMPLETED';
  tensors: PbTensorProgress[];
  receivedBytes: number;
  totalBytes: number;
}
