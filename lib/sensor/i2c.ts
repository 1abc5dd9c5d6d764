// I2C for the sensor agent. The bus interface has the shape of i2c-bus's
// promisified API (`i2cWrite(addr, len, buf)`, `i2cRead(addr, len, buf)`), so
// that package can be plugged in where it loads. It does not load under Bun
// (a nan addon: ABI check, then an undefined V8 symbol; SPEC "I2C"), so the
// real bus here is /dev/i2c-N through bun:ffi on libc: open, ioctl(I2C_SLAVE)
// to pick the device, then plain read/write (the kernel's i2c-dev interface,
// Documentation/i2c/dev-interface.rst). bun:ffi needs JavaScriptCore's JIT:
// nothing that runs the agent may set BUN_JSC_useJIT=0.
//
// A bun:ffi call blocks the only JavaScript thread until it returns: no timer
// can fire during a read() or write() on a hung bus (a device holding SDA or
// SCL low). So the kernel bounds each transfer instead: when the bus is
// opened, ioctl(I2C_TIMEOUT) sets how long the adapter waits for a transfer
// before failing it with ETIMEDOUT, and ioctl(I2C_RETRIES) that it does not
// try again (the AHT20 driver has its own retry budget).

/** What i2c-bus's promisified `i2cRead` resolves to. */
export interface BytesRead {
  bytesRead: number;
  buffer: Uint8Array;
}
/** What i2c-bus's promisified `i2cWrite` resolves to. */
export interface BytesWritten {
  bytesWritten: number;
  buffer: Uint8Array;
}

/** An I2C bus: i2c-bus's PromisifiedBus, reduced to what the AHT20 needs. */
export interface I2cBus {
  /** Writes `length` bytes of `buffer` to the device at `address` (one I2C write transaction). */
  i2cWrite(address: number, length: number, buffer: Uint8Array): Promise<BytesWritten>;
  /** Reads `length` bytes from the device at `address` into `buffer`. */
  i2cRead(address: number, length: number, buffer: Uint8Array): Promise<BytesRead>;
  close(): Promise<void>;
}

/** What kind of I2C failure, so callers can say what to do about it. */
export type I2cErrorCode = "NO_BUS" | "ACCESS" | "NOT_ADAPTER" | "ADDRESS_BUSY" | "NACK" | "TIMEOUT" | "IO" | "CLOSED" | "NO_FFI";

/** An I2C failure whose message names the device and the remedy. */
export class I2cError extends Error {
  constructor(
    readonly code: I2cErrorCode,
    message: string,
    /** The errno behind it, when there is one. */
    readonly errno?: number,
  ) {
    super(message);
  }
}

/** ioctl request that sets the 7-bit address of the following reads/writes (linux/i2c-dev.h). */
export const I2C_SLAVE = 0x0703;
/**
 * ioctl request that sets how often the adapter tries a transfer again after
 * losing arbitration (linux/i2c-dev.h; the kernel retries only on EAGAIN).
 */
export const I2C_RETRIES = 0x0701;
/** ioctl request that sets how long the adapter waits for a transfer, in units of 10 ms (linux/i2c-dev.h). */
export const I2C_TIMEOUT = 0x0702;

/**
 * The longest a read() or write() on the bus may block. An AHT20 transfer
 * (at most 7 bytes) takes under 1 ms at 100 kHz and under 10 ms at 10 kHz, so
 * this only ends a hung one. The setting belongs to the adapter, not to our
 * file descriptor: other drivers on the bus get it too, and no I2C device
 * a sensor Pi carries waits this long. Adapter drivers that honour it include
 * the Pi's (i2c-bcm2835; i2c-designware on the Pi 5's RP1).
 */
export const TRANSFER_TIMEOUT_MS = 250;
/** Retries after lost arbitration: none, so a transfer blocks at most TRANSFER_TIMEOUT_MS. */
export const TRANSFER_RETRIES = 0;

// Linux errno values (the same on x86_64 and arm64, asm-generic/errno*.h).
const EPERM = 1,
  ENOENT = 2,
  EIO = 5,
  ENXIO = 6,
  EACCES = 13,
  EBUSY = 16,
  ENODEV = 19,
  EINVAL = 22,
  ENOTTY = 25;
const ETIMEDOUT = 110,
  EREMOTEIO = 121;
const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: "EPERM",
  [ENOENT]: "ENOENT",
  [EIO]: "EIO",
  [ENXIO]: "ENXIO",
  [EACCES]: "EACCES",
  [EBUSY]: "EBUSY",
  [ENODEV]: "ENODEV",
  [EINVAL]: "EINVAL",
  [ENOTTY]: "ENOTTY",
  [ETIMEDOUT]: "ETIMEDOUT",
  [EREMOTEIO]: "EREMOTEIO",
};
const errnoName = (errno: number) => ERRNO_NAMES[errno] ?? `errno ${errno}`;

/** The device file of bus N. */
export const busPath = (bus: number) => `/dev/i2c-${bus}`;

/** The bus number in `/dev/i2c-N`, or null for another path. */
function busNumberOf(path: string): number | null {
  const m = /^\/dev\/i2c-(\d+)$/.exec(path);
  return m ? Number(m[1]) : null;
}

/** The ioctl requests the bus makes, by name (for messages). */
export type I2cRequest = "I2C_SLAVE" | "I2C_TIMEOUT" | "I2C_RETRIES";

/**
 * Turns a failed libc call into an I2cError a person can act on. Pure, so
 * every message is tested without hardware. `request` names the ioctl.
 */
export function describeI2cFailure(
  op: "open" | "ioctl" | "read" | "write",
  errno: number,
  path: string,
  address?: number,
  request: I2cRequest = "I2C_SLAVE",
): I2cError {
  const bus = busNumberOf(path);
  const at = address === undefined ? path : `0x${address.toString(16)} on ${path}`;
  const name = errnoName(errno);
  if (op === "open") {
    if (errno === ENOENT) {
      return bus === null
        ? new I2cError("NO_BUS", `${path} does not exist (open: ENOENT)`, errno)
        : new I2cError(
            "NO_BUS",
            `${path} does not exist: I2C is not enabled. Enable it with \`sudo raspi-config nonint do_i2c 0\` and reboot` +
              (bus !== 1 ? ` (and check that bus ${bus} is the one the sensor is on: \`ls /dev/i2c-*\`)` : ""),
            errno,
          );
    }
    if (errno === EACCES) {
      return new I2cError(
        "ACCESS",
        `permission denied opening ${path}: add the agent's user to the i2c group (\`sudo usermod -aG i2c $USER\`, then log in again)`,
        errno,
      );
    }
    if (errno === EPERM) {
      // Not the file's permissions (that is EACCES): a device cgroup refused it.
      // systemd's DeviceAllow=char-i2c resolves "i2c" in /proc/devices when the
      // service starts, so the i2c-dev module must be loaded before it.
      return new I2cError(
        "ACCESS",
        `${path} is not allowed by the service's device policy (open: EPERM): load i2c-dev at boot ` +
          "(`echo i2c-dev | sudo tee -a /etc/modules`, or `sudo raspi-config nonint do_i2c 0`), then `sudo systemctl restart techtemp-sensor`",
        errno,
      );
    }
    return new I2cError("IO", `cannot open ${path}: ${name}`, errno);
  }
  if (op === "ioctl") {
    if (errno === ENOTTY || errno === EINVAL || errno === ENODEV) {
      return new I2cError(
        "NOT_ADAPTER",
        `${path} is not an I2C adapter (ioctl ${request}: ${name}); give the number N of a /dev/i2c-N bus (\`ls /dev/i2c-*\`)`,
        errno,
      );
    }
    if (request !== "I2C_SLAVE") return new I2cError("IO", `cannot set ${request} on ${path}: ${name}`, errno);
    if (errno === EBUSY) {
      return new I2cError(
        "ADDRESS_BUSY",
        `address ${at} is claimed by a kernel driver (ioctl I2C_SLAVE: EBUSY): ` +
          "remove the dtoverlay that loads it from /boot/firmware/config.txt",
        errno,
      );
    }
    return new I2cError("IO", `cannot select ${at} (ioctl I2C_SLAVE: ${name})`, errno);
  }
  // read/write: a device that does not acknowledge its address gives ENXIO or
  // EREMOTEIO (bcm2835), or EIO on some adapters.
  if (errno === ENXIO || errno === EREMOTEIO || errno === EIO) {
    return new I2cError("NACK", `no answer from ${at} (${op}: ${name})`, errno);
  }
  if (errno === ENOTTY || errno === EINVAL) {
    return new I2cError("NOT_ADAPTER", `${path} is not an I2C adapter (${op}: ${name})`, errno);
  }
  if (errno === ETIMEDOUT) {
    // The adapter gave up after TRANSFER_TIMEOUT_MS (I2C_TIMEOUT).
    return new I2cError(
      "TIMEOUT",
      `${op} ${at} timed out after ${TRANSFER_TIMEOUT_MS} ms (ETIMEDOUT): the bus is held (SDA or SCL stuck low); ` +
        "check the wiring, then power the sensor off and on",
      errno,
    );
  }
  return new I2cError("IO", `${op} ${at} failed: ${name}`, errno);
}

interface Libc {
  open(path: Uint8Array, flags: number): number;
  ioctl(fd: number, request: number, arg: number): number;
  read(fd: number, buf: Uint8Array, count: number): number | bigint;
  write(fd: number, buf: Uint8Array, count: number): number | bigint;
  close(fd: number): number;
  errno(): number;
}

/** The C library the agent calls by default. */
export const DEFAULT_LIBC = "libc.so.6";

const loaded = new Map<string, Libc>();

/**
 * Why bun:ffi failed, with the remedy. Bun refuses FFI without JavaScriptCore's
 * JIT ("bun:ffi requires the JIT"): an environment with BUN_JSC_useJIT=0 (once
 * set in the sensor unit to save memory) can never open the bus.
 */
export function describeFfiFailure(err: Error, library: string): I2cError {
  const message = err.message;
  if (/requires the JIT/i.test(message)) {
    return new I2cError(
      "NO_FFI",
      `cannot call ${library} through bun:ffi: ${message}; remove BUN_JSC_useJIT=0 from the agent's environment ` +
        "(systemctl cat techtemp-sensor, and any drop-in under /etc/systemd/system/techtemp-sensor.service.d)",
    );
  }
  return new I2cError("NO_FFI", `cannot load ${library} through bun:ffi: ${message} (check [sensor] libc in device.conf)`);
}

/** Loads `library` (libc unless a test names its simulated AHT20) through bun:ffi on first use; importing this module costs nothing. */
async function loadLibc(library: string): Promise<Libc> {
  const cached = loaded.get(library);
  if (cached) return cached;
  let ffi: typeof import("bun:ffi");
  let lib;
  try {
    ffi = await import("bun:ffi");
    lib = ffi.dlopen(library, {
      open: { args: [ffi.FFIType.ptr, ffi.FFIType.i32], returns: ffi.FFIType.i32 },
      // ioctl is variadic; on x86_64 and arm64 Linux an integer third argument
      // travels in the same register either way, so a fixed signature is fine.
      ioctl: { args: [ffi.FFIType.i32, ffi.FFIType.u64, ffi.FFIType.u64], returns: ffi.FFIType.i32 },
      read: { args: [ffi.FFIType.i32, ffi.FFIType.ptr, ffi.FFIType.u64], returns: ffi.FFIType.i64 },
      write: { args: [ffi.FFIType.i32, ffi.FFIType.ptr, ffi.FFIType.u64], returns: ffi.FFIType.i64 },
      close: { args: [ffi.FFIType.i32], returns: ffi.FFIType.i32 },
      __errno_location: { args: [], returns: ffi.FFIType.ptr },
    });
  } catch (err) {
    throw describeFfiFailure(err as Error, library);
  }
  const s = lib.symbols;
  const read = ffi.read;
  const c: Libc = {
    open: (path, flags) => s.open(path, flags),
    ioctl: (fd, request, arg) => s.ioctl(fd, request, arg),
    read: (fd, buf, count) => s.read(fd, buf, count),
    write: (fd, buf, count) => s.write(fd, buf, count),
    close: (fd) => s.close(fd),
    // errno is thread-local; read right after the failing call, on the same (only) JS thread.
    errno: () => read.i32(s.__errno_location()!, 0),
  };
  loaded.set(library, c);
  return c;
}

const O_RDWR = 0x2;
const O_CLOEXEC = 0x80000;

/**
 * Opens an I2C bus: a number N for /dev/i2c-N, or a device path. Throws
 * I2cError (NO_BUS, ACCESS, NOT_ADAPTER…) with the remedy in the message.
 * The adapter is checked at once with ioctl(I2C_SLAVE) so a path that is not
 * an I2C adapter (/dev/null, a regular file) fails here, not mid-reading;
 * then each transfer is bounded (I2C_TIMEOUT, I2C_RETRIES; see the top).
 * `library` is the C library called (default libc.so.6; tests give a
 * simulated AHT20 with the same C functions, test/fixtures/fake-aht20).
 */
export async function openI2cBus(bus: number | string, probeAddress = 0x38, options: { library?: string } = {}): Promise<I2cBus> {
  const path = typeof bus === "number" ? busPath(bus) : bus;
  const c = await loadLibc(options.library ?? DEFAULT_LIBC);
  const fd = c.open(new TextEncoder().encode(path + "\0"), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw describeI2cFailure("open", c.errno(), path);
  let selected = -1;
  let closed = false;

  const select = (address: number) => {
    if (closed) throw new I2cError("CLOSED", `${path} is closed`);
    if (selected === address) return;
    if (c.ioctl(fd, I2C_SLAVE, address) < 0) throw describeI2cFailure("ioctl", c.errno(), path, address);
    selected = address;
  };
  const bound = (request: I2cRequest, code: number, value: number) => {
    if (c.ioctl(fd, code, value) < 0) throw describeI2cFailure("ioctl", c.errno(), path, undefined, request);
  };
  try {
    select(probeAddress);
    bound("I2C_TIMEOUT", I2C_TIMEOUT, TRANSFER_TIMEOUT_MS / 10);
    bound("I2C_RETRIES", I2C_RETRIES, TRANSFER_RETRIES);
  } catch (err) {
    c.close(fd);
    throw err;
  }

  return {
    async i2cWrite(address, length, buffer) {
      select(address);
      const n = Number(c.write(fd, buffer, length));
      if (n < 0) throw describeI2cFailure("write", c.errno(), path, address);
      return { bytesWritten: n, buffer };
    },
    async i2cRead(address, length, buffer) {
      select(address);
      const n = Number(c.read(fd, buffer, length));
      if (n < 0) throw describeI2cFailure("read", c.errno(), path, address);
      return { bytesRead: n, buffer };
    },
    async close() {
      if (closed) return;
      closed = true;
      c.close(fd);
    },
  };
}
