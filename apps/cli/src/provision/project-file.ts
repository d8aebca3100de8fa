/**
 * The project file of `fedlora provision --project FILE`: a YAML description of a real
 * federation across hosts. Example:
 *
 *   federationId: oncology-2026
 *   coordinator:
 *     host: fl.hospital-a.example.org   # name clients dial; in the server certificate
 *     port: 7443
 *     listen: 0.0.0.0:7443              # default: 0.0.0.0:<port>
 *     altNames: [10.0.0.5]              # more certificate names
 *   institutions:
 *     - name: hospital-a
 *       dataPath: /srv/notes/train.jsonl
 *       jsonField: text
 *       budget: { epsilon: 8, delta: 1.0e-5 }
 *     - name: hospital-b
 *   rounds: { total: 20, minClients: 2 }
 *   strategy: { name: fedadam }
 *   privacy: { mode: central, clipNorm: 1, noiseMultiplier: 1.1, delta: 1.0e-5 }
 *
 * rounds, strategy, privacy, secagg, model and metrics are copied into coordinator.yaml and
 * validated there.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { hostPort, unique, type FederationPlan } from './federation-plan.js';

const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected 1..64 letters, digits, ".", "_" or "-"');
const Host = z.string().regex(/^(\[?[0-9a-fA-F:.]+\]?|[A-Za-z0-9.-]+)$/, 'expected a host name or IP address');

/** The project file schema. */
export const ProjectFileSchema = z.strictObject({
  federationId: Name,
  coordinator: z.strictObject({
    host: Host,
    port: z.int().min(1).max(65535).default(7443),
    listen: z.string().optional(),
    altNames: z.array(Host).default([]),
  }),
  institutions: z
    .array(
      z.strictObject({
        name: Name,
        dataPath: z.string().min(1).optional(),
        jsonField: z.string().min(1).optional(),
        budget: z.strictObject({ epsilon: z.number().positive(), delta: z.number().gt(0).lt(1) }).optional(),
      }),
    )
    .min(1),
  rounds: z.record(z.string(), z.unknown()).optional(),
  strategy: z.record(z.string(), z.unknown()).optional(),
  privacy: z.record(z.string(), z.unknown()).optional(),
  secagg: z.record(z.string(), z.unknown()).optional(),
  model: z.record(z.string(), z.unknown()).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
  insecure: z.boolean().default(false),
});

/** A parsed project file. */
export type ProjectFile = z.infer<typeof ProjectFileSchema>;

/** Reads and validates a project file; RangeError lists every problem as `key.path: message`. */
export function loadProjectFile(path: string): ProjectFile {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new RangeError(`${path}: cannot read the project file: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = ProjectFileSchema.safeParse(doc, { reportInput: true });
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${path}: ${i.path.join('.') || '(top level)'}: ${i.message}${'input' in i && i.input !== undefined ? `, received ${JSON.stringify(i.input)?.slice(0, 80)}` : ''}`);
    throw new RangeError(lines.join('\n'));
  }
  const names = r.data.institutions.map((i) => i.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new RangeError(`${path}: institutions: expected unique names, received ${JSON.stringify(dup)} twice`);
  return r.data;
}

/** Turns a project file into a provisioning plan. */
export function projectPlan(p: ProjectFile): FederationPlan {
  const rounds = { total: 10, minClients: Math.min(2, p.institutions.length), ...(p.rounds ?? {}) };
  const coordinator: Record<string, unknown> = { rounds };
  for (const key of ['strategy', 'privacy', 'secagg', 'model', 'metrics'] as const) if (p[key]) coordinator[key] = p[key];
  return {
    federationId: p.federationId,
    coordinatorHost: p.coordinator.host,
    port: p.coordinator.port,
    listen: p.coordinator.listen ?? hostPort('0.0.0.0', p.coordinator.port),
    serverNames: unique([p.coordinator.host, ...p.coordinator.altNames]),
    institutions: p.institutions.map((i) => ({
      name: i.name,
      ...(i.dataPath ? { dataPath: i.dataPath } : {}),
      ...(i.jsonField ? { jsonField: i.jsonField } : {}),
      ...(i.budget ? { budget: i.budget } : {}),
    })),
    coordinator,
    insecure: p.insecure,
    sampleData: false,
  };
}
