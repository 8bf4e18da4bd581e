/** Error codes of the system integration layer: the systemd notifier and watchdog. */
export const SYSTEM_CODES = {
  OUTPOST_E_SYSTEMD_NOTIFY: {
    area: 'system',
    summary:
      'A readiness, status, watchdog or stopping notification could not be sent to systemd (systemd-notify missing, failed or timed out); details name the message and the exit status.',
    input: false,
  },
} as const;
