import { registerCount } from '../../hal/modbus/codec.js';
import { typeFitsTable } from '../../hal/modbus/driver.js';
import { isLoopbackHost } from '../api/request-policy.js';
import { isOutpostError } from '../errors/outpost-error.js';
import { compileRoute } from '../routes/index.js';
import { checkBrokerSemantics } from '../broker/schema.js';
import { checkUplinkSemantics } from '../uplink/schema.js';
import { isHostOrIp } from './hosts.js';
import type { ConfigProblem } from './error-format.js';
import type { DeviceConfig, OutpostConfig } from './schema.js';
import { checkSystemSemantics } from './semantic-system.js';

/** Where a point is declared and what the rest of the config may do with it. */
export interface PointInfo {
  readonly path: string;
  readonly device: string;
  readonly kind: string;
  readonly writable: boolean;
  readonly valueType: 'number' | 'boolean' | 'string';
}

/** Index of every point (device points and derived points) by id. */
export function indexPoints(config: OutpostConfig): Map<string, PointInfo> {
  return collectPoints(config, new Set()).points;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * The point index, tolerant of elements the schema rejected (`invalid`: 'devices/2', 'derived/0'…):
 * their points are indexed by id only and listed in `uncertain`, so a rule that names them is not
 * reported as naming a missing point while the device itself is reported by the schema.
 */
function collectPoints(config: OutpostConfig, invalid: ReadonlySet<string>): { points: Map<string, PointInfo>; uncertain: Set<string> } {
  const points = new Map<string, PointInfo>();
  const uncertain = new Set<string>();
  listOf(config.devices).forEach((d, di) => {
    if (!isRecord(d)) return;
    if (invalid.has('devices') || invalid.has(`devices/${di}`)) {
      listOf(d['points']).forEach((p, pi) => {
        const id = isRecord(p) ? p['id'] : undefined;
        if (typeof id !== 'string' || points.has(id)) return;
        points.set(id, { path: `devices[${di}].points[${pi}]`, device: String(d['id']), kind: String(d['kind']), writable: true, valueType: 'number' });
        uncertain.add(id);
      });
      return;
    }
    indexDevice(d as unknown as DeviceConfig, di, points);
  });
  listOf(config.derived).forEach((dp, i) => {
    if (!isRecord(dp) || typeof dp['id'] !== 'string' || points.has(dp['id'])) return;
    const from = typeof dp['from'] === 'string' ? points.get(dp['from']) : undefined;
    points.set(dp['id'], { path: `derived[${i}]`, device: from?.device ?? 'derived', kind: 'derived', writable: false, valueType: 'number' });
    if (invalid.has(`derived/${i}`)) uncertain.add(dp['id']);
  });
  return { points, uncertain };
}

function indexDevice(d: DeviceConfig, di: number, points: Map<string, PointInfo>): void {
  d.points.forEach((p, pi) => {
    let valueType: PointInfo['valueType'] = 'number';
    let writable = false;
    if (d.kind === 'gpio') {
      const gp = p as Extract<typeof d.points[number], { pin: number }>;
      valueType = 'boolean';
      writable = gp.direction === 'out' && gp.writable;
    } else if (d.kind === 'modbus') {
      const mp = d.points[pi] as (typeof d.points)[number];
      valueType = mp.type === 'bool' || mp.type === 'bit' ? 'boolean' : mp.type === 'string' ? 'string' : 'number';
      writable = mp.writable && (mp.table === 'coil' || mp.table === 'holding');
    } else if (d.kind === 'opcua') {
      writable = d.points[pi]?.writable ?? false;
    } else if (d.kind === 'serial') {
      const t = d.points[pi]?.type ?? 'number';
      valueType = t === 'integer' ? 'number' : t;
    }
    if (!points.has(p.id)) points.set(p.id, { path: `devices[${di}].points[${pi}]`, device: d.id, kind: d.kind, writable, valueType });
  });
}

function regexProblem(pattern: string): string | null {
  try {
    new RegExp(pattern);
    return null;
  } catch {
    return 'is not a valid regular expression';
  }
}

/**
 * Cross-reference checks the schema cannot express: unique ids, references to existing and
 * writable points, Modbus type/table/address fit, GPIO directions, serial port ownership, routes,
 * bind hosts. Returns every problem found (empty when the config is consistent).
 *
 * `invalid` names the elements the schema rejected ('devices/2', 'rules/0', 'api/port', 'devices'
 * when not a list…): they are skipped, so the semantic problems of the rest are reported in the same
 * pass as the schema problems, without follow-on noise from the broken elements.
 */
export function checkSemantics(config: OutpostConfig, invalid: ReadonlySet<string> = new Set()): ConfigProblem[] {
  // Usable: neither the element, nor its section, nor anything inside it was rejected by the schema.
  const touched = new Set([...invalid].map((k) => k.split('/')[0] as string));
  const ok = (key: string) => !invalid.has(key) && !invalid.has(key.split('/')[0] as string) && (key.includes('/') || !touched.has(key));
  const problems: ConfigProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  const firstSeen = new Map<string, string>();
  const unique = (kind: string, id: string, path: string) => {
    const key = `${kind}:${id}`;
    const prev = firstSeen.get(key);
    if (prev) add(`${path}.id`, `duplicate ${kind} id '${id}' (first declared at ${prev})`);
    else firstSeen.set(key, path);
  };
  const serialOwners = new Map<string, string>();
  const own = (port: string, path: string) => {
    const prev = serialOwners.get(port);
    if (prev) add(path, `serial port '${port}' is already used by ${prev}; a port belongs to one driver`);
    else serialOwners.set(port, path);
  };

  listOf(config.devices).forEach((raw, di) => {
    const dpath = `devices[${di}]`;
    if (!isRecord(raw)) return;
    if (typeof raw['id'] === 'string') unique('device', raw['id'], dpath);
    listOf(raw['points']).forEach((p, pi) => {
      if (isRecord(p) && typeof p['id'] === 'string') unique('point', p['id'], `${dpath}.points[${pi}]`);
    });
    if (!ok(`devices/${di}`)) return;
    const d = raw as unknown as DeviceConfig;
    if (d.kind === 'modbus') {
      if (d.connection.type === 'tcp' && !isHostOrIp(d.connection.host)) add(`${dpath}.connection.host`, `${JSON.stringify(d.connection.host)} is not an IP address or host name`);
      if (d.connection.type === 'rtu') own(d.connection.port, `${dpath}.connection.port`);
      const groups = new Set(['default', ...d.pollGroups.map((g) => g.id)]);
      d.points.forEach((p, pi) => {
        const pp = `${dpath}.points[${pi}]`;
        if (!typeFitsTable(p)) {
          add(`${pp}.type`, p.type === 'bool' ? `type bool needs table coil or discrete, not ${p.table}` : `table ${p.table} holds bits: use type bool`);
        }
        if (p.type === 'bit' && p.bit === undefined) add(pp, "type bit needs 'bit' (0-15)");
        if (p.type === 'string' && p.length === undefined) add(pp, "type string needs 'length' (registers)");
        const n = registerCount(p.type, p.length);
        if (p.address + n - 1 > 65535) add(`${pp}.address`, `must be ≤ ${65536 - n} for a ${p.type} (${n} registers)`);
        if (n > d.maxRegistersPerRequest) add(pp, `needs ${n} registers, more than maxRegistersPerRequest ${d.maxRegistersPerRequest}`);
        if (p.pollGroup !== undefined && !groups.has(p.pollGroup)) add(`${pp}.pollGroup`, `no poll group '${p.pollGroup}' on this device`);
        if (p.writable && (p.table === 'discrete' || p.table === 'input')) add(`${pp}.writable`, `table ${p.table} is read-only`);
      });
    }
    if (d.kind === 'gpio') {
      const pins = new Map<number, string>();
      d.points.forEach((p, pi) => {
        const pp = `${dpath}.points[${pi}]`;
        const prev = pins.get(p.pin);
        if (prev) add(`${pp}.pin`, `pin ${p.pin} is already used by ${prev}`);
        else pins.set(p.pin, pp);
        if (p.direction === 'out' && p.safeState === undefined) add(pp, "an output needs 'safeState' (applied at start and shutdown)");
        if (p.direction === 'in' && p.writable) add(`${pp}.writable`, 'an input cannot be writable');
      });
    }
    if (d.kind === 'opcua' && d.connection.type === 'opcua') {
      const c = d.connection;
      if ((c.securityMode === 'None') !== (c.securityPolicy === 'None')) {
        add(`${dpath}.connection`, `securityMode ${c.securityMode} needs ${c.securityMode === 'None' ? 'securityPolicy None' : 'a securityPolicy other than None'}`);
      }
    }
    if (d.kind === 'serial') {
      if (d.connection.type === 'serial') own(d.connection.path, `${dpath}.connection.path`);
      if (d.framing?.type === 'regex') {
        const r = regexProblem(d.framing.pattern);
        if (r) add(`${dpath}.framing.pattern`, r);
      }
      d.points.forEach((p, pi) => {
        const pp = `${dpath}.points[${pi}]`;
        const r = regexProblem(p.match);
        if (r) add(`${pp}.match`, r);
        if (p.field !== undefined && p.group !== undefined) add(pp, "use either 'field' or 'group', not both");
        if (p.transaction !== undefined && !d.transactions.some((t) => t.id === p.transaction)) add(`${pp}.transaction`, `no transaction '${p.transaction}' on this device`);
      });
      d.transactions.forEach((t, ti) => {
        if (t.expect !== undefined) {
          const r = regexProblem(t.expect);
          if (r) add(`${dpath}.transactions[${ti}].expect`, r);
        }
      });
    }
  });

  const { points, uncertain } = collectPoints(config, invalid);
  const derived = listOf(config.derived) as OutpostConfig['derived'];
  derived.forEach((dp, i) => {
    if (!ok(`derived/${i}`)) return;
    unique('point', dp.id, `derived[${i}]`);
    if (!points.has(dp.from)) add(`derived[${i}].from`, `no point '${dp.from}'`);
    else if (dp.from === dp.id) add(`derived[${i}].from`, 'a derived point cannot be computed from itself');
  });
  // A derived point may use another derived point, but not in a cycle.
  const derivedFrom = new Map(derived.filter((d, i) => ok(`derived/${i}`)).map((d) => [d.id, d.from]));
  derived.forEach((dp, i) => {
    if (!ok(`derived/${i}`)) return;
    const seen = new Set<string>([dp.id]);
    for (let cur = derivedFrom.get(dp.id); cur !== undefined; cur = derivedFrom.get(cur)) {
      if (seen.has(cur)) {
        add(`derived[${i}].from`, `derived points form a cycle through '${cur}'`);
        break;
      }
      seen.add(cur);
    }
  });

  (listOf(config.rules) as OutpostConfig['rules']).forEach((r, i) => {
    const rp = `rules[${i}]`;
    if (isRecord(r) && typeof r.id === 'string') unique('rule', r.id, rp);
    if (!ok(`rules/${i}`)) return;
    const src = points.get(r.point);
    if (!src) add(`${rp}.point`, `no point '${r.point}'`);
    else if (src.valueType === 'string' && !uncertain.has(r.point)) add(`${rp}.point`, `point '${r.point}' is a string; threshold rules need numbers or booleans`);
    const actions = [...r.onTrigger.map((a, j) => [a, `${rp}.onTrigger[${j}]`] as const), ...r.onRelease.map((a, j) => [a, `${rp}.onRelease[${j}]`] as const)];
    for (const [a, ap] of actions) {
      const target = points.get(a.write.point);
      if (!target) add(`${ap}.write.point`, `no point '${a.write.point}'`);
      else if (uncertain.has(a.write.point)) continue;
      else if (!target.writable) add(`${ap}.write.point`, `point '${a.write.point}' is not writable (declare it writable: true on an output, coil or holding register)`);
      else if (target.valueType === 'boolean' && typeof a.write.value !== 'boolean' && a.write.value !== 0 && a.write.value !== 1) {
        add(`${ap}.write.value`, `point '${a.write.point}' takes true or false`);
      } else if (target.valueType === 'number' && typeof a.write.value !== 'number') {
        add(`${ap}.write.value`, `point '${a.write.point}' takes a number`);
      }
    }
  });

  // Two triggered rules holding one output both own it (interlocks): they must drive it to the same value.
  const tripValue = new Map<string, { value: unknown; path: string }>();
  (listOf(config.rules) as OutpostConfig['rules']).forEach((r, i) => {
    if (!ok(`rules/${i}`)) return;
    r.onTrigger.forEach((a, j) => {
      const prev = tripValue.get(a.write.point);
      const path = `rules[${i}].onTrigger[${j}]`;
      if (!prev) tripValue.set(a.write.point, { value: a.write.value, path });
      else if (prev.value !== a.write.value && !prev.path.startsWith(`rules[${i}].`)) {
        add(`${path}.write.value`, `point '${a.write.point}' is also held by ${prev.path} with ${JSON.stringify(prev.value)}; triggered rules holding one output must write the same value`);
      }
    });
  });

  const routes = listOf(config.routes).filter(isRecord);
  listOf(config.routes).forEach((r, i) => {
    if (!isRecord(r)) return;
    if (typeof r['id'] === 'string') unique('route', r['id'], `routes[${i}]`);
    // The grammar is checked even when the schema rejected another key of the route (one pass).
    if (typeof r['route'] !== 'string' || r['route'] === '') return;
    try {
      compileRoute(r['route']);
    } catch (e) {
      if (isOutpostError(e, 'OUTPOST_E_ROUTE_SYNTAX')) add(`routes[${i}].route`, e.message);
      else throw e;
    }
  });

  if (ok('upstream') && !invalid.has('routes')) checkUplinkSemantics(config.upstream, new Set(routes.flatMap((r) => (typeof r['id'] === 'string' ? [r['id']] : []))), add);
  checkSystemSemantics(config, ok, add);
  if (ok('broker')) checkBrokerSemantics(config.broker, ok('api') && config.api.enabled ? config.api.port : null, add);
  if (ok('api') && config.api.enabled && !config.api.requireToken && !isLoopbackHost(config.api.host)) {
    add('api.requireToken', `must be true when api.host (${config.api.host}) is not a loopback address: anyone on the network could write outputs`);
  }
  return problems;
}
