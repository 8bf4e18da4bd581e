import { connect, type Socket } from 'node:net';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { MAX_RESPONSE_SIZE, expectedResponseSize, type TpmTransport } from './transport.js';

/**
 * swtpm's TCP data port: raw TPM 2.0 bytes, no framing; swtpm serves one client at a time.
 * Invariants: at most one command in flight; a response is returned only when complete
 * (its header's size arrived); any socket error or close mid-command fails that command and drops
 * the socket, and the next command reconnects.
 */
export class SwtpmTransport implements TpmTransport {
  readonly description: string;
  readonly resourceManaged = false;
  private socket: Socket | undefined;
  private busy = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly connectTimeoutMs = 5000,
  ) {
    this.description = `swtpm ${host}:${port}`;
  }

  private async ensureSocket(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return this.socket;
    const s = await new Promise<Socket>((resolve, reject) => {
      const sock = connect({ host: this.host, port: this.port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'swtpm did not accept a connection in time (it serves one client at a time)', { details: { tpm: this.description } }));
      }, this.connectTimeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        resolve(sock);
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'cannot connect to swtpm', { cause: e, details: { tpm: this.description } }));
      });
    });
    s.on('error', () => undefined);
    this.socket = s;
    return s;
  }

  async transmit(command: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.busy) throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'a TPM command is already in flight on this transport', { details: { tpm: this.description } });
    this.busy = true;
    try {
      const sock = await this.ensureSocket();
      return await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let have = 0;
        const finish = (err: OutpostError | undefined, res?: Buffer) => {
          clearTimeout(timer);
          sock.off('data', onData);
          sock.off('close', onClose);
          sock.off('error', onError);
          if (err) {
            sock.destroy();
            this.socket = undefined;
            reject(err);
          } else resolve(res as Buffer);
        };
        const onData = (d: Buffer) => {
          chunks.push(d);
          have += d.length;
          const all = chunks.length === 1 ? d : Buffer.concat(chunks, have);
          const size = expectedResponseSize(all);
          if (size === undefined) return;
          if (size < 10 || size > MAX_RESPONSE_SIZE) {
            finish(new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM response header carries an impossible size', { details: { tpm: this.description, size } }));
          } else if (have > size) {
            finish(new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM sent more bytes than its response size', { details: { tpm: this.description, size, have } }));
          } else if (have === size) finish(undefined, Buffer.from(all));
        };
        const onClose = () => finish(new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'swtpm closed the connection mid-command', { details: { tpm: this.description } }));
        const onError = (e: Error) => finish(new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'swtpm connection failed mid-command', { cause: e, details: { tpm: this.description } }));
        const timer = setTimeout(
          () => finish(new OutpostError('OUTPOST_E_TPM_TIMEOUT', 'swtpm did not answer in time', { details: { tpm: this.description, timeoutMs } })),
          timeoutMs,
        );
        sock.on('data', onData);
        sock.once('close', onClose);
        sock.once('error', onError);
        sock.write(command);
      });
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => s.destroy(), 1000).unref();
    });
  }
}

/** swtpm control-channel commands (swtpm's tpm_ioctl.h). */
export const SWTPM_CTRL = { GET_CAPABILITY: 1, INIT: 2, SHUTDOWN: 3, GET_TPMESTABLISHED: 4, STOP: 14 } as const;

/**
 * swtpm's control channel (`--ctrl type=tcp`): one short connection per command.
 * `powerCycle()` is CMD_INIT: a reset as after a power cut (no TPM2_Shutdown is sent); the TPM then needs TPM2_Startup.
 */
export class SwtpmControl {
  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs = 5000,
  ) {}

  /** Sends a control command and resolves with the response (its first u32 is the result code). */
  async send(cmd: number, payload: Buffer = Buffer.alloc(0), responseBytes = 4): Promise<Buffer> {
    const req = Buffer.alloc(4 + payload.length);
    req.writeUInt32BE(cmd, 0);
    payload.copy(req, 4);
    return new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port });
      const chunks: Buffer[] = [];
      let have = 0;
      const timer = setTimeout(() => {
        s.destroy();
        reject(new OutpostError('OUTPOST_E_TPM_TIMEOUT', 'swtpm control channel did not answer in time', { details: { port: this.port, cmd } }));
      }, this.timeoutMs);
      s.on('connect', () => s.write(req));
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        have += d.length;
        if (have >= responseBytes) {
          clearTimeout(timer);
          s.destroy();
          resolve(Buffer.concat(chunks, have));
        }
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'swtpm control channel failed', { cause: e, details: { port: this.port, cmd } }));
      });
      s.on('close', () => {
        clearTimeout(timer);
        if (have < responseBytes) reject(new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'swtpm control channel closed before answering', { details: { port: this.port, cmd } }));
      });
    });
  }

  /** A power cycle without TPM2_Shutdown (CMD_INIT, volatile state kept on disk discarded). */
  async powerCycle(): Promise<void> {
    const flags = Buffer.alloc(4);
    const res = await this.send(SWTPM_CTRL.INIT, flags);
    const result = res.readUInt32BE(0);
    if (result !== 0) throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'swtpm refused CMD_INIT', { details: { port: this.port, result } });
  }
}
