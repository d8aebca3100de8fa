import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { auditLedgers } from '../audit/audit-report.js';
import { renderAuditHtml } from '../audit/html-report.js';
import { formatAuditText } from '../audit/audit-text.js';
import { CliError, info, printJson } from '../output.js';

interface AuditFlags {
  json?: boolean;
  html?: string;
  trustedKeys?: string;
}

function readTrustedKeys(path: string | undefined): Record<string, string> | undefined {
  if (!path) return undefined;
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Object.values(v).some((k) => typeof k !== 'string')) throw new Error('expected {"writer": "hex public key", ...}');
    return v as Record<string, string>;
  } catch (err) {
    throw new CliError(`--trusted-keys ${path}: ${(err as Error).message}`);
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
    .option('--trusted-keys <file>', 'JSON {"writer": "Ed25519 public key (hex or base64)"}: reject ledgers not signed by these keys')
    .action(async (ledgers: string[], flags: AuditFlags) => {
      const report = auditLedgers(ledgers, { ...(flags.trustedKeys ? { trustedKeys: readTrustedKeys(flags.trustedKeys)! } : {}) });
      if (flags.html) {
        writeFileSync(flags.html, await renderAuditHtml(report, new Date().toISOString()));
        info(`wrote ${flags.html}`);
      }
      if (flags.json) printJson(report);
      else process.stdout.write(formatAuditText(report));
      if (!report.valid) {
        info(`audit failed: ${report.problems.length} problem(s); first: ${report.problems[0]!.message}`);
        process.exitCode = 2;
      }
    });
}
