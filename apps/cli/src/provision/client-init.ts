/**
 * `fedlora client-init --name NAME --out DIR`: run by an institution on its own machine. Generates
 * its Ed25519 identity and its TLS key, which never leave DIR, and an enrolment request holding
 * only public material (identity public key, a CSR for the TLS key, signed with the identity key)
 * for the operator, who provisions the federation from requests (`fedlora provision --project F
 * --requests DIR`) and sends back a bundle of public files: certificate, CA, member list, config.
 *
 *   DIR/identity.key.json    Ed25519 identity (0600): signs requests, SecAgg+ messages and the ledger
 *   DIR/tls.key              TLS client key (0600)
 *   DIR/NAME.request.json    the enrolment request (public): send it to the operator
 */
import type { RandomBytes } from '@fedlora/tensor';
import { createEnrolmentRequest, enrolmentFingerprint, generateIdentity, saveIdentity, wipeIdentity, writePrivateFile } from '@fedlora/transport-grpc';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The files an institution keeps (private) and the one it sends. */
export const INSTITUTION_FILES = { identity: 'identity.key.json', tlsKey: 'tls.key' } as const;

/** What `fedlora client-init --json` prints. */
export interface ClientInitManifest {
  name: string;
  federationId?: string;
  dir: string;
  publicKey: string;
  /** The request to send to the operator. */
  request: string;
  /** SHA-256 of the request's public material: read it to the operator over another channel. */
  fingerprintSha256: string;
  files: Array<{ path: string; mode: string }>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Creates an institution's keys and enrolment request in `dir`. RangeError names what is wrong. */
export async function clientInit(dir: string, o: { name: string; federationId?: string; random: RandomBytes; force?: boolean }): Promise<ClientInitManifest> {
  if (!NAME.test(o.name)) throw new RangeError(`--name: expected 1..64 letters, digits, ".", "_" or "-", received "${o.name}"`);
  if (o.federationId !== undefined && !NAME.test(o.federationId)) throw new RangeError(`--federation-id: expected 1..64 letters, digits, ".", "_" or "-", received "${o.federationId}"`);
  if (existsSync(join(dir, INSTITUTION_FILES.identity)) && !o.force) {
    throw new RangeError(`--out: ${dir} already holds an identity (${INSTITUTION_FILES.identity}); choose another directory or pass --force to replace it (its enrolment is then lost)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const identity = generateIdentity(o.name, o.random);
  try {
    const { request, tlsKeyPem } = await createEnrolmentRequest(identity, o.federationId);
    saveIdentity(join(dir, INSTITUTION_FILES.identity), identity);
    writePrivateFile(join(dir, INSTITUTION_FILES.tlsKey), tlsKeyPem);
    const requestFile = `${o.name}.request.json`;
    writeFileSync(join(dir, requestFile), `${JSON.stringify(request, null, 2)}\n`, { mode: 0o644 });
    const files = [INSTITUTION_FILES.identity, INSTITUTION_FILES.tlsKey, requestFile].map((path) => ({ path, mode: (statSync(join(dir, path)).mode & 0o777).toString(8) }));
    return { name: o.name, ...(o.federationId ? { federationId: o.federationId } : {}), dir, publicKey: request.publicKey, request: requestFile, fingerprintSha256: enrolmentFingerprint(request), files };
  } finally {
    wipeIdentity(identity);
  }
}
