import { registerCount } from '../../hal/modbus/codec.js';
import { typeFitsTable } from '../../hal/modbus/driver.js';
import { isOutpostError } from '../errors/outpost-error.js';
import { compileRoute } from '../routes/index.js';
import { checkBrokerSemantics } from '../broker/schema.js';
import { checkUplinkSemantics } from '../uplink/schema.js';
import type { ConfigProblem } from './error-format.js';
import type { OutpostConfig } from './schema.js';

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
  const points = new Map<string, PointInfo>();
  config.devices.forEach((d, di) => {
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
  });
  config.derived.forEach((dp, i) => {
    const device = points.get(dp.from)?.device ?? 'derived';
    if (!points.has(dp.id)) points.set(dp.id, { path: `derived[${i}]`, device, kind: 'derived', writable: false, valueType: 'number' });
  });
  return points;
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
 * writable points, Modbus type/table/address fit, GPIO directions, serial port ownership, routes.
 * Returns every problem found (empty when the config is consistent).
 */
export function checkSemantics(config: OutpostConfig): ConfigProblem[] {
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

  config.devices.forEach((d, di) => {
    const dpath = `devices[${di}]`;
    unique('device', d.id, dpath);
    d.points.forEach((p, pi) => unique('point', p.id, `${dpath}.points[${pi}]`));
    if (d.kind === 'modbus') {
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

  const points = indexPoints(config);
  config.derived.forEach((dp, i) => {
    unique('point', dp.id, `derived[${i}]`);
    if (!points.has(dp.from)) add(`derived[${i}].from`, `no point '${dp.from}'`);
    else if (dp.from === dp.id) add(`derived[${i}].from`, 'a derived point cannot be computed from itself');
  });
  // A derived point may use another derived point, but not in a cycle.
  const derivedFrom = new Map(config.derived.map((d) => [d.id, d.from]));
  config.derived.forEach((dp, i) => {
    const seen = new Set<string>([dp.id]);
    for (let cur = derivedFrom.get(dp.id); cur !== undefined; cur = derivedFrom.get(cur)) {
      if (seen.has(cur)) {
        add(`derived[${i}].from`, `derived points form a cycle through '${cur}'`);
        break;
      }
      seen.add(cur);
    }
  });

  config.rules.forEach((r, i) => {
    const rp = `rules[${i}]`;
    unique('rule', r.id, rp);
    const src = points.get(r.point);
    if (!src) add(`${rp}.point`, `no point '${r.point}'`);
    else if (src.valueType === 'string') add(`${rp}.point`, `point '${r.point}' is a string; threshold rules need numbers or booleans`);
    const actions = [...r.onTrigger.map((a, j) => [a, `${rp}.onTrigger[${j}]`] as const), ...r.onRelease.map((a, j) => [a, `${rp}.onRelease[${j}]`] as const)];
    for (const [a, ap] of actions) {
      const target = points.get(a.write.point);
      if (!target) add(`${ap}.write.point`, `no point '${a.write.point}'`);
      else if (!target.writable) add(`${ap}.write.point`, `point '${a.write.point}' is not writable (declare it writable: true on an output, coil or holding register)`);
      else if (target.valueType === 'boolean' && typeof a.write.value !== 'boolean' && a.write.value !== 0 && a.write.value !== 1) {
        add(`${ap}.write.value`, `point '${a.write.point}' takes true or false`);
      } else if (target.valueType === 'number' && typeof a.write.value !== 'number') {
        add(`${ap}.write.value`, `point '${a.write.point}' takes a number`);
      }
    }
  });

  config.routes.forEach((r, i) => {
    unique('route', r.id, `routes[${i}]`);
    try {
      compileRoute(r.route);
    } catch (e) {
      if (isOutpostError(e, 'OUTPOST_E_ROUTE_SYNTAX')) add(`routes[${i}].route`, e.message);
      else throw e;
    }
  });

  checkUplinkSemantics(config.upstream, new Set(config.routes.map((r) => r.id)), add);
  checkBrokerSemantics(config.broker, config.api.enabled ? config.api.port : null, add);

  if (config.api.enabled && config.broker.enabled && config.api.port !== 0 && config.api.port === config.broker.port) {
    add('broker.port', `port ${config.broker.port} is also api.port`);
  }
  return problems;
}
