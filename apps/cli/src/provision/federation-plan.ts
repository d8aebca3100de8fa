/**
 * What `fedlora provision` is asked to create, from flags (a local federation on 127.0.0.1) or
 * from a project file (a real federation across hosts). Pure data; writing happens elsewhere.
 */

import type { EnrolmentRequest } from '@fedlora/transport-grpc';

/** One institution to provision. */
export interface InstitutionPlan {
  name: string;
  /** Path of its private training data, as the client config will name it (relative to the client config). */
  dataPath?: string;
  /** For JSONL data: the text field. */
  jsonField?: string;
  /** Privacy budget the institution will not exceed. */
  budget?: { epsilon: number; delta: number };
}

/** Everything provisioning needs. */
export interface FederationPlan {
  federationId: string;
  /** Host name clients dial (and the server certificate's primary name). */
  coordinatorHost: string;
  port: number;
  /** Address the coordinator listens on. */
  listen: string;
  /** Every subjectAltName of the coordinator certificate. */
  serverNames: string[];
  institutions: InstitutionPlan[];
  /** Sections merged into coordinator.yaml (rounds, strategy, privacy, secagg, model, metrics). */
  coordinator: Record<string, unknown>;
  insecure: boolean;
  /** Write a disjoint shard of public-domain sample text per institution (local federations). */
  sampleData: boolean;
  /**
   * Verified enrolment requests by institution (the production flow: institutions generated their
   * own keys with `fedlora client-init`). Institutions without one get keys generated here (test only).
   */
  requests?: ReadonlyMap<string, EnrolmentRequest>;
}

/** Flags of `fedlora provision` that shape a local plan. */
export interface LocalPlanOptions {
  clients: number;
  rounds: number;
  federationId: string;
  port: number;
  hosts?: string[];
  minClients?: number;
  insecure?: boolean;
  sampleData?: boolean;
}

const LOOPBACK = ['127.0.0.1', '::1', 'localhost'];

/**
 * The TLS server name to verify when dialling `address`: `localhost` for a loopback IP
 * (`127.0.0.1:port`, `[::1]:port`; local federations' certificates carry that name), since an IP
 * address as TLS server name makes Node print DEP0123, which is not a JSON log line
 * (grpc-node#1919). Undefined otherwise: the host itself is verified.
 */
export function loopbackServerName(address: string): 'localhost' | undefined {
  return /^(127\.0\.0\.1|\[::1\]):\d+$/.test(address) ? 'localhost' : undefined;
}

/** A federation on this machine: inst-1..inst-N dial 127.0.0.1:port. */
export function localPlan(o: LocalPlanOptions): FederationPlan {
  if (!Number.isInteger(o.clients) || o.clients < 1 || o.clients > 1000) throw new RangeError(`--clients: expected an integer in 1..1000, received ${o.clients}`);
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new RangeError(`--rounds: expected an integer >= 1, received ${o.rounds}`);
  const minClients = o.minClients ?? Math.min(2, o.clients);
  if (minClients > o.clients) throw new RangeError(`--min-clients: expected at most --clients (${o.clients}), received ${minClients}`);
  return {
    federationId: o.federationId,
    coordinatorHost: '127.0.0.1',
    port: o.port,
    listen: `127.0.0.1:${o.port}`,
    serverNames: unique([...LOOPBACK, ...(o.hosts ?? [])]),
    institutions: Array.from({ length: o.clients }, (_, i) => ({ name: `inst-${i + 1}` })),
    coordinator: { rounds: { total: o.rounds, minClients } },
    insecure: o.insecure ?? false,
    sampleData: o.sampleData ?? true,
  };
}

/** Deduplicates while keeping order. */
export function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** `host:port`, bracketing IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
