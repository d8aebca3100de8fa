/**
 * Enrolment requests (issue 16, finding 1): an institution generates its own Ed25519 identity and
 * TLS key and sends only public material, so whoever provisions the federation never holds (and
 * so can never use) an institution's private keys. A request carries
 *
 *   - a PKCS#10 certificate signing request (RFC 2986) for its TLS key (ECDSA P-256), self-signed,
 *     so the CA signs only a key whose holder proved possession, with subject CN = its name;
 *   - its Ed25519 identity public key and an Ed25519 signature over the request's other fields
 *     (name, federation, CSR): proof that the same party holds the identity key.
 *
 * Neither proves *who* sent the request: the operator compares its fingerprint with the one the
 * institution reads out over another channel (README, "Running a real federation").
 */
import './reflect-metadata-shim.js';
import * as x509 from '@peculiar/x509';
import { createHash, createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, webcrypto } from 'node:crypto';
import type { Identity } from './identity.js';
import { decodePublicKey, encodePublicKey } from './identity.js';
import { assertName, escapeDn, keyToPem, signLeafCertificate, type IssueOptions, type PemPair } from './pki.js';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Kind tag of a request file. */
export const ENROLMENT_REQUEST_KIND = 'fedlora.enrolment-request.v1';

/** What an institution sends to the operator (all public). */
export interface EnrolmentRequest {
  kind: typeof ENROLMENT_REQUEST_KIND;
  name: string;
  /** The federation it asks to join, when known. */
  federationId?: string;
  /** Its Ed25519 identity public key (base64). */
  publicKey: string;
  /** PEM PKCS#10 request for its TLS client key. */
  csr: string;
  /** Ed25519 signature (base64) over enrolmentSigningBytes. */
  signature: string;
}

/** The bytes the identity key signs: label, name, federation, identity key and the CSR's SHA-256. */
export function enrolmentSigningBytes(r: Pick<EnrolmentRequest, 'name' | 'federationId' | 'publicKey' | 'csr'>): Uint8Array {
  const csrHash = createHash('sha256').update(r.csr, 'utf8').digest('hex');
  return new Uint8Array(Buffer.from(`${ENROLMENT_REQUEST_KIND}\n${JSON.stringify({ name: r.name, federationId: r.federationId ?? null, publicKey: r.publicKey, csrSha256: csrHash })}`, 'utf8'));
}

/** SHA-256 fingerprint of a request's public material (hex, colon-free): read it out to the operator. */
export function enrolmentFingerprint(r: Pick<EnrolmentRequest, 'name' | 'federationId' | 'publicKey' | 'csr'>): string {
  return createHash('sha256').update(enrolmentSigningBytes(r)).digest('hex');
}

/**
 * Creates the TLS key and the signed request for `identity` (the institution's own, just generated).
 * Returns the request and the TLS private key PEM, which never leaves the institution.
 */
export async function createEnrolmentRequest(identity: Identity, federationId: string | undefined): Promise<{ request: EnrolmentRequest; tlsKeyPem: string }> {
  assertName('name', identity.name);
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${escapeDn(identity.name)}`, keys: keys as never, signingAlgorithm: ALG });
  const body = { name: identity.name, ...(federationId ? { federationId } : {}), publicKey: encodePublicKey(identity.publicKey), csr: csr.toString('pem') };
  const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), identity.secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  const signature = edSign(null, enrolmentSigningBytes(body), key).toString('base64');
  return { request: { kind: ENROLMENT_REQUEST_KIND, ...body, signature }, tlsKeyPem: await keyToPem(keys.privateKey as never) };
}

/**
 * Checks a request: its shape, the identity key's signature, the CSR's self-signature, and that
 * the CSR's subject is CN=<name>. Throws RangeError naming what is wrong; returns the request.
 */
export async function verifyEnrolmentRequest(doc: unknown, expect: { name?: string; federationId?: string } = {}, label = 'enrolment request'): Promise<EnrolmentRequest> {
  if (typeof doc !== 'object' || doc === null) throw new RangeError(`${label}: expected a JSON object`);
  const r = doc as Partial<EnrolmentRequest>;
  if (r.kind !== ENROLMENT_REQUEST_KIND) throw new RangeError(`${label}: kind: expected "${ENROLMENT_REQUEST_KIND}", received ${JSON.stringify(r.kind)}`);
  assertName(`${label}: name`, r.name);
  if (expect.name !== undefined && r.name !== expect.name) throw new RangeError(`${label}: name: expected "${expect.name}", received "${r.name}"`);
  if (expect.federationId !== undefined && r.federationId !== undefined && r.federationId !== expect.federationId) {
    throw new RangeError(`${label}: federationId: expected "${expect.federationId}", received "${r.federationId}"`);
  }
  const publicKey = decodePublicKey(String(r.publicKey));
  if (typeof r.csr !== 'string' || !r.csr.includes('BEGIN CERTIFICATE REQUEST')) throw new RangeError(`${label}: csr: expected a PEM "CERTIFICATE REQUEST"`);
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]);
  const ok = edVerify(null, enrolmentSigningBytes(r as EnrolmentRequest), createPublicKey({ key: spki, format: 'der', type: 'spki' }), Buffer.from(String(r.signature ?? ''), 'base64'));
  if (!ok) throw new RangeError(`${label}: the signature does not verify with the request's identity key; the request was altered`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(r.csr);
  } catch (err) {
    throw new RangeError(`${label}: csr: cannot parse it (${(err as Error).message})`);
  }
  if (!(await csr.verify())) throw new RangeError(`${label}: csr: its self-signature does not verify (no proof that the sender holds the TLS key)`);
  if (csr.subject !== `CN=${escapeDn(r.name!)}`) throw new RangeError(`${label}: csr: subject: expected "CN=${r.name}", received "${csr.subject}"`);
  return r as EnrolmentRequest;
}

/** Issues the TLS client certificate for a verified request's key (the CA never sees a private key). */
export async function issueFromRequest(ca: PemPair, request: EnrolmentRequest, options: IssueOptions): Promise<string> {
  const csr = new x509.Pkcs10CertificateRequest(request.csr);
  return signLeafCertificate(ca, csr.publicKey, { ...options, commonName: request.name, kind: 'client' });
}
