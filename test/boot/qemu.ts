// Boots a disk image under qemu-system-x86_64 with software emulation (no KVM in CI), the serial
// console on a pipe and no network, and watches the console for the boot marker. Fails fast on
// what cannot end well (kernel panic, initramfs or emergency shell, no output at all), and always
// kills the guest: on success, on failure, at its time limit, and when the test process ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

export type DiskBus = 'nvme' | 'virtio';

export interface BootOptions {
  readonly image: string;
  /** How the disk is attached: NVMe as on Nitro instances, or virtio-blk. */
  readonly bus: DiskBus;
  /** The image's format as qemu names it (default raw). */
  readonly format?: 'raw' | 'qcow2';
  readonly marker: string;
  readonly nonce: string;
  /** Hard limit for the whole boot. */
  readonly timeLimitMs?: number;
  /** Give up when the serial console stays silent this long (BIOS or GRUB never got going). */
  readonly silenceLimitMs?: number;
}

export interface BootResult {
  readonly booted: boolean;
  /** Why the watch ended: `marker`, or what went wrong. */
  readonly outcome: string;
  /** `AMIBUNDLE-*` report lines the guest printed, by their first word. */
  readonly report: ReadonlyMap<string, string>;
  /** The serial console as text (terminal escapes removed). */
  readonly console: string;
  readonly seconds: number;
  readonly poweredOff: boolean;
}

const defaultTimeLimitMs = Number(process.env.AMIBUNDLE_BOOT_TIME_LIMIT ?? 600) * 1000;

/** Guests alive right now, so that nothing outlives the test process. */
const guests = new Set<ChildProcess>();

function killGuest(child: ChildProcess): void {
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  guests.delete(child);
}

export function killAllGuests(): void {
  for (const g of [...guests]) killGuest(g);
}
process.on('exit', killAllGuests);

/** Serial output as plain text: ANSI/VT100 sequences (GRUB's menu, systemd's colours) and CRs removed. */
export function consoleText(raw: string): string {
  return raw
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .replace(/\x1b[()][0-9A-Za-z]/g, '')
    .replace(/\x1b[=>78c]/g, '')
    .replace(/\r/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/** The last `n` lines of a console, for a person to see why a boot failed. */
export function lastLines(text: string, n = 40): string {
  const lines = text.replace(/\n+$/, '').split('\n');
  return lines.slice(-n).join('\n');
}

export function failureReport(r: BootResult, n = 40): string {
  return `the image did not boot (${r.outcome}, after ${r.seconds.toFixed(0)} s); last ${n} lines of the serial console:\n${lastLines(r.console, n)}`;
}

const fatal: readonly [RegExp, string][] = [
  [/Kernel panic - not syncing[^\n]*/, 'kernel panic'],
  [/ALERT! [^\n]*|Dropping to a shell!/, 'the initramfs found no root file system'],
  [/You are in emergency mode[^\n]*|Give root password for maintenance/, 'systemd emergency mode'],
  [/Entering rescue mode|You are in rescue mode/, 'systemd rescue mode'],
];

export function qemuArgs(o: BootOptions): string[] {
  const drive =
    o.bus === 'nvme'
      ? [
          '-drive',
          `file=${o.image},if=none,id=disk0,format=${o.format ?? 'raw'},cache=unsafe`,
          '-device',
          'nvme,drive=disk0,serial=amibundle0',
        ]
      : ['-drive', `file=${o.image},if=virtio,format=${o.format ?? 'raw'},cache=unsafe`];
  return [
    '-accel',
    'tcg',
    '-machine',
    'pc',
    '-m',
    '512',
    '-smp',
    '1',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-nic',
    'none',
    '-no-reboot',
    ...drive,
  ];
}

/** Boots `image` and resolves when the marker with this nonce appears, or when the boot has failed. */
export function bootImage(o: BootOptions): Promise<BootResult> {
  const started = Date.now();
  const timeLimitMs = o.timeLimitMs ?? defaultTimeLimitMs;
  const silenceLimitMs = o.silenceLimitMs ?? Math.min(180_000, timeLimitMs);
  // Not anchored at the start (a kernel message may land in the middle of the guest's line), but
  // only a whole line counts: the console arrives in pieces, and half a nonce is not another one.
  const markerRe = new RegExp(`${o.marker} ([A-Za-z0-9-]+)\n`);
  return new Promise((resolve) => {
    // timeout(1) is the limit that holds even if this process dies without killing its guest.
    const hardLimit = `${Math.ceil(timeLimitMs / 1000) + 120}`;
    const child = spawn('timeout', ['--kill-after=10', hardLimit, 'qemu-system-x86_64', ...qemuArgs(o)], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    guests.add(child);
    let raw = '';
    let stderr = '';
    let outcome: string | undefined;
    let booted = false;
    let poweredOff = false;
    let finished = false;
    const timers: NodeJS.Timeout[] = [];

    const finish = (): void => {
      if (finished) return;
      finished = true;
      for (const t of timers) clearTimeout(t);
      clearTimeout(silence);
      killGuest(child);
      const text = consoleText(raw) + (stderr ? `\n[qemu stderr] ${stderr.trim()}` : '');
      const report = new Map<string, string>();
      for (const m of text.matchAll(/^(AMIBUNDLE-[A-Z-]+) ?(.*)$/gm)) report.set(m[1]!, m[2]!);
      resolve({
        booted,
        outcome: outcome ?? 'unknown',
        report,
        console: text,
        seconds: (Date.now() - started) / 1000,
        poweredOff,
      });
    };
    /** Ends the watch now, or after a moment so the console shows what followed. */
    const end = (why: string, graceMs = 0): void => {
      if (outcome !== undefined) return;
      outcome = why;
      if (graceMs === 0) finish();
      else timers.push(setTimeout(finish, graceMs));
    };

    let silence: NodeJS.Timeout | undefined;
    const quiet = (): void => {
      clearTimeout(silence);
      silence = setTimeout(
        () => end(`no output on the serial console for ${silenceLimitMs / 1000} s`),
        silenceLimitMs,
      );
    };
    quiet();
    timers.push(setTimeout(() => end(`time limit of ${timeLimitMs / 1000} s reached`), timeLimitMs));

    const decoder = new StringDecoder('utf8');
    child.stdout.on('data', (d: Buffer) => {
      const scanFrom = Math.max(0, raw.length - 4096);
      raw += decoder.write(d);
      quiet();
      if (outcome !== undefined) return;
      // Only the new output (with some overlap for lines and escapes cut between pieces).
      const text = consoleText(raw.slice(scanFrom));
      const m = markerRe.exec(text);
      if (m) {
        if (m[1] === o.nonce) {
          booted = true;
          // Let it power off (it asked to), but do not wait long for that.
          end('marker', 60_000);
        } else end(`a marker with another nonce (${m[1]}): not this run's disk`);
        return;
      }
      const complete = text.slice(0, text.lastIndexOf('\n') + 1);
      for (const [re, why] of fatal) {
        const f = re.exec(complete);
        if (f) return end(`${why}: ${f[0].trim()}`, 3000);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (err) => {
      stderr += `cannot run qemu-system-x86_64: ${err.message}`;
      end('qemu did not start');
    });
    child.on('close', (code, signal) => {
      if (booted) poweredOff = code === 0;
      if (outcome === undefined)
        outcome = `qemu exited (${signal ?? `code ${code}`}) before the marker appeared`;
      guests.delete(child);
      finish();
    });
  });
}
