import type { Command } from 'commander';
import { cryptoRandomBytes } from '@fedlora/tensor';
import { resolve } from 'node:path';
import { CliError, printJson } from '../output.js';
import { clientInit } from '../provision/client-init.js';

/** `fedlora client-init --name NAME --out DIR`: an institution creates its own keys and an enrolment request. */
export function register(program: Command): void {
  program
    .command('client-init')
    .description("Create this institution's identity and TLS keys (they stay here) and an enrolment request for the operator")
    .requiredOption('--name <name>', "the institution's name in the federation (the operator's project file lists it)")
    .requiredOption('--out <dir>', 'directory for the keys and the request (created 0700)')
    .option('--federation-id <id>', 'the federation to join (bound into the request)')
    .option('--force', 'replace keys already in --out (an earlier enrolment is lost)')
    .option('--json', 'print what was written as one JSON document')
    .addHelpText('after', '\nThen: send DIR/NAME.request.json to the operator, read them the fingerprint over another channel,\nand copy the bundle they return (config, certificate, CA, members.json) into DIR.')
    .action(async (o: { name: string; out: string; federationId?: string; force?: boolean; json?: boolean }) => {
      const dir = resolve(o.out);
      let m;
      try {
        m = await clientInit(dir, { name: o.name, federationId: o.federationId, random: cryptoRandomBytes, force: o.force });
      } catch (err) {
        if (err instanceof RangeError) throw new CliError(err.message, 2);
        throw err;
      }
      if (o.json) return printJson(m);
      process.stdout.write(
        [
          `Keys of ${m.name} written to ${dir} (identity.key.json, tls.key: private, 0600; they never leave this machine).`,
          `Send ${resolve(dir, m.request)} to the operator and read them this fingerprint over another channel:`,
          `  ${m.fingerprintSha256}`,
          `Identity public key: ${m.publicKey}`,
        ].join('\n') + '\n',
      );
    });
}
