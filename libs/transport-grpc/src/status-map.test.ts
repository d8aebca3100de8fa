import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { FederationError } from '@fedlora/federation';
import { ChunkStreamError } from '@fedlora/tensor';
import { MAX_STATUS_DETAILS, clipDetails, fromServiceError, toServiceError } from './status-map.js';
import { UploadIntegrityError } from './upload-session.js';

describe('toServiceError', () => {
  it('keeps a short message and maps the code', () => {
    expect(toServiceError(new FederationError('permission-denied', 'not enrolled'))).toEqual({ code: grpc.status.PERMISSION_DENIED, details: 'not enrolled' });
  });

  it('clips a message that echoes a huge client value, so the status fits in an HTTP/2 trailer', () => {
    const se = toServiceError(new FederationError('permission-denied', `not "${'\u00ff'.repeat(30_000)}"`));
    expect(se.details!.length).toBeLessThanOrEqual(MAX_STATUS_DETAILS);
    expect(se.details).toMatch(/more characters\)$/);
    expect(() => encodeURI(se.details!)).not.toThrow();
  });

  it('never cuts a surrogate pair in half (encodeURI would throw in grpc-js)', () => {
    for (let shift = 0; shift < 2; shift++) {
      const clipped = clipDetails('a'.repeat(shift) + '\u{1F600}'.repeat(MAX_STATUS_DETAILS));
      expect(() => encodeURI(clipped)).not.toThrow();
    }
  });

  it('hides unexpected errors behind INTERNAL', () => {
    expect(toServiceError(new Error('secret path /etc'))).toEqual({ code: grpc.status.INTERNAL, details: 'internal error (see the coordinator log)' });
  });

  it('does not blame the client for a RangeError or TypeError from our own code: INTERNAL, message hidden', () => {
    // e.g. "Invalid typed array length" from a coordinator bug; before, any RangeError went out as INVALID_ARGUMENT with its text.
    expect(toServiceError(new RangeError('Invalid typed array length: -4'))).toEqual({ code: grpc.status.INTERNAL, details: 'internal error (see the coordinator log)' });
    expect(toServiceError(new TypeError("Cannot read properties of undefined (reading 'data')"))).toEqual({ code: grpc.status.INTERNAL, details: 'internal error (see the coordinator log)' });
  });

  it('maps the typed validation errors of a bad request to INVALID_ARGUMENT with their message', () => {
    expect(toServiceError(new FederationError('invalid-argument', 'update layout does not match the plan'))).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'update layout does not match the plan' });
    expect(toServiceError(new ChunkStreamError('chunk offset 8, expected 4'))).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'chunk offset 8, expected 4' });
  });

  it('maps bytes that fail their SHA-256 check to DATA_LOSS and back', () => {
    const se = toServiceError(new UploadIntegrityError('tensor "w": chunk at offset 64 fails its SHA-256 check', false));
    expect(se).toEqual({ code: grpc.status.DATA_LOSS, details: 'tensor "w": chunk at offset 64 fails its SHA-256 check' });
    expect(fromServiceError(se)).toBeInstanceOf(UploadIntegrityError);
  });
});

describe('fromServiceError', () => {
  it('drops the empty "Resolution note:" grpc-js appends to connection failures', () => {
    const e = Object.assign(new Error('x'), { code: grpc.status.UNAVAILABLE, details: 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ' });
    const f = fromServiceError(e);
    expect(f).toBeInstanceOf(FederationError);
    expect(f.message).toBe('No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1.');
  });
});
