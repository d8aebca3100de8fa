/**
 * Store throughput on this machine, printed as one JSON document (not a test: numbers depend on
 * the disk). Usage: node --import tsx libs/store/src/testing/measure.ts [checkpointMiB] [rounds]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../open-store.js';
import { sha256Hex } from '../round-rules.js';
import { fixtureCheckpoint } from './fixture-checkpoint.js';

const mib = Number(process.argv[2] ?? 4);
const rounds = Number(process.argv[3] ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'fedlora-measure-'));
try {
  const store = openSqliteStore(join(dir, 'c.db'));
  const checkpoint = fixtureCheckpoint(0, mib * 1024 * 1024);
  const sha256 = sha256Hex(checkpoint);
  let t = performance.now();
  for (let r = 0; r < rounds; r++) {
    store.beginRound(r, { r });
    store.setRoundState(r, 'training');
    store.setRoundState(r, 'aggregating');
    store.commitRound(r, { checkpoint, sha256, ledgerLine: JSON.stringify({ round: r }) });
  }
  const roundMs = (performance.now() - t) / rounds;
  t = performance.now();
  for (let r = 0; r < rounds; r++) store.loadCheckpoint(r);
  const loadMs = (performance.now() - t) / rounds;
  const nonces = 2000;
  t = performance.now();
  for (let i = 0; i < nonces; i++) store.recordNonce(`n${i}`, Date.now() + 60_000);
  const nonceUs = ((performance.now() - t) / nonces) * 1000;
  store.close();
  process.stdout.write(
    `${JSON.stringify({ checkpointMiB: mib, rounds, msPerRoundLifecycle: +roundMs.toFixed(2), msPerCheckpointLoadVerified: +loadMs.toFixed(2), usPerRecordNonce: +nonceUs.toFixed(1) }, null, 2)}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
