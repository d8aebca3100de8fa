/**
 * Signed requests: every RPC a client makes is bound to the federation, the client's name, the
 * round, the method, a hash of the request body, a fresh nonce and a timestamp, and signed with
 * the client's Ed25519 key. The signed bytes are a JSON array with a domain-separation tag, so
 * no two different envelopes encode to the same bytes and a signature made for another protocol
 * cannot be replayed here.
 */
import type { RandomBytes } from '@fedlora/tensor';
import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import { ed25519Verify } from './ed25519-verify.js';

/** What a request signature covers. */
export interface RequestEnvelope {
  federationId: string;
  clientName: string;
  /** The round the request concerns (0 when it concerns none, e.g. Register). */
  round: number;
  /** Full gRPC method path, e.g. "/fedlora.v1.Federation/GetTask". */
  method: string;
  /** Hex SHA-256 of the serialized request message (`hashBody`). */
  bodyHash: string;
  /** At least 16 random bytes, hex (`newNonce`). */
  nonce: string;
  /** Client clock, ms since the epoch. */
  timestamp: number;
}

const TAG = 'fedlora/request/v1';
const HEX64 = /^[0-9a-f]{64}$/;
const NONCE = /^[0-9a-f]{32,128}$/;

/** A fresh 16-byte nonce, hex. */
export function newNonce(random: RandomBytes): string {
  return Buffer.from(random(16)).toString('hex');
}

/** Hex SHA-256 of a request body. */
export function hashBody(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Returns a description of what is wrong with `env`, or undefined when it is well formed. */
export function envelopeProblem(env: unknown): string | undefined {
  if (typeof env !== 'object' || env === null) return `envelope: expected an object, received ${env === null ? 'null' : typeof env}`;
  const e = env as Record<string, unknown>;
  for (const key of ['federationId', 'clientName', 'method'] as const) {
    if (typeof e[key] !== 'string' || (e[key] as string).length === 0 || (e[key] as string).length > 256) {
      return `${key}: expected a string of 1..256 characters, received ${JSON.stringify(e[key])?.slice(0, 80)}`;
    }
  }
  if (typeof e.round !== 'number' || !Number.isInteger(e.round) || e.round < 0) return `round: expected an integer >= 0, received ${JSON.stringify(e.round)}`;
  if (typeof e.bodyHash !== 'string' || !HEX64.test(e.bodyHash)) return `bodyHash: expected 64 lowercase hex digits, received ${JSON.stringify(e.bodyHash)?.slice(0, 80)}`;
  if (typeof e.nonce !== 'string' || !NONCE.test(e.nonce)) return `nonce: expected 32..128 lowercase hex digits, received ${JSON.stringify(e.nonce)?.slice(0, 80)}`;
  if (typeof e.timestamp !== 'number' || !Number.isSafeInteger(e.timestamp) || e.timestamp < 0) {
    return `timestamp: expected ms since the epoch, received ${JSON.stringify(e.timestamp)}`;
  }
  return undefined;
}

/** The exact bytes that are signed for `env`. */
export function canonicalRequestBytes(env: RequestEnvelope): Uint8Array {
  const problem = envelopeProblem(env);
  if (problem) throw new RangeError(problem);
  const fields = [TAG, env.federationId, env.clientName, env.round, env.method, env.bodyHash, env.nonce, env.timestamp];
  return new TextEncoder().encode(JSON.stringify(fields));
}

/** Signs `env` with a 64-byte tweetnacl secret key; returns the 64-byte detached signature. */
export function signRequest(env: RequestEnvelope, secretKey: Uint8Array): Uint8Array {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== nacl.sign.secretKeyLength) {
    throw new RangeError(`secretKey: expected ${nacl.sign.secretKeyLength} bytes, received ${secretKey?.length}`);
  }
  return nacl.sign.detached(canonicalRequestBytes(env), secretKey);
}

/**
 * True when `signature` is a valid Ed25519 signature of `env` under `publicKey`. Never throws on
 * bad input. Verified with node:crypto (ed25519-verify.ts): this runs on the coordinator for
 * every request, and tweetnacl's pure-JS verify would let forged requests block its event loop.
 */
export function verifyRequestSignature(env: RequestEnvelope, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (envelopeProblem(env) !== undefined) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== nacl.sign.signatureLength) return false;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== nacl.sign.publicKeyLength) return false;
  return ed25519Verify(canonicalRequestBytes(env), signature, publicKey);
}
