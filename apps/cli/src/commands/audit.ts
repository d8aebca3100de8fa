import { writeFileSync } from 'node:fs';
import { readTrustedKeys } from '@fedlora/privacy';
import type { Command } from 'commander';
import { auditLedgers } from '../audit/audit-report.js';
import { renderAuditHtml } from '../audit/html-report.js';
import { formatAuditText } from '../audit/audit-text.js';
import { CliError, info, printJson } from '../output.js';

interface AuditFlags {
  json?: boolean;
  html?: string;
  trustedKeys?: string;
  head?: string;
}

/** `--head ENTRIES:HASH`: a federation ledger head known out of band (e.g. from an institution's round plans). */
function headFrom(v: string | undefined): { entries: number; hash: string } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+):([0-9a-f]{64})$/.exec(v);
  if (!m) throw new CliError(`--head must be ENTRIES:SHA256 (a count and 64 hex digits, as an institution's ledger records in federationHead), received ${JSON.stringify(v.slice(0, 80))}`);
  return { entries: Number(m[1]), hash: m[2]! };
}

function trustedKeysFrom(path: string | undefined): Record<string, string> | undefined {
  if (!path) return undefined;
  try {
    return readTrustedKeys(path);
  } catch (err) {
    throw new CliError(`--trusted-keys ${(err as Error).message}`);
  }
}

/** Registers `fedlora audit LEDGER... [--json] [--html FILE] [--trusted-keys FILE]`. */
export function register(program: Command): void {
  program
    .command('audit')
    .description('verify privacy ledgers (chain, signatures) and recompute every epsilon from the recorded parameters')
    .argument('<ledgers...>', 'ledger files (JSONL): the coordinator\'s and any institutions\'')
    .option('--json', 'print one JSON document on stdout')
    .option('--html <file>', 'also write an HTML report with charts of epsilon over rounds against budgets')
    .option('--trusted-keys <file>', 'the trusted-keys.json `fedlora provision` writes (JSON {"writer": "Ed25519 public key"}): without it the verdict is UNVERIFIED and the exit code 3')
    .option('--head <entries:hash>', "a federation ledger head known out of band (an institution's federationHead): the federation ledger must still have it")
    .action(async (ledgers: string[], flags: AuditFlags) => {
      const trustedKeys = trustedKeysFrom(flags.trustedKeys);
      const head = headFrom(flags.head);
      const report = auditLedgers(ledgers, { ...(trustedKeys ? { trustedKeys } : {}), ...(head ? { head } : {}) });
      if (flags.html) {
        writeFileSync(flags.html, await renderAuditHtml(report, new Date().toISOString()));
        info(`wrote ${flags.html}`);
      }
      if (flags.json) printJson(report);
      else process.stdout.write(formatAuditText(report));
      if (report.verdict === 'INVALID') {
        info(`audit failed: ${report.problems.length} problem(s); first: ${report.problems[0]!.message}`);
        process.exitCode = 2;
      } else if (report.verdict === 'UNVERIFIED') {
        info('audit UNVERIFIED: pass --trusted-keys (the trusted-keys.json fedlora provision writes); a ledger re-signed with a fresh key would look the same without it');
        process.exitCode = 3;
      }
    });
}
