/**
 * The Helm chart's fleet Job (infra/helm/fedlora-coordinator/templates/fleet-job.yaml). Helm is
 * not installed here, so the template is rendered by `renderSubset` below: a stand-in for
 * `helm template` that implements ONLY the constructs this template uses (if/end, include of the
 * chart's three helpers, toYaml | nindent, .Values paths, .Release.Name, .Chart.Name) and throws on
 * any other action, so a construct it does not know fails the test instead of passing unrendered.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

const CHART = new URL('../../../infra/helm/fedlora-coordinator/', import.meta.url);
const RELEASE = 'sim';

function lookup(values: Record<string, unknown>, path: string): unknown {
  if (!path.startsWith('.Values.')) throw new Error(`renderSubset: unsupported value ${path}`);
  return path.slice('.Values.'.length).split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], values);
}

const indent = (text: string, n: number) => text.replace(/\n$/, '').split('\n').map((l) => ' '.repeat(n) + l).join('\n');

/** Renders the subset of Go templates the fleet Job uses (see the module comment). */
function renderSubset(template: string, values: Record<string, unknown>, chartName: string): string {
  const labels = `app.kubernetes.io/name: ${chartName}\napp.kubernetes.io/instance: ${RELEASE}\napp.kubernetes.io/version: "0.1.0"\napp.kubernetes.io/managed-by: Helm`;
  const helpers: Record<string, string> = { 'fedlora.fullname': `${RELEASE}-${chartName}`, 'fedlora.labels': labels, 'fedlora.selector': `app.kubernetes.io/name: ${chartName}\napp.kubernetes.io/instance: ${RELEASE}` };
  // Actions with their trim markers: {{- trims the whitespace before, -}} the whitespace after.
  const out: string[] = [];
  const stack: boolean[] = [];
  const emitting = () => stack.every(Boolean);
  let rest = template;
  for (;;) {
    const at = rest.indexOf('{{');
    if (at < 0) break;
    const end = rest.indexOf('}}', at);
    let before = rest.slice(0, at);
    let action = rest.slice(at + 2, end);
    rest = rest.slice(end + 2);
    if (action.startsWith('-')) {
      before = before.replace(/\s+$/, '');
      action = action.slice(1);
    }
    if (action.endsWith('-')) {
      rest = rest.replace(/^\s+/, '');
      action = action.slice(0, -1);
    }
    action = action.trim();
    if (emitting()) out.push(before);
    let m: RegExpExecArray | null;
    if ((m = /^if (\.Values\.[\w.]+)$/.exec(action))) stack.push(!!lookup(values, m[1]!));
    else if (action === 'end') stack.pop();
    else if (!emitting()) continue;
    else if ((m = /^include "([\w.]+)" \.(?: \| nindent (\d+))?$/.exec(action))) {
      const h = helpers[m[1]!];
      if (h === undefined) throw new Error(`renderSubset: unknown helper ${m[1]}`);
      out.push(m[2] ? `\n${indent(h, Number(m[2]))}` : h);
    } else if ((m = /^toYaml (\.Values\.[\w.]+) \| nindent (\d+)$/.exec(action))) out.push(`\n${indent(stringify(lookup(values, m[1]!)), Number(m[2]))}`);
    else if ((m = /^(\.Values\.[\w.]+)$/.exec(action))) out.push(String(lookup(values, m[1]!)));
    else throw new Error(`renderSubset: unsupported template action {{ ${action} }}`);
  }
  if (emitting()) out.push(rest);
  return out.join('');
}

const values = parse(readFileSync(new URL('values.yaml', CHART), 'utf8')) as Record<string, Record<string, unknown>>;
const template = readFileSync(new URL('templates/fleet-job.yaml', CHART), 'utf8');

describe('Helm chart: the Job of fleet pods', () => {
  it('renders nothing unless fleet.enabled', () => {
    expect(values.fleet).toMatchObject({ enabled: false, pods: 2, institutionsPerPod: 50 });
    expect(renderSubset(template, values, 'fedlora-coordinator').trim()).toBe('');
  });

  it('renders an Indexed Job of `pods` pods, each running its slice of institutionsPerPod institutions of the fleet file', () => {
    const v = { ...values, fleet: { ...values.fleet, enabled: true, pods: 20, institutionsPerPod: 500 } };
    const job = parse(renderSubset(template, v, 'fedlora-coordinator')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'sim-fedlora-coordinator-fleet' } });
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 20, parallelism: 20 });
    const pod = job.spec.template.spec;
    const c = pod.containers[0];
    expect(c.args).toEqual(['client', '--fleet', '/fleet/fleet.yaml', '--slice', '$(FLEET_INDEX):500', '--json']);
    // $(FLEET_INDEX) is the pod's completion index, from the downward API.
    expect(c.env).toContainEqual({ name: 'FLEET_INDEX', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(c.resources).toEqual(values.fleet!.resources);
    expect(pod.volumes.find((x: { name: string }) => x.name === 'secret').secret.secretName).toBe('fedlora-fleet');
    // Keys are copied 0600 before the client (which refuses group-readable keys) starts.
    expect(pod.initContainers[0].args[0]).toMatch(/chmod 600 \/fleet\/\*/);
  });
});
