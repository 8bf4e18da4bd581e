/** Error codes of the durable store (src/store/) and the MQTT uplink (src/uplink/). */
export const UPLINK_CODES = {
  OUTPOST_E_STORE_FULL: {
    area: 'store',
    summary: 'A record was refused because its route, the store or the disk is full and the route\'s on-full policy is `reject-new` (or nothing older or of lower priority could be dropped).',
    input: false,
  },
  OUTPOST_E_STORE_BUSY: { area: 'store', summary: 'A record was refused because too many records wait for the disk (the disk is slower than the producers).', input: false },
  OUTPOST_E_STORE_TOO_LARGE: { area: 'store', summary: 'A record is larger than `store.maxRecordBytes`.', input: true },
  OUTPOST_E_STORE_WRITE: { area: 'store', summary: 'The store could not write or sync a segment (disk full, I/O error); the records of that write were refused.', input: false },
  OUTPOST_E_STORE_OPEN: { area: 'store', summary: 'The store directory could not be opened or recovered at start.', input: false },
  OUTPOST_E_STORE_CLOSED: { area: 'store', summary: 'A record was offered after the store stopped.', input: false },
  OUTPOST_E_UPLINK_CONFIG: { area: 'uplink', summary: 'The uplink configuration cannot be used (an unreadable certificate, key, CA or password file, a bad URL).', input: true },
  OUTPOST_E_UPLINK_COMMAND: {
    area: 'uplink',
    summary: 'A command received from the cloud was malformed (not JSON, larger than `commandLimits.maxBytes`, nested too deep, missing `name` or correlation, wrong types); it was answered with an error reply.',
    input: true,
  },
  OUTPOST_E_UPLINK_COMMAND_BUSY: {
    area: 'uplink',
    summary: 'A cloud command arrived while `commandLimits.maxConcurrent` commands were running or faster than `commandLimits.ratePerSec`; it was not run (retry later).',
    input: false,
  },
  OUTPOST_E_UPLINK_COMMAND_DUPLICATE: {
    area: 'uplink',
    summary: 'A cloud command reused the id of a command already accepted (a redelivery or a replay); it was not run again.',
    input: true,
  },
} as const;
