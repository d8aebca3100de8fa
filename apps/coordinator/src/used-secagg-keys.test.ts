/**
 * Issue 16 finding 13 (first half), adversarial: a client that replays the X25519 keys it
 * advertised before a coordinator restart. The used keys were a Set in memory, so a restarted
 * coordinator accepted them again; they are now kept in the store and refused after a reopen.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SecAggClient, SecAggError, SecAggServer, advertiseSigningBytes, commitSeed, encodeMessage, generateIdentity, parseMessage, sign, type ClientMsg } from '@fedlora/secagg';
import { openSqliteStore } from '@fedlora/store';
import { seededRandomBytes } from '@fedlora/tensor';
import { storeUsedKeys } from './config-protection.js';

const ids = [1, 2, 3];

/** Round `round` of a 3-client SecAgg+ cohort whose server remembers keys in `usedKeys`; clients draw from a fixed seed. */
function round(round: number, usedKeys: ReturnType<typeof storeUsedKeys>) {
  const rng = seededRandomBytes('used-keys');
  const identities = new Map(ids.map((id) => [id, generateIdentity(rng)]));
  const roster = new Map([...identities].map(([id, kp]) => [id, kp.publicKey]));
  const server = new SecAggServer({ round, cohort: ids, identities: roster, k: 2, t: 2, dim: 4, rng, usedKeys });
  const clients = ids.map((id) => new SecAggClient({ round, clientId: id, identitySecretKey: identities.get(id)!.secretKey, identities: roster, rng, input: new Uint32Array(4) }));
  return { server, clients, identities, rng };
}

describe('used SecAgg+ keys persist in the coordinator store', () => {
  it('refuses, after a restart, an advertisement that reuses a key from before it (key-reuse)', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'used-keys-')), 'fedlora.db');
    let store = openSqliteStore(path);
    const r1 = round(1, storeUsedKeys(store));
    const adverts = r1.clients.map((c, i) => {
      const cfg = r1.server.poll(ids[i]!);
      if (cfg.kind !== 'message') throw new Error('expected the config');
      const advert = c.handle(cfg.bytes);
      if (advert.kind !== 'send') throw new Error('expected an advertisement');
      r1.server.handle(ids[i]!, 'advertise', advert.bytes);
      return advert;
    });
    const advert = adverts[0]!;
    r1.server.advance(); // the advertise stage closes: its keys are recorded
    store.close();

    store = openSqliteStore(path); // the coordinator restarted
    const r2 = round(2, storeUsedKeys(store));
    const old = parseMessage(advert.bytes) as Extract<ClientMsg, { type: 'advertise' }>;
    const keys = { clientId: 1, cPk: old.cPk, sPk: old.sPk, bCommit: commitSeed(r2.rng(32)) };
    const replay = encodeMessage({ type: 'advertise', round: 2, sender: 1, ...keys, sig: sign(advertiseSigningBytes(2, keys), r2.identities.get(1)!.secretKey) });
    let check = 'no error';
    try {
      r2.server.handle(1, 'advertise', replay);
    } catch (e) {
      if (!(e instanceof SecAggError)) throw e;
      check = e.check;
    }
    expect(check).toBe('key-reuse');
    expect(store.isSecAggKeyUsed(Buffer.from(old.cPk).toString('hex'))).toBe(true);
    store.close();
  });
});
