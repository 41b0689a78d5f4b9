// The Debian mirror this machine's apt already uses (deb822 .sources files and one-line .list
// files), so the boot tests' debootstrap fetches from the same place in CI as apt-get does.
import fs from 'node:fs';
import path from 'node:path';

export interface AptSource {
  readonly uri: string;
  readonly suite: string;
  readonly components: readonly string[];
  /** The keyring named by `Signed-By` / `[signed-by=…]`, when it is a file. */
  readonly keyring?: string;
}

/** Every `deb` source of a deb822 file (`Types: deb`, one entry per URI and suite). */
export function parseDeb822(text: string): AptSource[] {
  const out: AptSource[] = [];
  const stanzas: Map<string, string>[] = [];
  let current = new Map<string, string>();
  let lastKey: string | undefined;
  for (const raw of text.split('\n')) {
    if (raw.startsWith('#')) continue;
    if (raw.trim() === '') {
      if (current.size > 0) stanzas.push(current);
      current = new Map();
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(raw) && lastKey) {
      current.set(lastKey, `${current.get(lastKey)!}\n${raw.trim()}`);
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
    if (!m) continue;
    lastKey = m[1]!.toLowerCase();
    current.set(lastKey, m[2]!.trim());
  }
  if (current.size > 0) stanzas.push(current);
  const words = (v: string | undefined): string[] => (v ?? '').split(/\s+/).filter((w) => w !== '');
  for (const s of stanzas) {
    if (!words(s.get('types')).includes('deb')) continue;
    if (/^(no|false|0)$/i.test(s.get('enabled') ?? 'yes')) continue;
    const signedBy = s.get('signed-by');
    const keyring = signedBy && !signedBy.includes('\n') && signedBy.startsWith('/') ? signedBy : undefined;
    for (const uri of words(s.get('uris')))
      for (const suite of words(s.get('suites')))
        out.push({ uri, suite, components: words(s.get('components')), ...(keyring ? { keyring } : {}) });
  }
  return out;
}

/** Every `deb` line of a one-line-style sources.list. */
export function parseOneLine(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const keyring = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
    out.push({
      uri: m[2]!,
      suite: m[3]!,
      components: m[4]!.split(/\s+/).filter((w) => w !== ''),
      ...(keyring ? { keyring } : {}),
    });
  }
  return out;
}

/** All sources apt reads on this machine, in apt's order. */
export function hostAptSources(etcApt = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const main = path.join(etcApt, 'sources.list');
  if (fs.existsSync(main)) out.push(...parseOneLine(fs.readFileSync(main, 'utf8')));
  const dir = path.join(etcApt, 'sources.list.d');
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  for (const n of names) {
    const file = path.join(dir, n);
    if (n.endsWith('.list')) out.push(...parseOneLine(fs.readFileSync(file, 'utf8')));
    else if (n.endsWith('.sources')) out.push(...parseDeb822(fs.readFileSync(file, 'utf8')));
  }
  return out;
}

/** This machine's Debian release code name (`bookworm`), from /etc/os-release. */
export function hostCodename(osRelease = '/etc/os-release'): string {
  const text = fs.readFileSync(osRelease, 'utf8');
  const m = /^VERSION_CODENAME="?([a-z]+)"?$/m.exec(text);
  if (!m) throw new Error(`${osRelease} names no VERSION_CODENAME: the boot tests need a Debian host`);
  return m[1]!;
}

/** The source for `suite` itself (not -updates or -security) with the main component. */
export function mirrorFor(sources: readonly AptSource[], suite: string): AptSource | undefined {
  return sources.find(
    (s) => s.suite === suite && s.components.includes('main') && /^(https?|file|ftp):\/\//.test(s.uri),
  );
}
