/** Error codes of the runtime core: configuration, CLI, runtime, HAL, local broker and API. */
export const CORE_CODES = {
  OUTPOST_E_CONFIG_READ: { area: 'config', summary: 'A configuration file or drop-in could not be read.', input: true },
  OUTPOST_E_CONFIG_PARSE: { area: 'config', summary: 'A configuration file is not valid YAML or JSON.', input: true },
  OUTPOST_E_CONFIG_INVALID: {
    area: 'config',
    summary: 'The merged configuration breaks the schema or a cross-reference rule; the message names each path and problem.',
    input: true,
  },
  OUTPOST_E_CLI_USAGE: { area: 'cli', summary: 'A command-line argument is missing or malformed.', input: true },
  OUTPOST_E_CLI_UNREACHABLE: { area: 'cli', summary: "The running gateway's local API could not be reached.", input: false },
  OUTPOST_E_UPSTREAM_CLOSED: { area: 'upstream', summary: 'A record was offered to the upstream after it stopped.', input: false },
  OUTPOST_E_UPSTREAM_WRITE: { area: 'upstream', summary: 'The upstream file could not be written (disk full, permissions).', input: false },
  OUTPOST_E_RUNTIME_UNKNOWN_POINT: { area: 'runtime', summary: 'A write or query named a point that is not configured.', input: true },
  OUTPOST_E_RUNTIME_NOT_WRITABLE: { area: 'runtime', summary: 'A write targeted a point that is not declared writable.', input: true },
  OUTPOST_E_RUNTIME_INTERLOCKED: {
    area: 'runtime',
    summary: 'A write targeted an output held by a triggered rule (an interlock); the message and `details.rule` name the rule. Refused until the rule releases, unless it has `allowOverride: true`.',
    input: false,
  },
  OUTPOST_E_RUNTIME_START: { area: 'runtime', summary: 'The runtime could not start (a port in use, an unwritable data directory, a driver failing to open).', input: false },
  OUTPOST_E_BROKER_COMMAND: { area: 'broker', summary: 'A command published on the local broker was malformed (not JSON, no value, bad reply topic).', input: true },
  OUTPOST_E_API_REQUEST: { area: 'api', summary: 'A request to the local HTTP API was malformed.', input: true },
  OUTPOST_E_COMMAND_UNKNOWN: { area: 'command', summary: 'A command named no registered handler.', input: true },
  OUTPOST_E_COMMAND_DUPLICATE: { area: 'command', summary: 'Two handlers were registered under one command name (a wiring bug).', input: false },
  OUTPOST_E_COMMAND_PARAMS: { area: 'command', summary: 'A command\'s parameters failed validation; the message names the field.', input: true },
} as const;
