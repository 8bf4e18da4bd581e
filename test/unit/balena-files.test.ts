import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * balena's conventions for the fleet files (no balena-cli or Docker engine here, so these are static
 * checks): compose format 2.x with only the fields the balena supervisor supports, named volumes
 * only, a restart policy on every service; a Dockerfile.template whose every base image is resolved
 * per device type; a balena.yml contract whose default device type is among the supported ones.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const read = (name: string): string => readFileSync(join(ROOT, name), 'utf8');

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const V3_ONLY_KEYS = ['deploy', 'configs', 'secrets'];
// Fields the balena supervisor documents as unsupported.
const UNSUPPORTED_SERVICE_KEYS = [
  'container_name',
  'external_links',
  'links',
  'logging',
  'scale',
  'runtime',
  'volumes_from',
  'volume_driver',
  'isolation',
  'blkio_config',
  'cpu_count',
  'cpu_percent',
  'memswap_limit',
  'mem_swappiness',
];

describe('docker-compose.yml', () => {
  const compose: unknown = parse(read('docker-compose.yml'));
  const doc = isDict(compose) ? compose : {};
  const services = isDict(doc.services) ? doc.services : {};
  const topVolumes = isDict(doc.volumes) ? doc.volumes : {};

  it('uses compose file format 2.x as a string and has services', () => {
    expect(typeof doc.version).toBe('string');
    expect(String(doc.version)).toMatch(/^2\.\d+$/);
    expect(Object.keys(services).length).toBeGreaterThan(0);
  });

  it('has no v3-only top-level or service keys', () => {
    for (const key of V3_ONLY_KEYS) {
      expect(doc, `top-level ${key}`).not.toHaveProperty(key);
      for (const [name, service] of Object.entries(services)) expect(service, `${name}.${key}`).not.toHaveProperty(key);
    }
  });

  it('gives every service a restart policy and only supervisor-supported fields', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(isDict(service), name).toBe(true);
      if (!isDict(service)) continue;
      expect(['always', 'on-failure', 'unless-stopped', 'no']).toContain(service.restart);
      for (const key of UNSUPPORTED_SERVICE_KEYS) expect(service, `${name}.${key}`).not.toHaveProperty(key);
      if (service.network_mode !== undefined) expect(String(service.network_mode)).toMatch(/^(bridge|host|none|service:.+)$/);
    }
  });

  it('mounts only named volumes declared at top level, in short syntax', () => {
    for (const [name, service] of Object.entries(services)) {
      if (!isDict(service) || service.volumes === undefined) continue;
      expect(Array.isArray(service.volumes), `${name}.volumes`).toBe(true);
      for (const entry of service.volumes as unknown[]) {
        expect(typeof entry, `${name}: long volume syntax`).toBe('string');
        const [source, target] = String(entry).split(':');
        expect(target, `${name}: ${String(entry)} has no target`).toMatch(/^\//);
        expect(source, `${name}: bind mount ${String(entry)}`).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
        expect(topVolumes, `${name}: volume ${source} not declared`).toHaveProperty(source ?? '');
      }
    }
  });

  it('builds from a directory inside the project, never a URL', () => {
    for (const [name, service] of Object.entries(services)) {
      if (!isDict(service) || service.build === undefined) continue;
      const context = isDict(service.build) ? service.build.context : service.build;
      expect(typeof context, name).toBe('string');
      expect(String(context)).not.toMatch(/^(\/|\.\.|[a-z]+:\/\/|git@)/);
    }
  });

  it('runs the outpost service unprivileged with its data volume, devices and the sysfs label', () => {
    const outpost = services.outpost;
    expect(isDict(outpost)).toBe(true);
    if (!isDict(outpost)) return;
    expect(outpost.build).toBe('.');
    expect(outpost.restart).toBe('always');
    expect(outpost.privileged).toBe(false);
    expect(outpost.volumes).toContain('outpost-data:/var/lib/outpost');
    expect(outpost.devices).toEqual(expect.arrayContaining(['/dev/ttyUSB0:/dev/ttyUSB0', '/dev/gpiochip0:/dev/gpiochip0']));
    const labels = isDict(outpost.labels) ? outpost.labels : {};
    expect(labels['io.balena.features.sysfs']).toBe('1');
    expect(labels).not.toHaveProperty('io.balena.features.dbus');
    for (const value of Object.values(labels)) expect(typeof value).toBe('string');
  });
});

describe('Dockerfile.template', () => {
  const lines = read('Dockerfile.template').split('\n');
  const instructions = lines.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const froms = instructions.filter((l) => /^FROM\s/i.test(l));

  it('resolves every base image per device type with %%BALENA_MACHINE_NAME%%', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toContain('%%BALENA_MACHINE_NAME%%');
    expect(read('Dockerfile.template')).not.toMatch(/%%RESIN_/);
  });

  it('builds in a -build stage and runs from a -run stage', () => {
    expect(froms[0]).toMatch(/-build\b.*\bAS\s+build$/i);
    expect(froms.at(-1)).toMatch(/-run$/);
    const text = instructions.join('\n');
    expect(text).toMatch(/npm ci\b/);
    expect(text).toMatch(/npm run build\b/);
    expect(text).toMatch(/npm prune --omit=dev\b/);
  });

  it('copies dist, node_modules and config into the run stage, enables UDEV and has a CMD', () => {
    const runStage = instructions.slice(instructions.indexOf(froms.at(-1) ?? ''));
    for (const dir of ['dist', 'node_modules', 'config']) {
      expect(runStage.some((l) => new RegExp(`^COPY --from=build \\S*/${dir} `).test(l)), dir).toBe(true);
    }
    expect(runStage.join('\n')).toMatch(/\bUDEV=on\b/);
    const cmd = runStage.filter((l) => l.startsWith('CMD '));
    expect(cmd).toHaveLength(1);
    expect(cmd[0]).toContain('dist/services/outpost.js run --config');
  });

  it('keeps its configuration on the volume that docker-compose.yml mounts', () => {
    const env = /OUTPOST_CONFIG=(\S+)/.exec(instructions.join('\n'))?.[1] ?? '';
    expect(env.startsWith('/var/lib/outpost/')).toBe(true);
  });
});

describe('balena.yml', () => {
  const contract: unknown = parse(read('balena.yml'));
  const doc = isDict(contract) ? contract : {};
  const data = isDict(doc.data) ? doc.data : {};

  it('names a software application or block with a semver version', () => {
    expect(doc.name).toBe('Outpost');
    expect(['sw.application', 'sw.block']).toContain(doc.type);
    expect(String(doc.version)).toMatch(SEMVER);
    expect(typeof doc.description).toBe('string');
    expect(doc.joinable).toBe(false);
  });

  it('keeps its version equal to package.json', () => {
    const pkg = JSON.parse(read('package.json')) as { version: string };
    expect(doc.version).toBe(pkg.version);
  });

  it('lists the default device type among the supported ones', () => {
    expect(data.defaultDeviceType).toBe('raspberrypi4-64');
    expect(Array.isArray(data.supportedDeviceTypes)).toBe(true);
    const supported = data.supportedDeviceTypes as unknown[];
    expect(supported).toContain(data.defaultDeviceType);
    expect(supported).toEqual(expect.arrayContaining(['raspberrypi4-64', 'raspberrypi5', 'raspberrypi3-64', 'generic-amd64']));
    expect(new Set(supported).size).toBe(supported.length);
  });
});
