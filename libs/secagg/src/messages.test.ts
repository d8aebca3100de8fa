import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { SecAggError } from './errors.js';
import { SEALED_SHARE_BYTES, encodeMessage, parseMessage, parseExpected, type ClientMsg, type ServerMsg } from './messages.js';

const rng = seededRandomBytes('serde');
const b = (n: number) => rng(n);

const samples: Array<ServerMsg | ClientMsg> = [
  { type: 'config', round: 3, cohort: [0, 4, 9], k: 2, t: 2, dim: 1000, graphSeed: b(32) },
  { type: 'keys', round: 3, keys: [{ clientId: 4, cPk: b(32), sPk: b(32), bCommit: b(32), sig: b(64) }, { clientId: 2 ** 31 - 1, cPk: b(32), sPk: b(32), bCommit: b(32), sig: b(64) }] },
  { type: 'shares', round: 3, session: b(32), shares: [{ from: 9, ct: b(SEALED_SHARE_BYTES) }] },
  { type: 'survivors', round: 3, session: b(32), survivors: [0, 9] },
  { type: 'unmask', round: 3, session: b(32), alive: [0, 9], dropped: [4], signatures: [{ clientId: 9, sig: b(64) }] },
  { type: 'abort', round: 3, check: 'threshold', reason: 'too few' },
  { type: 'advertise', round: 3, sender: 4, cPk: b(32), sPk: b(32), bCommit: b(32), sig: b(64) },
  { type: 'share', round: 3, session: b(32), sender: 4, shares: [{ to: 0, ct: b(SEALED_SHARE_BYTES) }] },
  { type: 'chunk', round: 3, session: b(32), sender: 4, offset: 64, words: new Uint32Array([0, 1, 0xffffffff]) },
  { type: 'consistency', round: 3, session: b(32), sender: 4, sig: b(64) },
  { type: 'unmask-shares', round: 3, session: b(32), sender: 4, bShares: [{ of: 0, y: b(66) }], sShares: [{ of: 9, y: b(66) }] },
];

describe('message serde', () => {
  it.each(samples.map((m) => [m.type, m] as const))('%s round-trips and re-encodes to identical bytes', (_, m) => {
    const bytes = encodeMessage(m);
    const parsed = parseMessage(bytes);
    expect(parsed).toEqual(m);
    expect(encodeMessage(parsed)).toEqual(bytes);
  });

  it('rejects wrong lengths, unsorted id lists, non-canonical base64 and unknown types', () => {
    const errCheck = (bytes: Uint8Array) => {
      try {
        parseMessage(bytes);
      } catch (e) {
        return (e as SecAggError).check;
      }
      return 'ok';
    };
    const json = (type: number, body: string) => new Uint8Array([1, type, ...Buffer.from(body)]);
    expect(errCheck(json(0x13, '{"round":1,"session":"' + Buffer.alloc(31).toString('base64') + '","survivors":[]}'))).toBe('format');
    expect(errCheck(json(0x13, '{"round":1,"session":"' + Buffer.alloc(32).toString('base64') + '","survivors":[2,1]}'))).toBe('format');
    expect(errCheck(json(0x13, '{"round":-1,"session":"' + Buffer.alloc(32).toString('base64') + '","survivors":[]}'))).toBe('format');
    expect(errCheck(json(0x42, '{}'))).toBe('format');
    expect(errCheck(new Uint8Array([1, 0x03, 0, 0]))).toBe('format');
    expect(errCheck(new Uint8Array([9, 0x10]))).toBe('version');
  });

  it('packs the key list in binary, 164 bytes per entry, and refuses any other length or an id >= 2^31', () => {
    const entry = { clientId: 7, cPk: b(32), sPk: b(32), bCommit: b(32), sig: b(64) };
    const bytes = encodeMessage({ type: 'keys', round: 9, keys: Array.from({ length: 1000 }, (_, i) => ({ ...entry, clientId: i })) });
    expect(bytes.length).toBe(10 + 164 * 1000);
    const check = (x: Uint8Array) => {
      try {
        parseMessage(x);
        return 'ok';
      } catch (e) {
        return (e as SecAggError).check;
      }
    };
    expect(check(bytes.subarray(0, bytes.length - 1))).toBe('format');
    expect(check(new Uint8Array([...bytes, 0]))).toBe('format');
    expect(check(bytes.subarray(0, 9))).toBe('format');
    const bigId = encodeMessage({ type: 'keys', round: 9, keys: [entry] });
    new DataView(bigId.buffer).setUint32(10, 2 ** 31);
    expect(check(bigId)).toBe('format');
    expect(() => encodeMessage({ type: 'keys', round: 9, keys: [{ ...entry, cPk: b(31) }] })).toThrow(RangeError);
  });

  it('parseExpected refuses another message type with a stage error', () => {
    expect(() => parseExpected(encodeMessage(samples[0]!), 'keys', 'share')).toThrow(SecAggError);
    expect(() => parseExpected(encodeMessage(samples[0]!), 'keys', 'share')).toThrow(/expect a 'keys' message in stage share/);
  });
});
