/**
 * Test fixture run as a child process (possibly as an unprivileged user): opens the store at
 * argv[2] and prints the outcome as JSON on stdout: { ok: true } or { ok: false, name, code, message }.
 */
import { openSqliteStore } from '../open-store.js';

try {
  const store = openSqliteStore(process.argv[2]!);
  store.appendAudit({ event: 'probe' });
  store.close();
  process.stdout.write(JSON.stringify({ ok: true }));
} catch (err) {
  const e = err as Error & { code?: string };
  process.stdout.write(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message }));
}
