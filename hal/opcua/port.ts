import type { PointValue } from '../types.js';

/** A value as an OPC UA server reports it. `status` is the StatusCode name (`Good`, `BadNodeIdUnknown`, `UncertainLastUsableValue`…). */
export interface OpcuaDataValue {
  readonly value: PointValue | null;
  readonly status: string;
  /** Server/source timestamp, ms since the epoch, when the server sent one. */
  readonly sourceTime?: number;
}

export interface MonitorItem {
  readonly nodeId: string;
  readonly samplingIntervalMs: number;
  readonly queueSize: number;
  readonly deadband?: { readonly absolute: number } | { readonly percent: number };
}

export interface OpcuaSubscriptionHandle {
  close(): Promise<void>;
}

/**
 * An OPC UA client session as the driver sees it. The real implementation wraps node-opcua's
 * OPCUAClient + ClientSession; the simulator holds variables in memory.
 * Errors are OutpostError (OUTPOST_E_HAL_NOT_CONNECTED, OUTPOST_E_OPCUA_STATUS with `details.status`).
 */
export interface OpcuaPort {
  connect(): Promise<void>;
  close(): Promise<void>;
  isOpen(): boolean;
  read(nodeIds: readonly string[]): Promise<OpcuaDataValue[]>;
  /** Creates monitored items (in chunks the server accepts) and calls `onChange` for every notification. */
  subscribe(
    publishingIntervalMs: number,
    items: readonly MonitorItem[],
    onChange: (nodeId: string, value: OpcuaDataValue) => void,
  ): Promise<OpcuaSubscriptionHandle>;
  write(nodeId: string, value: PointValue): Promise<void>;
  /** Called when the session is lost; the driver re-creates subscriptions after the next connect. */
  onDisconnect(listener: () => void): void;
}
