// Type-checks grafana/dashboards/tinymon.json against Grafana's own
// published `Dashboard` type (npm @grafana/schema, the version that
// docker-compose.yml pins) with `tsc --strict`, offline. No Grafana binary
// exists on our machines, so this is how the file is held to Grafana 13's
// schema; tests/common/prom.rs runs every panel's query on Prometheus.
//
// The JSON becomes a TypeScript module `(<json>) satisfies Dashboard`.
// `satisfies` keeps string literals literal and rejects unknown keys in
// every nested object; importing the JSON would widen every string to
// `string` and fail on every union.
//
// One allowance, made explicit here: two fields are typed as TypeScript
// enums (a value mapping's `type` is a `MappingType`, a threshold's `mode`
// a `ThresholdsMode`), which no string literal can satisfy. For those, the
// checker looks the string up among the enum's runtime values (from the
// same package) and writes the member instead, `MappingType.ValueToText`
// for "value". A string that is no value of the enum fails the check.
//
// It then checks two deliberately broken copies, which must fail: a panel
// key misspelt, and a mapping type that does not exist.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as schema from '@grafana/schema';

const here = dirname(fileURLToPath(import.meta.url));
const dashboardPath = join(here, '..', '..', 'grafana', 'dashboards', 'tinymon.json');
const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');

// Where an enum-typed field sits, by the key that holds it and the key of
// its parent.
const ENUM_FIELDS = [
  { parent: 'mappings', key: 'type', enumName: 'MappingType' },
  { parent: 'thresholds', key: 'mode', enumName: 'ThresholdsMode' },
];

/** The TypeScript source for one dashboard value; throws on a bad enum value. */
function toTs(value, parentKey, path) {
  if (Array.isArray(value)) {
    return `[${value.map((v, i) => toTs(v, parentKey, `${path}[${i}]`)).join(',')}]`;
  }
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value).map(([k, v]) => {
      const rule = ENUM_FIELDS.find((f) => f.key === k && f.parent === parentKey && typeof v === 'string');
      if (rule) {
        const members = schema[rule.enumName];
        const member = Object.keys(members).find((m) => members[m] === v);
        if (!member) {
          throw new Error(`${path}.${k}: "${v}" is not a ${rule.enumName} (${Object.values(members).join(', ')})`);
        }
        return `${JSON.stringify(k)}: ${rule.enumName}.${member}`;
      }
      return `${JSON.stringify(k)}: ${toTs(v, k, `${path}.${k}`)}`;
    });
    return `{${fields.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Errors of tsc --strict for `dashboard`, or of the enum lookup; [] when it type-checks. */
function check(dashboard, name) {
  let body;
  try {
    body = toTs(dashboard, '', name);
  } catch (e) {
    return [e.message];
  }
  const dir = mkdtempSync(join(tmpdir(), 'tinymon-grafana-'));
  const file = join(dir, `${name}.ts`);
  const enums = ENUM_FIELDS.map((f) => f.enumName).join(', ');
  writeFileSync(
    file,
    `import { type Dashboard, ${enums} } from '${join(here, 'node_modules', '@grafana', 'schema')}';\n` +
      `export const dashboard = (${body}) satisfies Dashboard;\n`,
  );
  try {
    execFileSync(process.execPath, [tsc, '--strict', '--noEmit', '--skipLibCheck', '--target', 'es2022',
      '--module', 'nodenext', '--moduleResolution', 'nodenext', file], { stdio: 'pipe' });
    return [];
  } catch (e) {
    return String(e.stdout).split('\n').filter((l) => l.trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8'));
const errors = check(dashboard, 'tinymon');
if (errors.length) {
  console.error(`grafana/dashboards/tinymon.json does not satisfy @grafana/schema's Dashboard:\n${errors.join('\n')}`);
  process.exit(1);
}
console.log(`tinymon.json satisfies Dashboard of @grafana/schema ${JSON.parse(readFileSync(join(here, 'node_modules', '@grafana', 'schema', 'package.json'), 'utf8')).version} (tsc --strict): ${dashboard.panels.length} panels`);

// Broken copies must fail, or the check proves nothing.
const broken = [
  ['a misspelt panel key', (d) => { d.panels[1].titel = d.panels[1].title; }],
  ['a mapping type that does not exist', (d) => {
    const p = d.panels.find((q) => q.fieldConfig?.defaults?.mappings?.length);
    p.fieldConfig.defaults.mappings[0].type = 'valuee';
  }],
  ['a gridPos that is not a position', (d) => { d.panels[0].gridPos = 'top left'; }],
];
for (const [what, edit] of broken) {
  const copy = structuredClone(dashboard);
  edit(copy);
  const errs = check(copy, 'broken');
  if (!errs.length) {
    console.error(`a dashboard with ${what} passed the check`);
    process.exit(1);
  }
  console.log(`a dashboard with ${what} fails, as it must: ${errs[0]}`);
}
