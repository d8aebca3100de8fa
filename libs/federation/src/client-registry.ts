import type { RandomBytes } from '@fedlora/tensor';
import type { Clock, EventLogger } from './clock.js';
import { FederationError } from './errors.js';
import type { ClientRecord } from './types.js';

/** What the registry needs to know of membership (see CoordinatorOptions.isMember / secureAggregation). */
export interface RegistryOptions {
  /** A client not heard from for this long is not live (default 60 s). */
  livenessMs?: number;
  /** Whether a client is still a member (enrolled, not revoked); default: every registered client. */
  isMember?: (clientName: string) => boolean;
  /** Under secure aggregation: only clients with an identity key can be placed in a roster. */
  identityOf?: (clientName: string) => unknown;
  clock: Clock;
  logger: EventLogger;
  rng: RandomBytes;
}

/** One registered institution: a few numbers and its session token (the registry holds nothing else per client). */
type Entry = ClientRecord & { token: string };

/**
 * The coordinator's registry of institutions and its live set. Per registered institution it
 * holds one small record (name, claimed examples, times, session token): nothing grows with the
 * population but these records, and counting or listing the live set is one pass over them, so
 * a coordinator holds ten thousand registered institutions as cheaply as a hundred.
 */
export class ClientRegistry {
  private readonly clients = new Map<string, Entry>();
  /** Clients seen to have lost membership (logged once). */
  private readonly notMembers = new Set<string>();

  constructor(private readonly opts: RegistryOptions) {}

  /** Registers (or re-registers after a reconnect) a client; returns its new session token. */
  register(name: string, numExamples: number): { clientId: string; sessionToken: string; rejoined: boolean } {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      throw new FederationError('invalid-argument', `client name must be 1-64 characters of [A-Za-z0-9._-], received ${JSON.stringify(name.slice(0, 80))}`);
    }
    const token = Buffer.from(this.opts.rng(24)).toString('base64url');
    const now = this.opts.clock.now();
    const existing = this.clients.get(name);
    this.clients.set(name, { clientId: name, name, numExamples, registeredAt: existing?.registeredAt ?? now, lastSeen: now, token });
    return { clientId: name, sessionToken: token, rejoined: existing !== undefined };
  }

  /** Checks a client's session token and membership; refreshes its liveness. */
  authenticate(clientId: string, token: string): ClientRecord {
    const c = this.clients.get(clientId);
    if (!c || c.token !== token) throw new FederationError('unauthenticated', 'unknown client or expired session: register again');
    if (this.opts.isMember?.(clientId) === false) throw new FederationError('permission-denied', `client ${clientId} is no longer a member of this federation (revoked)`);
    c.lastSeen = this.opts.clock.now();
    return c;
  }

  /** The example count a client claimed at registration (0 if unknown). */
  numExamples(clientId: string): number {
    return this.clients.get(clientId)?.numExamples ?? 0;
  }

  /**
   * Clients heard from within the liveness window that are still members, sorted. A revoked
   * client leaves at once (#16 finding 7); under secure aggregation so does one without an
   * identity key, which the secure round could not place in its roster.
   */
  live(): string[] {
    const now = this.opts.clock.now();
    const out: string[] = [];
    for (const c of this.clients.values()) if (this.isLive(c, now)) out.push(c.clientId);
    return out.sort();
  }

  /** How many are live, without listing them (the coordinator counts on every change while it waits for clients). */
  liveCount(except?: ReadonlyMap<string, unknown>): number {
    const now = this.opts.clock.now();
    let n = 0;
    for (const c of this.clients.values()) if (this.isLive(c, now) && !except?.has(c.clientId)) n++;
    return n;
  }

  /** Whether `name` is live now. */
  isLiveClient(name: string): boolean {
    const c = this.clients.get(name);
    return c !== undefined && this.isLive(c, this.opts.clock.now());
  }

  private isLive(c: Entry, now: number): boolean {
    return now - c.lastSeen <= (this.opts.livenessMs ?? 60_000) && this.isMember(c.clientId);
  }

  private isMember(name: string): boolean {
    const revoked = this.opts.isMember?.(name) === false;
    const member = !revoked && (!this.opts.identityOf || this.opts.identityOf(name) !== undefined);
    if (member) {
      if (this.notMembers.size > 0) this.notMembers.delete(name);
    } else if (!this.notMembers.has(name)) {
      this.notMembers.add(name);
      this.opts.logger.warn({ event: 'client.left-live-set', client: name, reason: revoked ? 'revoked' : 'no secure-aggregation identity key (revoked?)' });
    }
    return member;
  }
}
