import { OutpostError } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import { SimSignal } from '../sim-signal.js';
import type { PointValue } from '../types.js';
import type { MonitorItem, OpcuaDataValue, OpcuaPort, OpcuaSubscriptionHandle } from './port.js';

interface SimVariable {
  readonly signal: SimSignal | null;
  value: PointValue;
  written: boolean;
  readonly writable: boolean;
}

/**
 * An OPC UA server's address space in memory, seen through OpcuaPort.
 * Invariants: unknown node ids answer BadNodeIdUnknown; writes to read-only variables answer
 * BadNotWritable; monitored items notify only on change beyond their deadband, at their sampling
 * interval, as a server's data-change filter does; a disconnect stops every subscription.
 */
export class SimOpcuaPort implements OpcuaPort {
  private open = false;
  private readonly variables = new Map<string, SimVariable>();
  private readonly subscriptions = new Set<() => void>();
  private readonly disconnectListeners: Array<() => void> = [];

  constructor(private readonly clock: Clock) {}

  addVariable(nodeId: string, initial: PointValue, signal: SimSignal | null, writable: boolean): void {
    this.variables.set(nodeId, { signal, value: initial, written: false, writable });
  }

  has(nodeId: string): boolean {
    return this.variables.has(nodeId);
  }

  async connect(): Promise<void> {
    this.open = true;
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    for (const stop of this.subscriptions) stop();
    this.subscriptions.clear();
  }

  /** Simulates the server going away (for tests): subscriptions stop and listeners are told. */
  drop(): void {
    void this.close();
    for (const l of this.disconnectListeners) l();
  }

  isOpen(): boolean {
    return this.open;
  }

  onDisconnect(listener: () => void): void {
    this.disconnectListeners.push(listener);
  }

  async read(nodeIds: readonly string[]): Promise<OpcuaDataValue[]> {
    this.requireOpen();
    return nodeIds.map((id) => this.current(id));
  }

  async write(nodeId: string, value: PointValue): Promise<void> {
    this.requireOpen();
    const v = this.variables.get(nodeId);
    if (!v) throw new OutpostError('OUTPOST_E_OPCUA_STATUS', 'server refused the write', { details: { nodeId, status: 'BadNodeIdUnknown' } });
    if (!v.writable) throw new OutpostError('OUTPOST_E_OPCUA_STATUS', 'server refused the write', { details: { nodeId, status: 'BadNotWritable' } });
    v.value = value;
    v.written = true;
  }

  async subscribe(
    _publishingIntervalMs: number,
    items: readonly MonitorItem[],
    onChange: (nodeId: string, value: OpcuaDataValue) => void,
  ): Promise<OpcuaSubscriptionHandle> {
    this.requireOpen();
    const timers: unknown[] = [];
    for (const item of items) {
      let last: OpcuaDataValue | null = null;
      const sample = () => {
        const dv = this.current(item.nodeId);
        if (last && !changed(last, dv, item)) return;
        last = dv;
        onChange(item.nodeId, dv);
      };
      sample();
      timers.push(this.clock.setInterval(sample, Math.max(50, item.samplingIntervalMs)));
    }
    const stop = () => timers.forEach((t) => this.clock.clearInterval(t));
    this.subscriptions.add(stop);
    return {
      close: async () => {
        stop();
        this.subscriptions.delete(stop);
      },
    };
  }

  private current(nodeId: string): OpcuaDataValue {
    const v = this.variables.get(nodeId);
    if (!v) return { value: null, status: 'BadNodeIdUnknown' };
    if (v.signal && !v.written) v.value = v.signal.valueAt(this.clock.now());
    return { value: v.value, status: 'Good', sourceTime: this.clock.now() };
  }

  private requireOpen(): void {
    if (!this.open) throw new OutpostError('OUTPOST_E_HAL_NOT_CONNECTED', 'opc ua session is not open');
  }
}

function changed(a: OpcuaDataValue, b: OpcuaDataValue, item: MonitorItem): boolean {
  if (a.status !== b.status) return true;
  if (typeof a.value === 'number' && typeof b.value === 'number' && item.deadband && 'absolute' in item.deadband) {
    return Math.abs(a.value - b.value) > item.deadband.absolute;
  }
  return a.value !== b.value;
}
