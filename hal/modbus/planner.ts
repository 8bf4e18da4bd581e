import { isBitTable, registerCount } from './codec.js';
import type { ModbusPointConfig, ModbusTable } from './schema.js';

/** One read request covering one or more points. */
export interface ReadBlock {
  readonly unitId: number;
  readonly table: ModbusTable;
  readonly address: number;
  readonly count: number;
  readonly points: readonly ModbusPointConfig[];
}

export interface PlanLimits {
  /** Unused registers (bits ÷ 16 for bit tables) bridged between two points. */
  readonly maxGap: number;
  readonly maxRegistersPerRequest: number;
}

const BIT_LIMIT = 2000;
const REGISTER_LIMIT = 125;

/** Key of a block, used to remember blocks that must be read point by point. */
export function blockKey(b: Pick<ReadBlock, 'unitId' | 'table' | 'address' | 'count'>): string {
  return `${b.unitId}/${b.table}/${b.address}/${b.count}`;
}

/**
 * Plans the fewest read requests for a set of points: points of one unit and table are sorted by
 * address and merged while the merged span stays within the protocol limit (125 registers for
 * FC3/FC4, 2000 bits for FC1/FC2, and `maxRegistersPerRequest`) and each gap is at most `maxGap`.
 * Pure function: same points, same plan.
 */
export function planReads(points: readonly ModbusPointConfig[], limits: PlanLimits): ReadBlock[] {
  const groups = new Map<string, ModbusPointConfig[]>();
  for (const p of points) {
    const k = `${p.unitId}/${p.table}`;
    const list = groups.get(k) ?? [];
    list.push(p);
    groups.set(k, list);
  }
  const blocks: ReadBlock[] = [];
  for (const list of groups.values()) {
    list.sort((a, b) => a.address - b.address || registerCount(b.type, b.length) - registerCount(a.type, a.length));
    const first = list[0] as ModbusPointConfig;
    const bits = isBitTable(first.table);
    const limit = bits ? BIT_LIMIT : Math.min(REGISTER_LIMIT, limits.maxRegistersPerRequest);
    const gap = bits ? limits.maxGap * 16 : limits.maxGap;
    let cur: { start: number; end: number; points: ModbusPointConfig[] } | null = null;
    for (const p of list) {
      const end = p.address + registerCount(p.type, p.length);
      if (cur && p.address - cur.end <= gap && Math.max(cur.end, end) - cur.start <= limit) {
        cur.end = Math.max(cur.end, end);
        cur.points.push(p);
        continue;
      }
      if (cur) blocks.push({ unitId: first.unitId, table: first.table, address: cur.start, count: cur.end - cur.start, points: cur.points });
      cur = { start: p.address, end, points: [p] };
    }
    if (cur) blocks.push({ unitId: first.unitId, table: first.table, address: cur.start, count: cur.end - cur.start, points: cur.points });
  }
  return blocks;
}

/** Splits a block into one block per point (used after an exception 2 on a merged read). */
export function splitBlock(block: ReadBlock): ReadBlock[] {
  return block.points.map((p) => ({
    unitId: block.unitId,
    table: block.table,
    address: p.address,
    count: registerCount(p.type, p.length),
    points: [p],
  }));
}
