/**
 * grpc-js credentials from the PEM files `fedlora provision` writes. TLS is the default; mTLS
 * (the server requires a client certificate signed by the federation CA) is what the coordinator
 * uses; insecure credentials exist for local development only and say so loudly.
 */
import { ChannelCredentials, credentials, ServerCredentials, type ServerUnaryCall, type ServerDuplexStream, type ServerReadableStream, type ServerWritableStream } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';

/** Server side PEM material. */
export interface ServerTlsPem {
  /** The federation CA; required when `requireClientCert`. */
  ca?: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
  /** mTLS: refuse clients without a certificate signed by `ca` (default true). */
  requireClientCert?: boolean;
}

/** Client side PEM material: the CA to trust, and for mTLS the client's own certificate and key. */
export interface ChannelTlsPem {
  ca: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** Paths to the same material, as configs name them. */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** The warning printed whenever a component runs without TLS. */
export const INSECURE_WARNING =
  'INSECURE: TLS is disabled. Anyone on the network can read and forge traffic, including model updates. Use --insecure for local development only.';

/** Builds server credentials; with `requireClientCert` (the default) a CA is mandatory. */
export function serverCredentials(pem: ServerTlsPem): ServerCredentials {
  const requireClientCert = pem.requireClientCert ?? true;
  if (requireClientCert && !pem.ca) throw new RangeError('tls.ca: expected the federation CA certificate when requireClientCert is true, received nothing');
  return ServerCredentials.createSsl(pem.ca ? Buffer.from(pem.ca) : null, [{ cert_chain: Buffer.from(pem.cert), private_key: Buffer.from(pem.key) }], requireClientCert);
}

/** Builds channel credentials; `cert` and `key` must both be given (mTLS) or both omitted. */
export function channelCredentials(pem: ChannelTlsPem): ChannelCredentials {
  if ((pem.cert === undefined) !== (pem.key === undefined)) {
    throw new RangeError(`tls: expected both cert and key (mTLS) or neither, received ${pem.cert === undefined ? 'key only' : 'cert only'}`);
  }
  return credentials.createSsl(Buffer.from(pem.ca), pem.key ? Buffer.from(pem.key) : null, pem.cert ? Buffer.from(pem.cert) : null);
}

/** Reads PEM files and builds server credentials. Errors name the config key and the path. */
export function loadServerCredentials(files: TlsFiles & { requireClientCert?: boolean }): ServerCredentials {
  return serverCredentials({
    ca: files.ca ? readPem('tls.ca', files.ca) : undefined,
    cert: readPem('tls.cert', required('tls.cert', files.cert)),
    key: readPem('tls.key', required('tls.key', files.key)),
    requireClientCert: files.requireClientCert,
  });
}

/** Reads PEM files and builds channel credentials. */
export function loadChannelCredentials(files: TlsFiles): ChannelCredentials {
  return channelCredentials({
    ca: readPem('tls.ca', required('tls.ca', files.ca)),
    cert: files.cert ? readPem('tls.cert', files.cert) : undefined,
    key: files.key ? readPem('tls.key', files.key) : undefined,
  });
}

/** Plaintext server credentials; calls `warn` with INSECURE_WARNING first. */
export function insecureServerCredentials(warn: (message: string) => void): ServerCredentials {
  warn(INSECURE_WARNING);
  return ServerCredentials.createInsecure();
}

/** Plaintext channel credentials; calls `warn` with INSECURE_WARNING first. */
export function insecureChannelCredentials(warn: (message: string) => void): ChannelCredentials {
  warn(INSECURE_WARNING);
  return credentials.createInsecure();
}

type AnyServerCall = ServerUnaryCall<unknown, unknown> | ServerReadableStream<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

/**
 * The common name of the client certificate the peer presented over mTLS, or undefined (no TLS,
 * or no certificate). Lets the server check that the TLS identity matches the signing identity.
 */
export function peerCertificateCommonName(call: AnyServerCall): string | undefined {
  const subject = call.getAuthContext?.()?.sslPeerCertificate?.subject as { CN?: string | string[] } | undefined;
  const cn = subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

function required(key: string, value: string | undefined): string {
  if (!value) throw new RangeError(`${key}: expected a path to a PEM file, received nothing`);
  return value;
}

function readPem(key: string, path: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new RangeError(`${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!data.includes('-----BEGIN ')) throw new RangeError(`${key}: expected a PEM file, ${path} has no "-----BEGIN" block`);
  return data;
}
