import { OutpostError } from '../../src/errors/outpost-error.js';

export type FlowState = 'idle' | 'downloading' | 'verifying' | 'installing' | 'reboot-pending' | 'trial-boot' | 'committed' | 'rolled-back';

export type FlowEvent =
  | 'request' // an update from a URL
  | 'request-local' // an update from a local file
  | 'downloaded'
  | 'verified'
  | 'installed'
  | 'failed' // the state's action failed; nothing on the boot side changed
  | 'cancelled'
  | 'booted-target' // first boot after the switch came up on the new slot
  | 'booted-other' // the bootloader fell back to the old slot
  | 'healthy' // the trial boot passed the health checks
  | 'gave-up'; // loop breaker after the switch: go back to the old slot

/**
 * The update flow as a table: (from-state, event) → to-state. Anything not listed is refused.
 * idle → downloading → verifying → installing → reboot-pending → trial-boot → committed | rolled-back.
 */
export const TRANSITIONS: { readonly [S in FlowState]: Readonly<Partial<Record<FlowEvent, FlowState>>> } = {
  idle: { request: 'downloading', 'request-local': 'verifying' },
  downloading: { downloaded: 'verifying', failed: 'idle', cancelled: 'idle' },
  verifying: { verified: 'installing', failed: 'idle', cancelled: 'idle' },
  installing: { installed: 'reboot-pending', failed: 'idle', cancelled: 'idle' },
  'reboot-pending': { 'booted-target': 'trial-boot', 'booted-other': 'rolled-back', cancelled: 'idle', 'gave-up': 'rolled-back' },
  'trial-boot': { healthy: 'committed', 'booted-other': 'rolled-back', 'gave-up': 'rolled-back' },
  committed: { request: 'downloading', 'request-local': 'verifying', 'booted-other': 'rolled-back' },
  'rolled-back': { request: 'downloading', 'request-local': 'verifying' },
};

/** States with no update in flight: a new request may start. */
export const RESTING: readonly FlowState[] = ['idle', 'committed', 'rolled-back'];
/** States before the bootloader is switched: a failure there leaves the boot side as it was. */
export const PRE_SWITCH: readonly FlowState[] = ['downloading', 'verifying', 'installing'];

export function nextState(from: FlowState, event: FlowEvent): FlowState {
  const to = TRANSITIONS[from][event];
  if (to === undefined) throw new OutpostError('OUTPOST_E_OTA_STATE', `event ${event} is not allowed in state ${from}`, { details: { from, event } });
  return to;
}

/** Share of the overall progress bar each state covers (start, end) in percent. */
export const PROGRESS_SPAN: Readonly<Partial<Record<FlowState, readonly [number, number]>>> = {
  downloading: [0, 40],
  verifying: [40, 50],
  installing: [50, 99],
  'reboot-pending': [100, 100],
};
