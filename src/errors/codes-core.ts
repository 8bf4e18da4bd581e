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
} as const;
