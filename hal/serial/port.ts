/**
 * A byte stream to a serial device as the driver sees it. The real implementation wraps the
 * serialport package; the simulator generates a device's output.
 */
export interface SerialLink {
  open(): Promise<void>;
  close(): Promise<void>;
  isOpen(): boolean;
  write(data: Buffer): Promise<void>;
  /** Receives every chunk of bytes as it arrives. One listener. */
  onData(listener: (chunk: Buffer) => void): void;
  /** Called when the port closes unexpectedly (device unplugged). */
  onClose(listener: () => void): void;
}
