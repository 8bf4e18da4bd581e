import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import type { CommandRegistry } from '../../src/commands/command.js';
import { describeCause } from '../../src/errors/outpost-error.js';
import { CommandDispatcher, type CommandReply } from '../../src/uplink/commands.js';

export interface OtaAgentServerOptions {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Longest request line accepted (bytes). */
  readonly maxLineBytes?: number;
  /** A connection that sends no complete line within this is answered with an error and closed. */
  readonly requestTimeoutMs?: number;
  /** `idle()` resolves once nothing has happened for this long (socket activation starts the agent again). */
  readonly idleExitMs?: number;
}

/**
 * The root side of the OTA agent's unix socket. One request per connection: a JSON line
 * `{"id","name","params"}` (the uplink's command envelope), answered with JSON reply lines (`accepted`,
 * `progress`…, then exactly one `ok` or `error`) by the same CommandDispatcher the uplink uses, then the
 * connection is closed.
 * Invariants: a client never stops the agent (bad JSON, a line over maxLineBytes, silence, a dropped
 * connection each cost that connection only); a command keeps running when its client goes away (an
 * install is not abandoned because the runtime restarted); `idle()` resolves only when no connection is
 * open and no command runs, for idleExitMs in a row.
 */
export class OtaAgentServer {
  private readonly dispatcher: CommandDispatcher;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private running = 0;
  private lastActivity: number;
  private readonly maxLineBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly idleExitMs: number;

  constructor(
    registry: CommandRegistry,
    private readonly o: OtaAgentServerOptions,
  ) {
    this.dispatcher = new CommandDispatcher(registry, o.logger, 4);
    this.maxLineBytes = o.maxLineBytes ?? 64 * 1024;
    this.requestTimeoutMs = o.requestTimeoutMs ?? 10_000;
    this.idleExitMs = o.idleExitMs ?? 60_000;
    this.lastActivity = o.clock.monotonic();
    this.server = createServer((s) => this.onConnection(s));
  }

  /** Listens on a socket path, or on an inherited file descriptor (systemd socket activation: fd 3). */
  listen(at: { path: string } | { fd: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        this.server.on('error', (e) => this.o.logger.error({ err: describeCause(e) }, 'agent socket error'));
        resolve();
      };
      if ('fd' in at) this.server.listen({ fd: at.fd }, done);
      else this.server.listen({ path: at.path }, done);
    });
  }

  /** Resolves once the agent has been idle for idleExitMs (checked every second). */
  async idle(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const quiet = this.sockets.size === 0 && this.running === 0 && this.o.clock.monotonic() - this.lastActivity >= this.idleExitMs;
      if (quiet || signal?.aborted) return;
      await this.o.clock.sleep(1000, signal).catch(() => undefined);
    }
  }

  /** Stops accepting and closes open connections; running commands are aborted through their signal. */
  async close(): Promise<void> {
    this.dispatcher.stop();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private touch(): void {
    this.lastActivity = this.o.clock.monotonic();
  }

  private onConnection(socket: Socket): void {
    this.touch();
    this.sockets.add(socket);
    let buf = Buffer.alloc(0);
    let handled = false;
    const send = (reply: CommandReply) => {
      if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(reply)}\n`);
    };
    const refuse = (message: string) => {
      handled = true;
      send({ id: null, status: 'error', error: { code: 'OUTPOST_E_OTA_AGENT', message } });
      socket.end();
    };
    const timer = this.o.clock.setTimeout(() => {
      if (!handled) refuse('no request line within the time limit');
    }, this.requestTimeoutMs);
    socket.on('data', (chunk: Buffer) => {
      if (handled) return;
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > this.maxLineBytes) refuse(`request line longer than ${this.maxLineBytes} bytes`);
        return;
      }
      handled = true;
      this.o.clock.clearTimeout(timer);
      const line = buf.subarray(0, nl);
      this.running++;
      void this.dispatcher
        .handleRaw(line, send)
        .finally(() => {
          this.running--;
          this.touch();
          socket.end();
        });
    });
    socket.on('error', (e) => this.o.logger.debug({ err: describeCause(e) }, 'agent client connection error'));
    socket.on('close', () => {
      this.o.clock.clearTimeout(timer);
      this.sockets.delete(socket);
      this.touch();
    });
  }
}
