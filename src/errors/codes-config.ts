/** Error codes of configuration input (issue 11): files that are too large, not text, empty, and an unusable data directory. */
export const CONFIG_CODES = {
  OUTPOST_E_CONFIG_TOO_LARGE: {
    area: 'config',
    summary: 'A configuration file is larger than the per-file limit (1 MiB), all files together exceed 4 MiB, or config.d/ holds more than 256 drop-ins; the file was not parsed.',
    input: true,
  },
  OUTPOST_E_CONFIG_ENCODING: {
    area: 'config',
    summary: 'A configuration file is not UTF-8 text (an invalid byte sequence or a control character); the message gives the byte offset.',
    input: true,
  },
  OUTPOST_E_CONFIG_EMPTY: { area: 'config', summary: 'A configuration file holds no settings (empty, only comments, or `null`).', input: true },
  OUTPOST_E_CONFIG_DATA_DIR: {
    area: 'config',
    summary: '`gateway.dataDir` cannot be used: it runs through a file, lies on a kernel pseudo file system (/proc, /sys, /dev), or cannot be created or written.',
    input: true,
  },
} as const;
