/** Error codes of the embedded local broker (src/broker/). OUTPOST_E_BROKER_COMMAND lives with the core codes. */
export const BROKER_CODES = {
  OUTPOST_E_BROKER_CONFIG: {
    area: 'broker',
    summary: 'The broker configuration cannot be used: a malformed `users[].passwordHash`, or an unreadable TLS certificate, key or CA file.',
    input: true,
  },
  OUTPOST_E_BROKER_REPLY_TO: {
    area: 'broker',
    summary: 'A write command named a `replyTo` outside the sender\'s own `<prefix>/replies/<username>/…` or one it may not read; the command was not executed and the error went to `<prefix>/commands/result/<point>`.',
    input: true,
  },
  OUTPOST_E_BROKER_BUSY: {
    area: 'broker',
    summary: 'A write command arrived while `broker.limits.maxPendingCommands` commands were running; it was not executed (retry later).',
    input: false,
  },
} as const;
