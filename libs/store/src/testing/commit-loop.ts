/**
 * Test fixture run as a child process (crash-safety test): commits rounds in a loop, printing
 * "committed <round>" after each durable commit, until it is killed.
 * Usage: tsx commit-loop.ts <db-path> <checkpoint-bytes>
 */
import { openSqliteStore } from '../open-store.js';
import { sha256Hex } from '../round-rules.js';
import { fixtureCheckpoint } from './fixture-checkpoint.js';

const [path, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg ?? 65536);
const store = openSqliteStore(path!);
store.abortIncompleteRounds('restart');
let round = (store.latestCommitted()?.round ?? -1) + 1;
for (;;) {
  store.beginRound(round, { round, localSteps: 1 }, ['a', 'b']);
  store.setRoundState(round, 'training');
  store.setRoundState(round, 'aggregating');
  const checkpoint = fixtureCheckpoint(round, size);
  store.commitRound(round, { checkpoint, sha256: sha256Hex(checkpoint), ledgerLine: JSON.stringify({ round, epsilon: round * 0.1 }) });
  process.stdout.write(`committed ${round}\n`);
  round++;
}
