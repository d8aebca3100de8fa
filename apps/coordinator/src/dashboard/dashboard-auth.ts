/**
 * Who may read the dashboard. Three ways in, checked in this order:
 *
 * 1. mutual TLS: the request came over HTTPS with a client certificate the federation CA signed
 *    (Node verified the chain: `socket.authorized`) whose common name the config maps to a role;
 * 2. a bearer token (`Authorization: Bearer ...`) whose SHA-256 the config lists with a role; the
 *    presented token is hashed and compared with every configured hash by crypto.timingSafeEqual,
 *    all of them, so neither the content nor the position of a match shows in the timing;
 * 3. nothing, when the dashboard listens on loopback without any auth configured and the peer is
 *    itself on loopback: whoever can reach it is on this machine (the operator).
 *
 * Anything else is refused: 401 when no credential came (or a token that matches nothing: the
 * client should authenticate), 403 when a valid certificate names nobody the config allows.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/** What the dashboard shows depends on the role (README: Dashboard). */
export type DashboardRole = 'operator' | 'auditor';

/** The dashboard's auth settings (config key `dashboard.auth`, plus whether it listens on loopback). */
export interface DashboardAuthOptions {
  tokens: ReadonlyArray<{ role: DashboardRole; sha256: string }>;
  certificates: ReadonlyArray<{ commonName: string; role: DashboardRole }>;
  /** Listening on a loopback address: with no tokens and certificates, loopback peers are let in as operator. */
  loopback: boolean;
}

/** The verdict on one request. `reason` goes to the log and the audit log, never to the client. */
export type AuthVerdict = { ok: true; role: DashboardRole; via: 'certificate' | 'token' | 'loopback' } | { ok: false; status: 401 | 403; reason: string };

/** Longest Authorization header considered (anything longer is refused without hashing it). */
const MAX_AUTH_HEADER = 1024;

/** SHA-256 of a string, as bytes. */
function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** True when the socket's peer is on this machine. */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** Builds the per-request check. */
export function createDashboardAuth(o: DashboardAuthOptions): (req: IncomingMessage) => AuthVerdict {
  const hashes = o.tokens.map((t) => ({ role: t.role, hash: Buffer.from(t.sha256, 'hex') }));
  const byName = new Map(o.certificates.map((c) => [c.commonName, c.role]));
  const open = o.loopback && hashes.length === 0 && byName.size === 0;

  return (req) => {
    const socket = req.socket as Partial<TLSSocket>;
    if (typeof socket.getPeerCertificate === 'function' && socket.authorized) {
      const cn = socket.getPeerCertificate().subject?.CN;
      const name = Array.isArray(cn) ? cn[0] : cn;
      const role = name !== undefined ? byName.get(name) : undefined;
      if (role) return { ok: true, role, via: 'certificate' };
      if (hashes.length === 0) return { ok: false, status: 403, reason: `certificate ${JSON.stringify(String(name).slice(0, 64))} is not allowed to read the dashboard` };
    }
    const header = req.headers.authorization;
    if (header !== undefined) {
      if (header.length > MAX_AUTH_HEADER) return { ok: false, status: 401, reason: 'authorization header too long' };
      const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
      if (!m) return { ok: false, status: 401, reason: 'authorization header is not "Bearer <token>"' };
      const presented = sha256(m[1]!);
      let role: DashboardRole | undefined;
      // Compare against every hash; no early exit.
      for (const h of hashes) if (timingSafeEqual(presented, h.hash) && role === undefined) role = h.role;
      if (role) return { ok: true, role, via: 'token' };
      return { ok: false, status: 401, reason: 'bearer token does not match any configured token' };
    }
    if (open && isLoopbackPeer(req.socket.remoteAddress)) return { ok: true, role: 'operator', via: 'loopback' };
    if (socket.authorized === false && typeof socket.getPeerCertificate === 'function' && socket.getPeerCertificate()?.subject) {
      return { ok: false, status: 403, reason: 'client certificate not signed by the federation CA' };
    }
    return { ok: false, status: 401, reason: 'no credentials (bearer token or client certificate)' };
  };
}
