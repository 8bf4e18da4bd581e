/**
 * A realistic register map for the requests-per-cycle benchmark: several "devices" behind one
 * gateway, each a run of mixed-type points with small gaps (reserved registers), separated by larger
 * gaps; plus input registers, coils and discrete inputs. Deterministic (seeded).
 */
import { seededRandom as rng } from '../../hal/sim-signal.js';

export interface RawPoint {
  id: string;
  table: 'holding' | 'input' | 'coil' | 'discrete';
  address: number;
  type: string;
}


const TYPES: Array<[string, number, number]> = [
  // type, registers, weight
  ['uint16', 1, 40],
  ['int16', 1, 15],
  ['int32', 2, 12],
  ['uint32', 2, 8],
  ['float32', 2, 20],
  ['float64', 4, 3],
  ['uint64', 4, 2],
];

export function realisticMap(seed = 42, limit = 1900): RawPoint[] {
  const r = rng(seed);
  const pick = () => {
    let x = r() * TYPES.reduce((s, t) => s + t[2], 0);
    for (const t of TYPES) if ((x -= t[2]) < 0) return t;
    return TYPES[0] as [string, number, number];
  };
  const points: RawPoint[] = [];
  const regs = (table: 'holding' | 'input', groups: number) => {
    let a = 0;
    for (let g = 0; g < groups && a < limit; g++) {
      const n = 4 + Math.floor(r() * 12);
      for (let i = 0; i < n && a < limit; i++) {
        const [type, count] = pick();
        points.push({ id: `${table}.${a}`, table, address: a, type });
        a += count + (r() < 0.25 ? 1 + Math.floor(r() * 4) : 0); // a reserved register now and then
      }
      a += r() < 0.3 ? 60 + Math.floor(r() * 100) : 5 + Math.floor(r() * 20); // next device block
    }
  };
  regs('holding', 30);
  regs('input', 8);
  for (const table of ['coil', 'discrete'] as const) {
    let a = 0;
    for (let i = 0; i < 40; i++) {
      points.push({ id: `${table}.${a}`, table, address: a, type: 'bool' });
      a += 1 + Math.floor(r() * (r() < 0.2 ? 200 : 6));
    }
  }
  return points;
}
